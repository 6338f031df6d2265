"""The web app's edge: a forged Host, another site's Origin, numbers and JSON no database or
parser can hold, and a console at an IP address (passkeys need a domain name)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cercle.bootstrap import App
from cercle.health.passkey_host import check_passkey_host
from cercle.web import create_app
from relay.groups.invites import link_token
from relay.service.groups import create_invite
from relay.service.relay import GroupSettings
from relay.storage.models import StaffRole
from tests.attacks.test_every_route import endpoints
from tests.console_support import Desk, console_env, deployment

PUBLIC = "https://relay.example.org"
EXIT = "https://weather.example.com/"
EVIL = "evil.example"


@dataclass
class Site:
    """Both doors of one deployment (the console and the web door), and a member's key."""

    desk: Desk
    member_token: str

    @property
    def web(self) -> TestClient:
        return self.desk.web

    @property
    def app(self) -> App:
        return self.desk.app


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    env = {**console_env(tmp_path, PUBLIC), "CERCLE_WEB": "on", "CERCLE_WEB_EXIT_URL": EXIT}
    app = deployment(tmp_path, PUBLIC, env)
    app.relay.create_group(GroupSettings("mardi", lang="en", timer_seconds=3600))
    with TestClient(
        create_app(app), base_url=PUBLIC, raise_server_exceptions=False, follow_redirects=False
    ) as web:
        code = link_token(app.relay.keys, create_invite(app.relay, "mardi", timedelta(hours=1)))
        joined = web.post(f"/j/{code}", data={"agree": "1", "mode": "js"})
        assert joined.status_code == 200
        yield Site(Desk(app, web), joined.json()["token"])
    app.close()


def concrete(path: str) -> str:
    return re.sub(r"{\w+(:\w+)?}", "1", path)


# --- Host --------------------------------------------------------------------------------------


def test_a_forged_host_is_refused_at_every_route(site: Site) -> None:
    site.desk.sign_in("alex", StaffRole.ADMIN)
    routes = endpoints(list(site.web.app.routes))  # type: ignore[attr-defined]

    answers = {
        (e.method, e.path): site.web.request(
            e.method, concrete(e.path), headers={"host": EVIL}, data={"csrf": "x"}
        )
        for e in routes
        if e.path != "/health"
    }

    assert len(answers) > 30
    assert {k: r.status_code for k, r in answers.items() if r.status_code != 421} == {}
    assert [k for k, r in answers.items() if "location" in r.headers] == []


def test_health_answers_any_host_for_the_platforms_probes(site: Site) -> None:
    assert site.web.get("/health", headers={"host": "10.0.0.5:8000"}).status_code == 200


def test_staff_without_a_slash_redirects_relatively_and_never_to_the_requests_host(
    site: Site,
) -> None:
    forged = site.web.get("/staff", headers={"host": EVIL})
    right = site.web.get("/staff")
    forwarded = site.web.get(
        "/staff", headers={"x-forwarded-host": EVIL, "x-forwarded-proto": "http"}
    )

    assert forged.status_code == 421 and "location" not in forged.headers
    assert right.status_code == 307 and right.headers["location"] == "/staff/"
    assert forwarded.headers["location"] == "/staff/"


def test_every_redirect_stays_on_the_site_or_goes_to_the_exit_page(site: Site) -> None:
    """Every route, as a stranger, as staff and as a member, with proxy headers that name
    another host: a redirect is relative, or to PUBLIC_BASE_URL, or to the exit page."""
    routes = endpoints(list(site.web.app.routes))  # type: ignore[attr-defined]
    locations: list[tuple[str, str, str]] = []
    tricks = {"x-forwarded-host": EVIL, "x-forwarded-proto": "http", "forwarded": f"host={EVIL}"}
    for who in ("stranger", "staff", "member"):
        if who == "staff":
            site.desk.sign_in("alex", StaffRole.ADMIN)
        else:
            site.web.cookies.clear()
        auth = {"authorization": f"Bearer {site.member_token}"} if who == "member" else {}
        for e in routes:
            if e.path in ("/c/events", "/staff/signout"):  # a stream; the end of the session
                continue
            r = site.web.request(e.method, concrete(e.path), headers={**tricks, **auth})
            if "location" in r.headers:
                locations.append((who, e.path, r.headers["location"]))

    assert len(locations) >= 5
    wrong = [
        (who, path, loc)
        for who, path, loc in locations
        if not (loc.startswith("/") and not loc.startswith("//"))
        and not loc.startswith(PUBLIC + "/")
        and loc != EXIT
    ]
    assert wrong == []


# --- Origin ------------------------------------------------------------------------------------


def test_another_site_cannot_make_the_quick_exit_wipe_a_members_key(site: Site) -> None:
    foreign = site.web.post("/c/exit", headers={"origin": "https://evil.example"})

    assert foreign.status_code == 403
    assert "clear-site-data" not in foreign.headers
    assert "set-cookie" not in foreign.headers


