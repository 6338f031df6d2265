"""The web process under attack: oversized requests, forced errors, headers on every answer.

Everything goes through ``cercle.web.create_app`` as deployed (Guard middleware, Twilio routes,
health), reached at the internal address a TLS-terminating proxy forwards to.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cercle.bootstrap import bootstrap
from cercle.web import MAX_BODY, SECURITY_HEADERS, create_app
from relay.service.relay import GroupSettings
from relay.storage.engine import upgrade
from tests.attacks.conftest import Desk, settings_for, twilio_env
from tests.e2e.test_mixed_group import PUBLIC
from tests.fakes.twilio_server import FakeTwilio, sign

pytestmark = pytest.mark.anyio

MEMBER = "+15145550131"
STRANGER = "+15145550132"
LEAKY = "+15145550133 wrote: Bonsoir, I live at 12 rue Exemple"


def assert_hardened(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.status_code, name)
    assert "Traceback" not in response.text and 'File "' not in response.text
    assert "server" not in response.headers  # no software banner from the app itself


async def boom(_: Request) -> Response:
    raise RuntimeError(LEAKY)


@pytest.fixture
async def web(tmp_path: Path, twilio: FakeTwilio) -> AsyncIterator[httpx.AsyncClient]:
    """The app with one extra route that fails, as any bug in a route would."""
    app = bootstrap(settings_for(tmp_path, **twilio_env(twilio)))
    upgrade(app.engine)
    app.relay.create_group(GroupSettings("mardi", lang="en"))
    web_app = create_app(app, [Route("/boom", boom, methods=["GET", "POST"])])
    async with web_app.router.lifespan_context(web_app):
        transport = httpx.ASGITransport(app=web_app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as c:
            yield c
    app.close()


# --- headers ---------------------------------------------------------------------------------


async def test_health_answers_with_the_security_headers(web: httpx.AsyncClient) -> None:
    response = await web.get("/health")

    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert_hardened(response)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/", 404), ("GET", "/admin", 404), ("GET", "/../etc/passwd", 404),
     ("GET", "/twilio/sms", 405), ("DELETE", "/twilio/status", 405), ("POST", "/health", 405)],
)  # fmt: skip
async def test_unknown_paths_and_methods_answer_plainly_with_the_headers(
    web: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await web.request(method, path)

    assert response.status_code == status
    assert_hardened(response)


async def test_a_forged_webhook_gets_a_bare_403_with_the_headers(
    web: httpx.AsyncClient, twilio: FakeTwilio
) -> None:
    hook = twilio.inbound(f"{PUBLIC}/twilio/sms", MEMBER, "hi")

    response = await web.post(
        hook.path_and_query, content=hook.body, headers=hook.headers(signature="Zm9yZ2Vk")
    )

    assert response.status_code == 403 and response.text == "403"
    assert_hardened(response)


# --- errors ----------------------------------------------------------------------------------


async def test_a_failing_route_answers_500_with_a_reference_and_no_trace(
    web: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    response = await web.get("/boom")

    assert response.status_code == 500
    assert response.text.startswith("internal error")
    assert "RuntimeError" not in response.text and "Bonsoir" not in response.text
    assert "+1514" not in response.text
    assert_hardened(response)
    # The operator gets the type and the same reference; never the exception's words.
    ref = response.text.rsplit(" ", 1)[-1].strip("()")
    assert any("RuntimeError" in r.getMessage() and ref in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert "Bonsoir" not in record.getMessage() and "+1514" not in record.getMessage()
        assert record.exc_info is None  # no traceback: its text would quote the message


async def test_a_failing_route_does_not_raise_into_the_server(tmp_path: Path) -> None:
    # A server that sees the exception logs its traceback (uvicorn: "Exception in ASGI
    # application"), with the exception's words. The app must swallow it after answering.
    app = bootstrap(settings_for(tmp_path))
    upgrade(app.engine)
    web_app = create_app(app, [Route("/boom", boom)])
    transport = httpx.ASGITransport(app=web_app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5:8000") as c:
        response = await c.get("/boom")
    app.close()

    assert response.status_code == 500


async def test_a_database_failure_in_the_webhook_is_500_without_sql_or_trace(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    await desk.enroll(MEMBER)
    with desk.app.engine.begin() as conn:
        conn.execute(text("DROP TABLE pending_inbound"))  # the webhook's own write fails

    response = await desk.sms(MEMBER, "Bonsoir")

    assert response.status_code == 500 and response.text.startswith("error ")
    for leak in ("pending_inbound", "INSERT", "SELECT", "Traceback", "Bonsoir", MEMBER):
        assert leak not in response.text
        assert all(leak not in r.getMessage() for r in caplog.records)
    assert_hardened(response)


async def test_an_unreachable_database_makes_health_503_without_details(
    tmp_path: Path, twilio: FakeTwilio
) -> None:
    app = bootstrap(settings_for(tmp_path))
    web_app = create_app(app)
    (tmp_path / "cercle.db").unlink(missing_ok=True)
    (tmp_path / "cercle.db").mkdir()  # a directory where the database file should be
    transport = httpx.ASGITransport(app=web_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5:8000") as c:
        response = await c.get("/health")
    app.close()

    assert response.status_code == 503 and response.json() == {"status": "unavailable"}
    assert str(tmp_path) not in response.text
    assert_hardened(response)


# --- size limits -----------------------------------------------------------------------------


async def test_a_declared_oversized_body_is_refused_before_it_is_read(
    web: httpx.AsyncClient,
) -> None:
    response = await web.post(
        "/twilio/sms",
        content=b"x" * (MAX_BODY + 1),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 413
    assert_hardened(response)


@pytest.mark.parametrize("length", ["-1", "1e9", "abc", "99999999999999999999"])
async def test_a_nonsense_content_length_is_refused(web: httpx.AsyncClient, length: str) -> None:
    response = await web.post("/boom", content=b"Body=hi", headers={"Content-Length": length})

    assert response.status_code in (400, 413)
    assert_hardened(response)


async def test_a_streamed_body_without_length_is_cut_at_the_limit(web: httpx.AsyncClient) -> None:
    chunks_sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        for _ in range(1000):  # 16 MB if nobody stops it
            chunks_sent += 1
            yield b"Body=" + b"a" * 16 * 1024

    response = await web.post(
        "/twilio/sms",
        content=endless(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 413
    assert_hardened(response)
    assert chunks_sent < 1000


async def test_a_streamed_body_to_a_failing_route_is_still_cut(web: httpx.AsyncClient) -> None:
    async def big() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"a" * MAX_BODY

    response = await web.post("/twilio/status", content=big())

    assert response.status_code == 413
    assert_hardened(response)


# --- the Twilio routes' answers ---------------------------------------------------------------


async def test_a_members_sms_gets_empty_twiml_and_nothing_else(desk: Desk) -> None:
    await desk.enroll(MEMBER)

    response = await desk.sms(MEMBER, "hello")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    assert_hardened(response)


async def test_a_stranger_gets_exactly_the_same_answer_as_a_member(desk: Desk) -> None:
    await desk.enroll(MEMBER)
    member = await desk.sms(MEMBER, "/help")
    stranger = await desk.sms(STRANGER, "/help")

    assert (stranger.status_code, stranger.content) == (member.status_code, member.content)
    assert dict(stranger.headers) == dict(member.headers)


async def test_status_callbacks_answer_204_and_forged_ones_403(
    desk: Desk, twilio: FakeTwilio
) -> None:
    await desk.enroll(MEMBER)
    sid = twilio.sent_to(MEMBER)[-1].sid
    params = {"MessageSid": sid, "MessageStatus": "sent", "AccountSid": twilio.account_sid}
    good = sign(twilio.auth_token, f"{PUBLIC}/twilio/status", params)
    forged = sign("guessed-token", f"{PUBLIC}/twilio/status", params)

    ok, refused = await good.post(desk.web), await forged.post(desk.web)

    assert ok.status_code == 204 and ok.content == b""
    assert refused.status_code == 403 and refused.text == "403"
    assert_hardened(ok)
    assert_hardened(refused)


async def test_a_signed_but_malformed_webhook_is_a_bare_400(desk: Desk, twilio: FakeTwilio) -> None:
    hook = twilio.inbound(f"{PUBLIC}/twilio/sms", "not a number", "hi")

    response = await hook.post(desk.web)

    assert response.status_code == 400 and response.text == "400"
    assert_hardened(response)
