"""``cercle doctor`` against the providers' fakes and the web app: what an operator sees when
Signal (through signal-cli-rest-api or signal-cli's own daemon), Twilio or PUBLIC_BASE_URL is
wrong."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from cercle.bootstrap import bootstrap
from cercle.health import check_public_url
from cercle.health.signal_restarts import check_signal_restarts
from cercle.settings import Settings
from cercle.web import create_app
from relay.storage.crypto import generate_key
from tests.cli_support import invoke
from tests.fakes.signal_cli_daemon import run_fake_signal_cli_daemon
from tests.fakes.signal_server import FakeSignalServer, run_fake_signal_server
from tests.fakes.twilio_server import ACCOUNT_SID, AUTH_TOKEN, ORG_NUMBER, FakeTwilio


def _closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _finding(check: str) -> tuple[int, dict[str, object]]:
    code, output = invoke("doctor", "--json")
    found = {f["check"]: f for f in json.loads(output)}
    return code, found[check]


@pytest.fixture(params=["rest", "daemon"])
def signal(
    request: pytest.FixtureRequest, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeSignalServer]:
    """The deployment of ``env`` on Signal only, through signal-cli-rest-api (SIGNAL_SERVICE)
    or through signal-cli's own daemon (SIGNAL_CLI, in manual receive mode)."""
    for k in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_NUMBER", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(k)
    if request.param == "daemon":
        with run_fake_signal_cli_daemon(receive_mode="manual") as daemon:
            monkeypatch.setenv("SIGNAL_CLI", daemon.target)
            monkeypatch.setenv("SIGNAL_NUMBER", daemon.number)
            yield daemon  # type: ignore[misc]
            assert daemon.violations == []
        return
    with run_fake_signal_server() as fake:
        monkeypatch.setenv("SIGNAL_SERVICE", fake.service)
        monkeypatch.setenv("SIGNAL_NUMBER", fake.number)
        yield fake
        assert fake.violations == []


# What only signal-cli-rest-api has: an account registered through it, and its MODE.
REST = pytest.mark.parametrize("signal", ["rest"], indirect=True)


@pytest.fixture
def twilio(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    """The deployment of ``env`` against the Twilio fake (its public URL is not called)."""
    with FakeTwilio() as fake:
        monkeypatch.setenv("TWILIO_API_BASE", fake.base_url)
        monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        monkeypatch.setenv("TWILIO_NUMBER", ORG_NUMBER)
        monkeypatch.setenv("PUBLIC_BASE_URL", f"https://127.0.0.1:{_closed_port()}")
        yield fake


# --- Signal --------------------------------------------------------------------------------


def test_a_registered_number_reached_the_right_way_is_ok(signal: FakeSignalServer) -> None:
    _, finding = _finding("signal")

    assert finding["status"] == "ok"
    assert (
        finding["detail"]
        == {
            "rest": {"version": "0.101", "mode": "json-rpc", "registered": True, "devices": 1},
            "daemon": {
                "version": "0.14.6",
                "way": "signal-cli daemon",
                "manual_mode": True,
                "devices": 1,
            },
        }[signal.kind]
    )


def test_a_linked_device_is_a_loud_warning(signal: FakeSignalServer) -> None:
    signal.link_device("Signal Desktop")

    code, finding = _finding("signal")

    assert finding["status"] == "warn"
    assert str(finding["summary"]).startswith("DANGER: 1 other device")
    assert code == 1


# A daemon runs for a registered account only (without one, signal-cli does not start and the
# doctor finds nothing answering: tests/signal/test_daemon_setup.py), and its receive mode is
# checked there too.
@REST
def test_an_unregistered_number_says_to_register_it(signal: FakeSignalServer) -> None:
    signal.account_registered = False

    code, finding = _finding("signal")

    assert (code, finding["status"]) == (2, "fail")
    assert "cercle signal register" in str(finding["fix"])


@REST
def test_the_wrong_mode_says_to_set_json_rpc(signal: FakeSignalServer) -> None:
    signal.mode = "normal"

    code, finding = _finding("signal")

    assert (code, finding["status"]) == (2, "fail")
    assert "MODE=json-rpc" in str(finding["fix"])


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SIGNAL_SERVICE", "127.0.0.1:{port}"), ("SIGNAL_CLI", "tcp://127.0.0.1:{port}")],
)
def test_an_unreachable_service_names_the_variable(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value.format(port=_closed_port()))
    monkeypatch.setenv("SIGNAL_NUMBER", "+15145550120")

    code, finding = _finding("signal")

    assert (code, finding["status"]) == (2, "fail")
    assert variable in str(finding["summary"])


