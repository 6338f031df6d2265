"""Odd values at every route of the web app: never a 500.

The routes are read from the app itself (Starlette's route table, mounts included), so a route
added later is covered without editing this file; the names of query and form fields are read
from the code and templates that handle them. Each example is one real HTTP request to the web
process on loopback, as a stranger, as a signed-in admin (with a valid CSRF token, so handlers
are reached) or as a web member (with a valid key).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select
from starlette.routing import BaseRoute, Mount, Route

from cercle.bootstrap import App
from cercle.console import accounts, sessions
from cercle.edge import server_config
from cercle.web import create_app
from relay.groups.invites import link_token
from relay.service.groups import create_invite
from relay.service.relay import GroupSettings
from relay.storage.models import StaffAccount, StaffRole, StaffSession
from tests.console_support import console_env, deployment
from tests.web.door import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
HANDLERS = [
    *sorted((ROOT / "cercle" / "console").glob("**/*.py")),
    *sorted((ROOT / "cercle" / "console" / "templates").glob("*.html")),
    *sorted((ROOT / "bots" / "web").glob("*.py")),
    *sorted((ROOT / "bots" / "web" / "templates").glob("*.html")),
    ROOT / "cercle" / "web.py",
]
_FIELD = re.compile(r"""(?:\.get\(\s*|\[|name=)["']([a-z][a-z0-9_]{0,30})["']""")
FIELDS = sorted({m for path in HANDLERS for m in _FIELD.findall(path.read_text())})

ODD_VALUES = [
    "",
    "0",
    "-1",
    "9" * 19,
    "9" * 26,
    "-" + "9" * 26,
    "1e309",
    "NaN",
    "0x1F",
    "١٢٣",  # Arabic-Indic digits: str.isdigit() says yes
    "\x00",
    "%00",
    "../../etc/passwd",
    "a" * 5000,
    "[]",
    "{}",
    "null",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "\u202e\U0001f600",
]
odd = st.one_of(
    st.sampled_from(ODD_VALUES),
    st.sampled_from(ODD_VALUES),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(max_size=40),
)


def deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


json_bodies = st.one_of(
    st.sampled_from([deep_json(20_000), b'{"a":' * 5000 + b"1" + b"}" * 5000, b"", b"\xff"]),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=20,
    ).map(lambda v: json.dumps(v).encode()),
)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # a template: "/staff/groups/{gid:int}"
    convertors: dict[str, str]  # parameter -> convertor name


def endpoints(routes: list[BaseRoute], prefix: str = "") -> list[Endpoint]:
    """Every (method, path) the app serves, read from its route table."""
    found: list[Endpoint] = []
    for route in routes:
        if isinstance(route, Mount):
            found += endpoints(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            names = dict(re.findall(r"{(\w+)(?::(\w+))?}", route.path))
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                found.append(
                    Endpoint(method, prefix + route.path, {k: v or "str" for k, v in names.items()})
                )
    return found


@dataclass
class Site:
    app: App
    base: str
    endpoints: list[Endpoint]
    staff_cookie: str
    csrf: str
    member_token: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("site")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**console_env(tmp, base), "CERCLE_WEB": "on", "CERCLE_WEB_EXIT_URL": f"{base}/health"}
    app = deployment(tmp, base, env)
    app.relay.create_group(GroupSettings("mardi", lang="en", timer_seconds=3600))
    asgi = create_app(app)
    server = uvicorn.Server(
        server_config(asgi, host="127.0.0.1", port=port, timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    # A staff admin's session, and a web member's key, as real visitors would hold them.
    accounts.add(app.engine, app.keys, app.clock.now(), "alex", StaffRole.ADMIN, "en")
    with Session(app.engine) as s:
        account = s.exec(select(StaffAccount).where(StaffAccount.name == "alex")).one()
    cookie = sessions.open_session(app.engine, app.clock.now(), "en", account.id)
    with Session(app.engine) as s:
        csrf = s.exec(select(StaffSession)).one().csrf
    code = link_token(app.relay.keys, create_invite(app.relay, "mardi", timedelta(hours=1)))
    joined = httpx.post(f"{base}/j/{code}", data={"agree": "1", "mode": "js"})
    assert joined.status_code == 200, joined.status_code
    yield Site(app, base, endpoints(list(asgi.routes)), cookie, csrf, joined.json()["token"])
    server.should_exit = True
    thread.join(10)
    app.close()


STAFF_COOKIE, CSRF = "{staff-cookie}", "{csrf}"  # filled in per example


def fresh_session(site: Site) -> tuple[str, str]:
    """A new signed-in session for the admin: an earlier example may have signed out."""
    app = site.app
    with Session(app.engine) as s:
        account = s.exec(select(StaffAccount).where(StaffAccount.name == "alex")).one()
    cookie = sessions.open_session(app.engine, app.clock.now(), "en", account.id)
    with Session(app.engine) as s:
        row = sessions.load(s, cookie, app.clock.now())
        assert row is not None
        return cookie, row.csrf


@st.composite
def requests(draw: st.DrawFn, site: Site) -> tuple[str, str, dict[str, str], bytes, str]:
    """(method, path, headers, body, who) for one odd request to one of the app's routes."""
    endpoint = draw(st.sampled_from(site.endpoints))
    path = endpoint.path
    for name, convertor in endpoint.convertors.items():
        if convertor == "int":
            value = draw(
                st.one_of(
                    st.sampled_from(["9223372036854775808", "9" * 26]),
                    st.integers(0, 10**30).map(str),
                    odd,
                )
            )
        else:
            value = draw(odd)
        path = re.sub(r"{%s(:\w+)?}" % name, quote(value, safe="") or "x", path)  # noqa: UP031
    # Either a few fields with values of their own, or one value in every field at once (so
    # that each field a handler reads meets each odd value often).
    spray = draw(st.booleans())
    fields = (
        dict.fromkeys(FIELDS, draw(odd))
        if spray
        else draw(st.dictionaries(st.sampled_from(FIELDS), odd, max_size=3))
    )
    # (Values shortened in the query: the client refuses an address over 64 KiB itself.)
    query = {k: v[:300] for k, v in fields.items()} if draw(st.booleans()) else {}
    if query:
        path += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query.items())
    who = draw(st.sampled_from(["stranger", "staff", "member"]))
    headers: dict[str, str] = {}
    if who == "staff":
        headers["cookie"] = f"{sessions.COOKIE}={STAFF_COOKIE}"
        headers["x-csrf-token"] = CSRF
    elif who == "member":
        headers["authorization"] = f"Bearer {site.member_token}"
    body = b""
    if endpoint.method == "POST":
        kind = draw(st.sampled_from(["form", "json"]))
        if kind == "json":
            headers["content-type"] = "application/json"
            body = draw(json_bodies)
        else:
            headers["content-type"] = "application/x-www-form-urlencoded"
            form = dict(fields)
            if who == "staff":
                form = {"csrf": CSRF, **form}
            body = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in form.items()).encode()
    return endpoint.method, path, headers, body, who


def test_the_walk_finds_the_routes_of_both_doors_and_their_fields(site: Site) -> None:
    paths = {e.path for e in site.endpoints}

    assert {"/health", "/c/events", "/c/exit", "/j/{code}"} <= paths
    assert {"/staff/groups/{gid:int}", "/staff/signin/verify"} <= paths
    assert {"after", "upto", "text", "premoderate", "group", "csrf"} <= set(FIELDS)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_odd_value_at_any_route_gets_a_500(site: Site, data: Any) -> None:
    method, path, headers, body, who = data.draw(requests(site))
    if who == "staff":
        cookie, csrf = fresh_session(site)
        headers = {
            k: v.replace(STAFF_COOKIE, cookie).replace(CSRF, csrf) for k, v in headers.items()
        }
        body = body.replace(quote(CSRF, safe="").encode(), csrf.encode())

    with (
        httpx.Client(base_url=site.base, timeout=10) as client,
        client.stream(method, path, headers=headers, content=body) as response,
    ):
        status = response.status_code  # an event stream stays open: its status is enough

    # 503 is the event stream's "too many connections, retry" (with Retry-After), not a crash.
    assert status < 500 or (status == 503 and path.startswith("/c/events")), (
        method,
        path[:200],
        who,
        status,
    )
