"""Setting up the organization's Signal number with ``cercle signal …``, as docs/signal.md
tells an admin to, against the fake signal-cli-rest-api (every request checked against the
vendored spec by the ``fake`` fixture)."""

from __future__ import annotations

import json

import pytest

from tests.cli_support import invoke
from tests.fakes.signal_server import FakeSignalServer

CAPTCHA = "signalcaptcha://signal-hcaptcha.5fad97ac.registration.P1_eyJ0eXAiOiJKV1Qi"


@pytest.fixture
def unregistered(signal_only: FakeSignalServer) -> FakeSignalServer:
    """A deployment on Signal only whose number is not registered yet."""
    signal_only.account_registered = False
    return signal_only


def test_register_then_verify_registers_the_number(unregistered: FakeSignalServer) -> None:
    code, output = invoke("signal", "register", "--captcha", CAPTCHA)
    assert code == 0 and "cercle signal verify CODE" in output
    assert unregistered.registrations == [{"captcha": CAPTCHA}]

    code, output = invoke("signal", "verify", str(unregistered.verification_code))

    assert code == 0 and "registered" in output
    assert unregistered.account_registered


def test_register_by_voice_asks_for_a_call(unregistered: FakeSignalServer) -> None:
    code, output = invoke("signal", "register", "--voice", "--captcha", CAPTCHA)

    assert code == 0 and "by a call" in output
    assert unregistered.registrations == [{"captcha": CAPTCHA, "use_voice": True}]


def test_a_captcha_pasted_without_its_scheme_is_completed(unregistered: FakeSignalServer) -> None:
    bare = CAPTCHA.removeprefix("signalcaptcha://")

    assert invoke("signal", "register", "--captcha", bare)[0] == 0
    assert unregistered.registrations == [{"captcha": CAPTCHA}]


def test_a_refused_captcha_says_where_to_get_one(unregistered: FakeSignalServer) -> None:
    code, output = invoke("signal", "register", "--captcha", "")

    assert code == 1
    assert "signalcaptchas.org/registration" in " ".join(output.split())
    assert unregistered.number not in output


def test_a_wrong_code_is_refused_plainly(unregistered: FakeSignalServer) -> None:
    invoke("signal", "register", "--captcha", CAPTCHA)

    code, output = invoke("signal", "verify", "999-999")

    assert code == 1 and "did not accept that code" in output
    assert not unregistered.account_registered


def test_a_code_that_is_not_six_digits_is_refused_before_any_request(
    unregistered: FakeSignalServer,
) -> None:
    code, output = invoke("signal", "verify", "12345")

    assert code == 1 and "six digits" in output


def test_a_registration_lock_needs_the_pin(unregistered: FakeSignalServer) -> None:
    unregistered.registration_pin = "4321"
    invoke("signal", "register", "--captcha", CAPTCHA)
    code_sent = str(unregistered.verification_code)

    code, output = invoke("signal", "verify", code_sent)
    assert code == 1 and "--pin" in output

    assert invoke("signal", "verify", code_sent, "--pin", "4321")[0] == 0
    assert unregistered.account_registered


def test_profile_sets_the_neutral_name_now(unregistered: FakeSignalServer) -> None:
    unregistered.account_registered = True

    code, _ = invoke("signal", "profile")

    assert code == 0
    assert unregistered.profiles == [{"name": "Info"}]


def test_status_of_a_healthy_number(unregistered: FakeSignalServer) -> None:
    unregistered.account_registered = True

    code, output = invoke("signal", "status", "--json")

    assert code == 0
    assert json.loads(output) == {
        "mode": "json-rpc",
        "version": "0.101",
        "registered": True,
        "accounts": 1,
        "devices": [{"id": 1, "name": "signal-cli", "primary": True}],
        "profile_name": "Info",
        "profile_avatar": False,
        "captcha_pending": 0,
    }


def test_status_warns_loudly_about_a_linked_device(unregistered: FakeSignalServer) -> None:
    unregistered.account_registered = True
    unregistered.link_device("Signal Desktop")

    code, output = invoke("signal", "status")

    assert code == 1
    assert "OTHER DEVICE" in output and "DANGER" in output
    assert "Signal Desktop" in output


def test_status_of_an_unregistered_number_says_how_to_register(
    unregistered: FakeSignalServer,
) -> None:
    code, output = invoke("signal", "status")

    assert code == 1
    assert "NOT registered" in output and "cercle signal register" in output


def test_unlink_removes_another_device_but_never_signal_cli(
    unregistered: FakeSignalServer,
) -> None:
    unregistered.account_registered = True
    unregistered.link_device("Signal Desktop")

    assert invoke("signal", "unlink", "1")[0] == 1
    assert invoke("signal", "unlink", "2")[0] == 0

    assert [d["id"] for d in unregistered.devices] == [1]
    assert invoke("signal", "status")[0] == 0