# --- Twilio --------------------------------------------------------------------------------


def test_twilio_credentials_that_work_are_ok(twilio: FakeTwilio) -> None:
    _, finding = _finding("twilio")

    assert finding["status"] == "ok"
    assert ("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}.json") in twilio.requests


def test_a_wrong_auth_token_is_refused_credentials(
    twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "not-the-token")

    code, finding = _finding("twilio")

    assert (code, finding["status"]) == (2, "fail")
    assert finding["summary"] == "Twilio refused the credentials."
    assert "TWILIO_AUTH_TOKEN" in str(finding["fix"])


def test_a_suspended_account_fails(twilio: FakeTwilio) -> None:
    twilio.account_status = "suspended"

    _, finding = _finding("twilio")

    assert finding["status"] == "fail"
    assert finding["summary"] == "The Twilio account is suspended."


# --- PUBLIC_BASE_URL -----------------------------------------------------------------------


def _public_url_check(settings: Settings, app: object) -> dict[str, object]:
    async def run() -> dict[str, object]:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport) as http:
            return (await check_public_url(settings, http=http)).as_dict()

    return anyio.run(run)


def test_the_webhook_answering_with_a_signature_refusal_is_ok(env: dict[str, str]) -> None:
    settings = Settings.from_env()
    cercle = bootstrap(settings)

    finding = _public_url_check(settings, create_app(cercle))
    cercle.close()

    assert finding["status"] == "ok"
    assert finding["detail"] == {"health_status": 200, "webhook_status": 403}


def test_a_url_that_is_not_cercle_fails(env: dict[str, str]) -> None:
    other = Starlette(routes=[Route("/{p:path}", lambda _: PlainTextResponse("hello"))])

    finding = _public_url_check(Settings.from_env(), other)

    assert finding["status"] == "fail"
    assert "not Cercle's health" in str(finding["summary"])


def test_a_plain_http_public_url_fails_without_calling_it(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://relay.example.org")

    code, finding = _finding("public_url")

    assert (code, finding["status"]) == (2, "fail")
    assert "https" in str(finding["summary"])


def test_a_public_url_that_does_not_answer_is_a_warning(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As before the web process is up.
    monkeypatch.setenv("PUBLIC_BASE_URL", f"https://127.0.0.1:{_closed_port()}")

    _, finding = _finding("public_url")

    assert finding["status"] == "warn"
    assert "web process" in str(finding["fix"])


# --- Signal: what a restart costs -----------------------------------------------------------


def test_only_the_rest_setup_warns_that_a_restart_loses_messages(
    signal: FakeSignalServer,
) -> None:
    code, finding = _finding("signal_restarts")

    loses = signal.kind == "rest"
    assert finding["detail"] == {"setup": signal.kind, "loses_messages_on_restart": loses}
    if loses:
        assert finding["status"] == "warn"
        assert "lost" in str(finding["summary"])
        assert "SIGNAL_CLI" in str(finding["fix"])
        assert code >= 1
    else:
        assert finding["status"] == "ok"


def test_the_restart_warning_reads_in_french(tmp_path: Path) -> None:
    settings = Settings.from_env(
        environ={
            "CERCLE_DATA_KEY": generate_key(),
            "SIGNAL_SERVICE": "127.0.0.1:8080",
            "SIGNAL_NUMBER": "+15145550120",
        },
        dotenv_path=tmp_path / "none.env",
    )
    summary, fix = check_signal_restarts(settings).text("fr")
    assert "perdus" in summary
    assert fix is not None and "SIGNAL_CLI" in fix
