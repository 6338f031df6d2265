"""Setting Cercle up on signal-cli's own daemon: SIGNAL_CLI, `cercle signal …`, and what
`cercle doctor` says about the daemon's version and receive mode."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cercle.health.signal_daemon import version_tuple
from cercle.settings import Settings, SettingsError
from tests.cli_support import invoke
from tests.fakes.signal_cli_daemon import FakeSignalCliDaemon, run_fake_signal_cli_daemon
from tests.signal.conftest import ORG

DAEMON = pytest.mark.parametrize("fake", ["daemon"], indirect=True)


def test_one_way_to_signal_at_most(tmp_path: Path) -> None:
    none = tmp_path / "none.env"
    both = {
        "SIGNAL_SERVICE": "localhost:8080",
        "SIGNAL_CLI": "tcp://127.0.0.1:7583",
        "SIGNAL_NUMBER": ORG,
    }
    with pytest.raises(SettingsError, match="both set"):
        Settings.from_env(both, dotenv_path=none)
    with pytest.raises(SettingsError, match="tcp://HOST:PORT or unix:PATH"):
        Settings.from_env({"SIGNAL_CLI": "127.0.0.1:7583", "SIGNAL_NUMBER": ORG}, dotenv_path=none)
    with pytest.raises(SettingsError, match="SIGNAL_NUMBER must be set too"):
        Settings.from_env({"SIGNAL_CLI": "unix:/run/signal-cli/socket"}, dotenv_path=none)
    s = Settings.from_env(
        {"SIGNAL_CLI": "unix:/run/signal-cli/socket", "SIGNAL_NUMBER": ORG}, dotenv_path=none
    )
    assert s.signal_enabled and s.signal_cli == "unix:/run/signal-cli/socket"


@DAEMON
def test_register_and_verify_name_the_signal_cli_commands(
    signal_only: FakeSignalCliDaemon,
) -> None:
    code, output = invoke("signal", "register", "--captcha", "signalcaptcha://x")
    assert code != 0 and "signal-cli -a NUMBER register" in output
    code, output = invoke("signal", "verify", "123456")
    assert code != 0 and "signal-cli -a NUMBER verify CODE" in output
    assert ORG not in output


@DAEMON
def test_status_profile_and_challenge_work_on_the_daemon(
    signal_only: FakeSignalCliDaemon,
) -> None:
    code, output = invoke("signal", "status")
    assert code == 0, output
    assert "its own daemon" in output and "device 1" in output
    assert invoke("signal", "profile")[0] == 0
    assert signal_only.profiles == [{"name": "Info"}]
    signal_only.require_captcha("tok-9")
    assert invoke("signal", "challenge", "tok-9", "signal-hcaptcha.abc")[0] == 0
    assert signal_only.captcha_token is None


def _doctor_signal() -> tuple[int, dict[str, object]]:
    code, output = invoke("doctor", "--json")
    found = {f["check"]: f for f in json.loads(output)}
    return code, found["signal"]


@DAEMON
def test_doctor_is_content_with_a_recent_daemon_in_manual_mode(
    signal_only: FakeSignalCliDaemon,
) -> None:
    _, finding = _doctor_signal()
    assert finding["status"] == "ok", finding
    assert "manual receive mode" in str(finding["summary"])
    # The probe never subscribed: nothing was taken from Signal's queue.
    signal_only.member("+15145550131").says("while the doctor looks")
    assert signal_only.queued == 1
    assert all(r["method"] != "subscribeReceive" for r in signal_only.requests)


@DAEMON
def test_doctor_warns_about_an_old_signal_cli(signal_only: FakeSignalCliDaemon) -> None:
    signal_only.version = "0.13.4"
    _, finding = _doctor_signal()
    assert finding["status"] == "warn"
    assert "0.13.4" in str(finding["summary"]) and "unregisters" in str(finding["summary"])


@pytest.fixture(params=["on-start", "on-connection"])
def losing_daemon(
    request: pytest.FixtureRequest, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeSignalCliDaemon]:
    for k in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_NUMBER", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(k)
    with run_fake_signal_cli_daemon(ORG, receive_mode=request.param) as fake:
        monkeypatch.setenv("SIGNAL_CLI", fake.target)
        monkeypatch.setenv("SIGNAL_NUMBER", fake.number)
        yield fake


def test_doctor_fails_when_the_daemon_does_not_keep_messages_at_signal(
    losing_daemon: FakeSignalCliDaemon,
) -> None:
    code, finding = _doctor_signal()
    assert code != 0
    assert finding["status"] == "fail"
    assert "not in manual receive mode" in str(finding["summary"])


def test_doctor_fails_when_the_daemon_does_not_answer(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for k in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_NUMBER", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(k)
    monkeypatch.setenv("SIGNAL_CLI", f"unix:{tmp_path / 'no.sock'}")
    monkeypatch.setenv("SIGNAL_NUMBER", ORG)
    code, finding = _doctor_signal()
    assert code != 0 and finding["status"] == "fail"
    assert "SIGNAL_CLI" in str(finding["summary"])


def test_versions_are_compared_as_numbers() -> None:
    assert version_tuple("0.14.10") > version_tuple("0.14.6")  # type: ignore[operator]
    assert version_tuple("0.14.7-SNAPSHOT") == (0, 14, 7)
    assert version_tuple("unknown") is None
