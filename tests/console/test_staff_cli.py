"""``cercle staff``: accounts for the console, created and recovered from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlmodel import Session, create_engine, select

from cercle.console import sessions
from relay.storage.models import AuditEvent, StaffAccount, StaffSession
from tests.cli_support import invoke


def setup_link(output: str) -> str:
    return next(w for w in output.split() if "/staff/setup/" in w)


def test_adding_staff_prints_a_one_time_setup_link(env: dict[str, str]) -> None:
    code, output = invoke("staff", "add", "marie", "--role", "admin")

    assert code == 0, output
    link = setup_link(output)
    assert link.startswith("https://relay.example.org/staff/setup/") and len(link) > 70
    assert "24 h" in output
    code, output = invoke("staff", "list", "--json")
    assert json.loads(output) == [
        {
            "name": "marie",
            "role": "admin",
            "lang": "fr",
            "passkeys": 0,
            "setup_link_live": True,
            "groups": [],
        }
    ]


def test_a_recovery_link_is_a_new_link(env: dict[str, str]) -> None:
    _, first = invoke("staff", "add", "sam")

    code, second = invoke("staff", "link", "sam")

    assert code == 0 and setup_link(second) != setup_link(first)


def test_names_are_checked_and_unique(env: dict[str, str]) -> None:
    invoke("staff", "add", "sam")

    assert invoke("staff", "add", "sam")[0] == 1
    code, output = invoke("staff", "add", "Sam Smith")
    assert code == 1 and "lower-case" in output


def test_removing_staff_deletes_the_account(env: dict[str, str]) -> None:
    invoke("staff", "add", "sam")

    assert invoke("staff", "remove", "sam")[0] == 0
    assert json.loads(invoke("staff", "list", "--json")[1]) == []
    assert invoke("staff", "link", "sam")[0] == 1


def staff_row(name: str) -> dict[str, object]:
    rows = json.loads(invoke("staff", "list", "--json")[1])
    row: dict[str, object] = next(r for r in rows if r["name"] == name)
    return row


def audit(env: dict[str, str]) -> list[tuple[str, str, str | None, str | None]]:
    """(actor, action, target, detail) of every staff change, in order."""
    engine = create_engine(env["DATABASE_URL"])
    with Session(engine) as s:
        rows = s.exec(select(AuditEvent).order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
        found = [
            (e.actor, e.action, e.target, e.detail) for e in rows if e.action.startswith("staff_")
        ]
    engine.dispose()
    return found


def signed_in(env: dict[str, str], name: str) -> int:
    """Open a console session for ``name`` as a passkey sign-in would; return its count."""
    engine = create_engine(env["DATABASE_URL"])
    with Session(engine) as s:
        account = s.exec(select(StaffAccount).where(StaffAccount.name == name)).one()
    sessions.open_session(engine, datetime.now(UTC), "en", account.id)
    with Session(engine) as s:
        count = len(s.exec(select(StaffSession).where(StaffSession.staff_id == account.id)).all())
    engine.dispose()
    return count


def test_a_facilitator_is_added_for_its_groups(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")
    invoke("group", "create", "jeudi")
    invoke("group", "create", "samedi")

    code, output = invoke(
        "staff", "add", "sam", "--role", "facilitator", "--group", "mardi", "--group", "jeudi"
    )

    assert code == 0, output
    assert "/staff/setup/" in output
    assert staff_row("sam")["groups"] == ["jeudi", "mardi"]
    assert audit(env) == [
        ("admin", "staff_add", "sam", None),
        ("admin", "staff_group_add", "sam", None),
        ("admin", "staff_group_add", "sam", None),
    ]


def test_adding_refuses_an_unknown_group_and_creates_nothing(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")

    code, output = invoke("staff", "add", "sam", "--group", "mardi", "--group", "nowhere")

    assert code == 1 and "no open group" in output
    assert json.loads(invoke("staff", "list", "--json")[1]) == []


def test_an_admin_is_given_no_groups(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")

    code, output = invoke("staff", "add", "marie", "--role", "admin", "--group", "mardi")

    assert code == 1 and "every group" in output


def test_a_facilitator_without_groups_is_told_it_sees_none(env: dict[str, str]) -> None:
    code, output = invoke("staff", "add", "sam")

    assert code == 0 and "sees no group yet" in output
    assert staff_row("sam")["groups"] == []


def test_groups_are_given_and_taken_away(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")
    invoke("group", "create", "jeudi")
    invoke("staff", "add", "sam", "--group", "mardi")
    assert signed_in(env, "sam") == 1

    code, output = invoke("staff", "groups", "sam", "--add", "jeudi")

    assert code == 0 and "sam sees: jeudi, mardi" in output
    assert "ended" not in output and signed_in(env, "sam") == 2  # giving keeps sessions

    code, output = invoke("staff", "groups", "sam", "--remove", "mardi")

    assert code == 0 and "sam sees: jeudi" in output
    assert "Their console sessions were ended." in output
    assert signed_in(env, "sam") == 1  # only the one just opened
    assert [a[1:] for a in audit(env)][-2:] == [
        ("staff_group_add", "sam", None),
        ("staff_group_remove", "sam", None),
    ]
    assert invoke("staff", "groups", "sam")[1].strip() == "sam sees: jeudi"


def test_taking_away_a_group_it_does_not_have_is_an_error(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")
    invoke("staff", "add", "sam")

    code, output = invoke("staff", "groups", "sam", "--remove", "mardi")

    assert code == 1 and "does not have that group" in output


def test_lowering_an_admin_ends_its_sessions_and_raising_drops_its_groups(
    env: dict[str, str],
) -> None:
    invoke("group", "create", "mardi")
    invoke("staff", "add", "marie", "--role", "admin")
    signed_in(env, "marie")

    code, output = invoke("staff", "role", "marie", "facilitator")

    assert code == 0 and "marie is now facilitator." in output
    assert "sessions were ended" in output and signed_in(env, "marie") == 1
    assert staff_row("marie")["role"] == "facilitator"
    invoke("staff", "groups", "marie", "--add", "mardi")

    code, output = invoke("staff", "role", "marie", "admin")

    assert code == 0 and "ended" not in output
    assert staff_row("marie") | {"setup_link_live": None} == {
        "name": "marie",
        "role": "admin",
        "lang": "fr",
        "passkeys": 0,
        "setup_link_live": None,
        "groups": [],
    }
    assert ("admin", "staff_role", "marie", "facilitator") in audit(env)
    assert ("admin", "staff_role", "marie", "admin") in audit(env)
    assert invoke("staff", "groups", "marie", "--add", "mardi")[0] == 1  # an admin has all
    assert invoke("staff", "role", "nobody", "admin")[0] == 1


def test_the_list_names_each_facilitators_groups(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")
    invoke("staff", "add", "sam", "--group", "mardi")
    invoke("staff", "add", "marie", "--role", "admin")

    code, output = invoke("staff", "list")

    assert code == 0
    [sam] = [line for line in output.splitlines() if "sam" in line]
    [marie] = [line for line in output.splitlines() if "marie" in line]
    assert "mardi" in sam and "(all)" in marie
