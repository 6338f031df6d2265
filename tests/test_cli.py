"""The ``cercle`` command, as an admin uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay.storage.models import AuditEvent
from tests.cli_support import invoke


def test_keys_generate_prints_a_usable_key() -> None:
    code, output = invoke("keys", "generate")
    assert code == 0
    from relay.storage.crypto import parse_key

    assert len(parse_key(output.strip())) == 32


def test_without_a_key_commands_refuse_and_say_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CERCLE_DATA_KEY", raising=False)

    code, output = invoke("group", "list")

    assert code == 1
    assert "CERCLE_DATA_KEY" in output and "cercle keys generate" in output


def test_run_without_any_transport_points_to_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for k in ("SIGNAL_SERVICE", "SIGNAL_CLI", "SIGNAL_NUMBER", "TWILIO_ACCOUNT_SID"):
        monkeypatch.delenv(k, raising=False)

    code, output = invoke("run")

    assert code == 2
    assert "cercle sandbox" in output and "SIGNAL_SERVICE" in output


def test_a_group_is_created_and_listed(env: dict[str, str]) -> None:
    code, _ = invoke(
        "group", "create", "mardi-soir", "--lang", "fr", "--timer", "1d", "--allow-rename"
    )
    assert code == 0

    code, output = invoke("group", "list", "--json")
    groups = json.loads(output)
    assert groups == [
        {
            "name": "mardi-soir",
            "lang": "fr",
            "timer_seconds": 86400,
            "allow_rename": True,
            "allow_sms": True,
            "allow_media": False,
            "show_name": False,
            "video": False,
            "closed": False,
            "members": 0,
        }
    ]


def test_a_group_chooses_whether_its_name_shows_on_web_members_page(
    env: dict[str, str],
) -> None:
    code, _ = invoke("group", "create", "mardi", "--show-name")
    assert code == 0
    code, output = invoke("group", "set", "mardi", "--no-show-name", "--json")
    assert code == 0, output
    assert json.loads(output)[0]["show_name"] is False
    code, output = invoke("group", "set", "mardi", "--show-name", "--json")
    assert json.loads(output)[0]["show_name"] is True


def test_enrolling_normalizes_the_number_and_lists_it_masked(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")

    code, output = invoke("member", "add", "(514) 555-0142", "--group", "mardi", "--lang", "en")
    assert code == 0, output
    assert "514" not in output.replace("5145550100", "")

    code, output = invoke("member", "list", "--group", "mardi", "--json")
    [row] = json.loads(output)
    assert row["number"] == "••••••••42"
    assert row["transport"] == "sms" and row["state"] == "invited" and row["role"] == "member"
    assert not any(c.isdigit() for c in row["pseudonym"])


def test_the_same_number_cannot_join_two_groups_on_one_channel(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")
    invoke("group", "create", "jeudi")
    invoke("member", "add", "+15145550142", "--group", "mardi")

    code, output = invoke("member", "add", "514 555 0142", "--group", "jeudi")

    assert code == 1
    assert "already enrolled" in output


def test_an_invalid_number_is_refused_clearly(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")

    code, output = invoke("member", "add", "555-0142", "--group", "mardi")

    assert code == 1
    assert "not valid" in output or "not a phone number" in output


def test_showing_full_numbers_is_audited(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")
    invoke("member", "add", "+15145550142", "--group", "mardi")

    code, output = invoke("member", "list", "--group", "mardi", "--show-numbers", "--json")

    assert code == 0
    assert json.loads(output)[0]["number"] == "+15145550142"
    from relay.storage.engine import make_engine

    with Session(make_engine(env["DATABASE_URL"])) as s:
        actions = [e.action for e in s.exec(select(AuditEvent)).all()]
    assert "numbers_shown" in actions


def test_removing_by_pseudonym_deletes_the_member(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")
    _, output = invoke("member", "add", "+15145550142", "--group", "mardi", "--json")
    name = json.loads(output)[0]["pseudonym"]

    code, _ = invoke("member", "remove", name, "--group", "mardi")

    assert code == 0
    _, output = invoke("member", "list", "--group", "mardi", "--json")
    assert json.loads(output) == []


def test_a_group_refusing_sms_refuses_sms_enrollment(env: dict[str, str]) -> None:
    invoke("group", "create", "signal-only", "--no-allow-sms")

    code, output = invoke("member", "add", "+15145550142", "--group", "signal-only")

    assert code == 1
    assert "does not accept members on SMS" in output


def test_closing_a_group_needs_confirmation(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")

    code, output = invoke("group", "close", "mardi")
    assert code == 1 and "--yes" in output

    code, _ = invoke("group", "close", "mardi", "--yes")
    assert code == 0
    _, output = invoke("group", "list", "--json")
    assert json.loads(output)[0]["closed"] is True


def test_the_sandbox_runs_a_scripted_rehearsal(tmp_path: Path) -> None:
    script = "alice: hello\n:agree\nalice: hello everyone\nfac: /who\n:quit\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNAL_", "TWILIO_"))}
    env.pop("CERCLE_DATA_KEY", None)

    done = subprocess.run(
        [sys.executable, "-m", "cercle.cli", "sandbox"],
        input=script,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "readable by you only" in done.stdout
    assert (tmp_path / ".cercle-sandbox.key").stat().st_mode & 0o777 == 0o600
    assert ": hello everyone" in done.stdout
    assert "In this group:" in done.stdout or "Dans ce groupe" in done.stdout
    assert "+1514" not in done.stdout


def test_the_readme_documents_every_command_in_both_languages() -> None:
    from relay.commands.table import COMMANDS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for cmd in COMMANDS:
        assert f"`/{cmd.words['en']}" in readme, cmd.name
        assert f"/{cmd.words['fr']}" in readme, cmd.name


def test_group_show_counts_the_sms_segments_a_group_costs(env: dict[str, str]) -> None:
    from relay.storage.engine import make_engine
    from relay.storage.models import Outbox

    invoke("group", "create", "mardi")
    invoke("member", "add", "+15145550142", "--group", "mardi")
    with Session(make_engine(env["DATABASE_URL"])) as s:
        rows = s.exec(select(Outbox)).all()
        for row in rows:
            row.segments = 2
            s.add(row)
        s.commit()
        expected = 2 * len(rows)

    code, output = invoke("group", "show", "mardi", "--json")

    assert code == 0
    assert json.loads(output)[0]["sms_segments_30d"] == expected
