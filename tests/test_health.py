"""Health checks: a wrong data key is caught before anything starts, and ``cercle doctor``
says what is wrong and how to fix it, with exit codes scripts can use."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from cercle.bootstrap import bootstrap
from cercle.health import CHECKS, check_data_key, check_outbox, run_checks
from cercle.settings import Settings
from relay.storage.crypto import DataKeys, generate_key
from relay.storage.engine import transaction
from relay.storage.models import Outbox, OutboxState
from tests.cli_support import invoke


def _enroll_two(env: dict[str, str]) -> None:
    assert invoke("group", "create", "mardi", "--lang", "en")[0] == 0
    assert invoke("member", "add", "+15145550101", "-g", "mardi", "--lang", "en")[0] == 0
    assert invoke("member", "add", "+15145550102", "-g", "mardi", "--lang", "en")[0] == 0


def _dump(env: dict[str, str]) -> list[str]:
    path = env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


def _doctor(*args: str) -> tuple[int, list[dict[str, object]]]:
    code, output = invoke("doctor", "--json", *args)
    return code, json.loads(output)


def _by_check(findings: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(f["check"]): f for f in findings}


# --- the data key ----------------------------------------------------------------------------


def test_the_right_key_opens_the_stored_rows(env: dict[str, str]) -> None:
    _enroll_two(env)
    app = bootstrap(Settings.from_env())

    finding = check_data_key(app.engine, app.keys)
    app.close()

    assert finding.status == "ok"
    assert finding.detail["opened"] == finding.detail["sampled"] > 0


def test_a_valid_but_wrong_key_is_caught(env: dict[str, str]) -> None:
    _enroll_two(env)
    app = bootstrap(Settings.from_env())

    finding = check_data_key(app.engine, DataKeys.from_text(generate_key()))
    app.close()

    assert finding.status == "fail"
    summary, fix = finding.text()
    assert "CERCLE_DATA_KEY" in summary
    assert fix is not None and "CERCLE_DATA_KEY_PREVIOUS" in fix


def test_an_empty_database_accepts_any_key(env: dict[str, str]) -> None:
    app = bootstrap(Settings.from_env())

    finding = check_data_key(app.engine, app.keys)
    app.close()

    assert finding.status == "ok"
    assert finding.detail["sealed_values"] == 0


def test_during_a_rotation_the_new_key_with_the_previous_one_is_accepted(
    env: dict[str, str],
) -> None:
    _enroll_two(env)
    old = DataKeys.from_text(env["CERCLE_DATA_KEY"])
    app = bootstrap(Settings.from_env())

    finding = check_data_key(app.engine, DataKeys.from_text(generate_key()).with_previous(old))
    app.close()

    assert finding.status == "ok"
    assert finding.detail["under_previous_key"] == finding.detail["sealed_values"]


def test_rows_under_a_third_key_are_a_warning_not_a_refusal(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _enroll_two(env)
    # Someone enrolled a member while running with another key.
    monkeypatch.setenv("CERCLE_DATA_KEY", generate_key())
    assert invoke("member", "add", "+15145550103", "-g", "mardi", "--lang", "en")[0] == 0
    monkeypatch.setenv("CERCLE_DATA_KEY", env["CERCLE_DATA_KEY"])
    app = bootstrap(Settings.from_env())

    finding = check_data_key(app.engine, app.keys)
    app.close()

    assert finding.status == "warn"
    assert 0 < finding.detail["under_other_keys"] < finding.detail["sealed_values"]


@pytest.mark.parametrize("process", ["worker", "web", "run"])
def test_processes_refuse_to_start_with_a_wrong_key_and_touch_nothing(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, process: str
) -> None:
    _enroll_two(env)
    before = _dump(env)
    wrong = generate_key()
    monkeypatch.setenv("CERCLE_DATA_KEY", wrong)

    code, output = invoke(process)

    assert code == 2
    assert "CERCLE_DATA_KEY does not open the stored data" in " ".join(output.split())
    assert wrong not in output
    assert _dump(env) == before


def test_check_and_doctor_fail_loudly_with_a_wrong_key(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _enroll_two(env)
    monkeypatch.setenv("CERCLE_DATA_KEY", generate_key())

    code, output = invoke("check")
    doctor_code, findings = _doctor("--offline")

    assert code == 2
    assert "CERCLE_DATA_KEY" in output
    assert doctor_code == 2
    assert _by_check(findings)["data_key"]["status"] == "fail"


# --- cercle doctor -------------------------------------------------------------------------


def test_doctor_offline_on_a_healthy_sms_deployment_warns_only_about_the_bare_number(
    env: dict[str, str],
) -> None:
    code, findings = _doctor("--offline")

    by = _by_check(findings)
    assert tuple(f["check"] for f in findings) == CHECKS
    assert by["config"]["status"] == "warn"
    assert "TWILIO_MESSAGING_SERVICE_SID" in str(by["config"]["fix"])
    assert {f["status"] for f in findings if f["check"] != "config"} <= {"ok", "skip"}
    assert code == 1


def test_doctor_without_a_key_says_how_to_make_one(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CERCLE_DATA_KEY")

    code, findings = _doctor("--offline")

    assert code == 2
    assert "cercle keys generate" in str(_by_check(findings)["data_key"]["fix"])


def test_doctor_names_the_bad_variable_when_the_configuration_cannot_be_read(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERCLE_SMS_RATE", "fast")

    code, findings = _doctor()

    assert code == 2
    assert findings[0]["check"] == "config"
    assert "CERCLE_SMS_RATE" in str(findings[0]["fix"])


def test_doctor_on_an_unmigrated_database_says_to_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    monkeypatch.setenv("CERCLE_DATA_KEY", generate_key())
    for k in (
        "SIGNAL_SERVICE",
        "SIGNAL_CLI",
        "SIGNAL_NUMBER",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
    ):
        monkeypatch.delenv(k, raising=False)
    for k in ("TWILIO_NUMBER", "PUBLIC_BASE_URL", "CERCLE_DATA_KEY_PREVIOUS"):
        monkeypatch.delenv(k, raising=False)

    code, findings = _doctor()

    by = _by_check(findings)
    assert code == 2
    assert by["migrations"]["status"] == "fail"
    assert "cercle db upgrade" in str(by["migrations"]["fix"])
    assert by["config"]["status"] == "warn"  # no transport: the sandbox only
    assert by["outbox"]["status"] == "skip"


def test_doctor_human_output_gives_a_fix_under_each_problem(env: dict[str, str]) -> None:
    code, output = invoke("doctor", "--offline")

    assert code == 1
    assert "WARN" in output and "TWILIO_MESSAGING_SERVICE_SID" in output


def test_a_late_backlog_is_reported_with_its_age(env: dict[str, str]) -> None:
    _enroll_two(env)
    app = bootstrap(Settings.from_env())
    now = app.clock.now()
    with transaction(app.engine) as s:
        for age in (30, 900):
            s.add(
                Outbox(
                    recipient_id=1,
                    channel="sms",
                    state=OutboxState.PENDING,
                    created_at=now - timedelta(seconds=age),
                )
            )

    finding = check_outbox(app.engine, now)
    app.close()

    assert finding.status == "warn"
    assert finding.detail["waiting"] >= 2
    assert finding.detail["oldest_age_seconds"] >= 900
    assert "worker" in str(finding.text()[1])


def test_run_checks_never_raises_when_the_database_is_gone(
    env: dict[str, str], tmp_path: Path
) -> None:
    settings = Settings.from_env()
    app = bootstrap(settings)
    app.engine.dispose()
    Path(env["DATABASE_URL"].removeprefix("sqlite:///")).unlink()
    (tmp_path / "cercle.db").mkdir()  # a directory where the file was: it cannot be opened

    findings = anyio.run(lambda: run_checks(app, network=False))
    app.close()

    assert {f.check: f.status for f in findings}["migrations"] == "fail"
    assert all(f.text()[0] for f in findings)