@pytest.mark.parametrize("origin", [None, "null", PUBLIC])
def test_the_quick_exit_form_still_works_without_an_origin_or_from_the_site(
    site: Site, origin: str | None
) -> None:
    headers = {"origin": origin} if origin else {}
    r = site.web.post("/c/exit", headers={**headers, "sec-fetch-mode": "navigate"})

    assert r.status_code == 303 and r.headers["location"] == EXIT
    assert r.headers["clear-site-data"] == '"cache", "cookies", "storage"'


def test_the_pages_own_quick_exit_call_gets_no_redirect_to_follow(site: Site) -> None:
    r = site.web.post("/c/exit", headers={"origin": PUBLIC, "sec-fetch-mode": "same-origin"})

    assert r.status_code == 204 and "location" not in r.headers
    assert r.headers["clear-site-data"] == '"cache", "cookies", "storage"'


def test_a_console_form_posted_from_another_site_is_refused_even_with_its_token(
    site: Site,
) -> None:
    site.desk.sign_in("alex", StaffRole.ADMIN)
    csrf = site.desk.csrf()

    foreign = site.web.post(
        "/staff/groups",
        data={"csrf": csrf, "name": "jeudi", "lang": "en", "timer": "1d"},
        headers={"origin": "https://evil.example"},
    )
    own = site.web.post(
        "/staff/groups",
        data={"csrf": csrf, "name": "jeudi", "lang": "en", "timer": "1d"},
        headers={"origin": PUBLIC},
    )

    assert foreign.status_code == 403 and "another site" in foreign.text
    assert own.status_code == 303


# --- numbers and JSON --------------------------------------------------------------------------


def test_a_26_digit_after_gets_400_not_a_crash(site: Site) -> None:
    r = site.web.get(
        "/c/events?after=" + "9" * 26,
        headers={"authorization": f"Bearer {site.member_token}"},
    )

    assert r.status_code == 400


def test_a_26_digit_group_number_is_not_found(site: Site) -> None:
    site.desk.sign_in("alex", StaffRole.ADMIN)

    assert site.web.get("/staff/groups/" + "9" * 26).status_code == 404
    assert site.web.get("/staff/groups/9223372036854775808/members").status_code == 404
    assert site.web.get("/staff/audit?group=" + "9" * 26).status_code == 400
    assert site.web.get("/staff/groups/1").status_code == 200


def test_json_nested_20000_deep_at_sign_in_gets_a_4xx(site: Site) -> None:
    page = site.web.get("/staff/signin").text
    csrf = page.split('data-csrf="', 1)[1].split('"', 1)[0]
    headers = {"x-csrf-token": csrf, "content-type": "application/json"}
    deep = b"[" * 20_000 + b"]" * 20_000

    site.web.post("/staff/signin/options", content=b"{}", headers=headers)
    answer = site.web.post("/staff/signin/verify", content=deep, headers=headers)

    assert answer.status_code == 400


# --- passkeys need a domain name ---------------------------------------------------------------


@pytest.mark.parametrize("base", ["https://203.0.113.7", "https://[2001:db8::7]:8443"])
def test_a_console_at_an_ip_address_says_why_passkeys_cannot_work(
    tmp_path: Path, base: str
) -> None:
    app = deployment(tmp_path, base)
    with TestClient(create_app(app), base_url=base, follow_redirects=False) as web:
        en = web.get("/staff/signin?lang=en").text
        fr = web.get("/staff/signin?lang=fr").text
    finding = check_passkey_host(app.settings)
    app.close()

    assert "never on an IP address" in en
    assert "jamais sur une adresse IP" in fr
    assert finding.status == "warn"
    assert "IP address" in finding.text("en")[0]
    assert "adresse IP" in finding.text("fr")[0]


def test_a_console_at_a_domain_name_has_no_such_warning(site: Site) -> None:
    page = site.web.get("/staff/signin?lang=en").text

    assert "IP address" not in page
    assert check_passkey_host(site.app.settings).status == "ok"


# --- tokens that are not ASCII -----------------------------------------------------------------


def test_a_csrf_token_that_is_not_ascii_is_refused_not_a_crash(site: Site) -> None:
    site.desk.sign_in("alex", StaffRole.ADMIN)

    r = site.web.post("/staff/signout", data={"csrf": "\u202e\U0001f600"})
    j = site.web.post(
        "/staff/signin/verify", content=b"{}", headers={"x-csrf-token": "\u00e9t\u00e9".encode()}
    )

    assert r.status_code == 403
    assert j.status_code == 403


def test_a_form_key_that_is_not_ascii_is_refused_not_a_crash(site: Site) -> None:
    code = link_token(
        site.app.relay.keys, create_invite(site.app.relay, "mardi", timedelta(hours=1))
    )
    site.web.cookies.clear()
    joined = site.web.post(f"/j/{code}", data={"agree": "1", "mode": "form"})
    assert joined.status_code == 303 and site.web.cookies.get("n")

    r = site.web.post("/c/send", data={"text": "bonjour", "form_key": "cl\u00e9"})

    assert r.status_code == 403
