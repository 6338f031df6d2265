"""The ``cercle`` commands for open hours, end dates, safety choices and invite codes."""

from __future__ import annotations

import json
import re

from sqlmodel import Session, select

from relay.storage.engine import make_engine
from relay.storage.models import Invite
from tests.cli_support import invoke


def test_a_group_is_created_with_sessions_an_end_date_and_safety_choices(
    env: dict[str, str],
) -> None:
    code, output = invoke(
        "group", "create", "mardi", "--schedule", "tue 19:00-20:30", "--tz", "America/Toronto",
        "--ends", "2099-03-31", "--premoderate", "2", "--require-approval",
        "--exit-word", "Parapluie",
    )  # fmt: skip
    assert code == 0, output

    _, output = invoke("group", "schedule", "mardi", "--json")
    [row] = json.loads(output)
    assert row["schedule"] == "tue 19:00-20:30" and row["tz"] == "America/Toronto"
    _, output = invoke("group", "safety", "mardi", "--json")
    [row] = json.loads(output)
    assert row["premoderate"] == 2 and row["require_approval"] is True
    assert row["exit_word"] == "PARAPLUIE"
    assert row["ends_at"].startswith("2099-04-01T00:00:00-04:00")


def test_a_bad_schedule_is_refused_before_the_group_exists(env: dict[str, str]) -> None:
    code, output = invoke("group", "create", "mardi", "--schedule", "someday 7-8")

    assert code == 1 and "someday" in output
    _, output = invoke("group", "list", "--json")
    assert json.loads(output) == []


def test_sessions_are_added_removed_and_cleared(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")

    invoke("group", "schedule", "mardi", "--add", "tue 19:00-20:30", "--add", "jeu 10h-11h")
    invoke("group", "schedule", "mardi", "--remove", "thu 10:00-11:00")
    _, output = invoke("group", "schedule", "mardi", "--json")
    assert json.loads(output)[0]["schedule"] == "tue 19:00-20:30"

    invoke("group", "schedule", "mardi", "--always-open")
    _, output = invoke("group", "schedule", "mardi", "--json")
    assert json.loads(output)[0]["schedule"] == "always open"
    assert json.loads(output)[0]["open_now"] is True


def test_an_unknown_time_zone_is_named(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")

    code, output = invoke("group", "schedule", "mardi", "--add", "tue 9-10", "--tz", "Mars/Base")

    assert code == 1 and "Mars/Base" in output


def test_end_on_a_date_after_sessions_or_never(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi", "--schedule", "tue 19:00-20:30")

    code, output = invoke("group", "end", "mardi", "--on", "2099-03-31")
    assert code == 0 and "2099-04-01T00:00:00-04:00" in output
    code, output = invoke("group", "end", "mardi", "--after-sessions", "4")
    assert code == 0 and "ends at" in output
    code, output = invoke("group", "end", "mardi", "--never")
    assert code == 0 and "open-ended" in output
    code, output = invoke("group", "end", "mardi", "--on", "31/03/2099")
    assert code == 1 and "2027-03-31" in output


def test_safety_choices_are_changed_one_at_a_time(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi", "--exit-word", "Parapluie")

    invoke("group", "safety", "mardi", "--alert-hold", "--alert-content", "--no-exit-word")

    _, output = invoke("group", "safety", "mardi", "--json")
    [row] = json.loads(output)
    assert row["alert_hold"] is True and row["alert_content"] is True
    assert row["exit_word"] is None and row["premoderate"] == 0


def test_an_invite_code_is_shown_once_and_stored_only_as_a_keyed_hash(
    env: dict[str, str],
) -> None:
    invoke("group", "create", "mardi")

    code, output = invoke("invite", "create", "--group", "mardi", "--expires", "7d")

    assert code == 0, output
    found = re.search(r"JOIN ([A-Z0-9]{12})", output)
    assert found and f"REJOINDRE {found.group(1)}" in output
    with Session(make_engine(env["DATABASE_URL"])) as s:
        [row] = s.exec(select(Invite)).all()
    assert row.code_hash != found.group(1)
    _, listing = invoke("invite", "list", "--group", "mardi", "--json")
    [live] = json.loads(listing)
    assert found.group(1) not in listing and live["role"] == "member"


def test_an_invite_can_be_revoked(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")
    invoke("invite", "create", "--group", "mardi")
    _, listing = invoke("invite", "list", "--group", "mardi", "--json")
    [live] = json.loads(listing)

    code, _ = invoke("invite", "revoke", str(live["id"]))

    assert code == 0
    _, listing = invoke("invite", "list", "--group", "mardi", "--json")
    assert json.loads(listing) == []
    code, output = invoke("invite", "revoke", str(live["id"]))
    assert code == 1 and "no live invite" in output


def test_invites_for_staff_in_french(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")

    code, output = invoke(
        "invite", "create", "-g", "mardi", "--role", "facilitator", "--lang", "fr", "--json"
    )

    assert code == 0
    assert len(json.loads(output)["code"]) == 12
