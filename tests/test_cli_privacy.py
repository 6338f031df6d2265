"""``cercle purge``, ``cercle member ban|unban`` and ``cercle keys rotate|verify``."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from relay.privacy.retention import Kind
from relay.storage.crypto import generate_key
from relay.storage.engine import make_engine
from relay.storage.models import AuditEvent
from tests.cli_support import invoke


def audit(env: dict[str, str]) -> list[str]:
    with Session(make_engine(env["DATABASE_URL"])) as s:
        return [e.action for e in s.exec(select(AuditEvent)).all()]


def test_purge_reports_every_kind_as_json(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")
    invoke("member", "add", "+15145550142", "--group", "mardi")

    code, output = invoke("purge", "--json")

    assert code == 0, output
    rows = json.loads(output)
    assert [r["kind"] for r in rows] == [k.value for k in Kind]
    assert all(isinstance(r["removed"], int) for r in rows)


def test_purge_prints_a_table(env: dict[str, str]) -> None:
    code, output = invoke("purge")

    assert code == 0
    assert "outbox_payloads_wiped" in output and "Purged" in output


def test_a_banned_number_is_refused_at_enrollment_with_a_clear_error(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")

    code, output = invoke("member", "ban", "514 555 0142", "--reason", "intruder")
    assert code == 0, output
    code, output = invoke("member", "add", "+15145550142", "--group", "mardi")

    assert code == 1
    assert "banned from every group" in output and "cercle member unban" in output
    assert "0142" not in output
    assert audit(env).count("ban_blocked") == 1


def test_unban_lets_the_number_be_enrolled_again(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")
    invoke("member", "ban", "+15145550142")

    code, _ = invoke("member", "unban", "+15145550142")
    assert code == 0
    code, output = invoke("member", "unban", "+15145550142")
    assert code == 1 and "not banned" in output

    code, output = invoke("member", "add", "+15145550142", "--group", "mardi")
    assert code == 0, output


def test_banning_a_current_member_removes_them(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")
    invoke("member", "add", "+15145550142", "--group", "mardi")

    code, output = invoke("member", "ban", "+15145550142")

    assert code == 0
    assert "1 current memberships removed" in output
    _, output = invoke("member", "list", "--group", "mardi", "--json")
    assert json.loads(output) == []


def test_keys_rotate_then_verify_with_the_new_key_alone(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke("group", "create", "mardi")
    invoke("member", "add", "+15145550142", "--group", "mardi", "--lang", "en")
    invoke("member", "ban", "+15145550143")
    old, new = env["CERCLE_DATA_KEY"], generate_key()

    monkeypatch.setenv("CERCLE_DATA_KEY", new)
    code, output = invoke("keys", "verify", "--json")
    assert code == 1
    assert {r["column"]: r["left_under_another_key"] for r in json.loads(output)}[
        "member.address_enc"
    ] == 1

    monkeypatch.setenv("CERCLE_DATA_KEY_PREVIOUS", old)
    code, output = invoke("keys", "rotate", "--batch", "1")
    assert code == 0, output
    assert "Nothing is left under the old key" in output

    monkeypatch.delenv("CERCLE_DATA_KEY_PREVIOUS")
    code, output = invoke("keys", "verify", "--json")
    assert code == 0
    assert {r["left_under_another_key"] for r in json.loads(output)} == {0}
    code, output = invoke("member", "list", "--group", "mardi", "--show-numbers", "--json")
    assert json.loads(output)[0]["number"] == "+15145550142"
    code, output = invoke("member", "add", "+15145550143", "--group", "mardi")
    assert code == 1 and "banned" in output


def test_keys_rotate_without_the_previous_key_fails_and_says_why(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke("group", "create", "mardi")
    invoke("member", "add", "+15145550142", "--group", "mardi")
    monkeypatch.setenv("CERCLE_DATA_KEY", generate_key())

    code, output = invoke("keys", "rotate")

    assert code == 1
    assert "CERCLE_DATA_KEY_PREVIOUS" in output


def test_the_previous_key_must_differ_from_the_current_one(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERCLE_DATA_KEY_PREVIOUS", env["CERCLE_DATA_KEY"])

    code, output = invoke("keys", "verify")

    assert code == 1
    assert "same key" in output and env["CERCLE_DATA_KEY"] not in output


def test_a_malformed_previous_key_is_named(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERCLE_DATA_KEY_PREVIOUS", "not a key")

    code, output = invoke("keys", "verify")

    assert code == 1
    assert "CERCLE_DATA_KEY_PREVIOUS" in output and "not a key" not in output


def test_audit_retention_days_must_be_positive(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERCLE_AUDIT_RETENTION_DAYS", "0")

    code, output = invoke("purge")

    assert code == 1 and "CERCLE_AUDIT_RETENTION_DAYS" in output
