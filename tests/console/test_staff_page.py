"""The console's staff page: an admin adds a facilitator for one group, changes its groups
and role, and every change is audited by the admin's name with staff and group names only."""

from __future__ import annotations

from sqlmodel import Session, col, select

from cercle.console import sessions
from relay.service.relay import GroupSettings
from relay.storage.models import AuditEvent, StaffAccount, StaffRole, StaffSession
from tests.console_support import Desk


def staff_audit(desk: Desk) -> list[tuple[str, str, str | None, int | None, str | None]]:
    with Session(desk.app.engine) as s:
        rows = s.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
        return [
            (e.actor, e.action, e.target, e.group_id, e.detail)
            for e in rows
            if e.action.startswith("staff_") and e.actor != "admin"
        ]


def sessions_of(desk: Desk, name: str) -> int:
    with Session(desk.app.engine) as s:
        account = s.exec(select(StaffAccount).where(StaffAccount.name == name)).one()
        return len(s.exec(select(StaffSession).where(StaffSession.staff_id == account.id)).all())


def test_an_admin_adds_a_facilitator_for_one_group(desk: Desk) -> None:
    desk.app.relay.create_group(GroupSettings("mardi"))
    desk.app.relay.create_group(GroupSettings("jeudi"))
    desk.sign_in("marie", StaffRole.ADMIN)

    made = desk.post(
        "/staff/accounts", name="sam", role="facilitator", lang="fr", **{"group-1": "on"}
    )

    assert made.status_code == 200 and "https://relay.example.org/staff/setup/" in made.text
    page = desk.web.get("/staff/accounts").text
    assert "<td>mardi</td>" in page and 'name="group-2">' in page
    assert staff_audit(desk) == [
        ("staff:marie", "staff_add", "sam", None, None),
        ("staff:marie", "staff_group_add", "sam", 1, None),
    ]


def test_an_admin_changes_a_facilitators_groups_and_ends_its_sessions(desk: Desk) -> None:
    desk.app.relay.create_group(GroupSettings("mardi"))
    desk.app.relay.create_group(GroupSettings("jeudi"))
    desk.sign_in("sam", StaffRole.FACILITATOR, groups=["mardi"])
    sam_cookie = desk.web.cookies.get(sessions.COOKIE) or ""
    desk.sign_in("marie", StaffRole.ADMIN)
    assert sessions_of(desk, "sam") == 1

    given = desk.post("/staff/accounts/1/groups", **{"group-1": "on", "group-2": "on"})

    assert given.status_code == 303 and sessions_of(desk, "sam") == 1

    taken = desk.post("/staff/accounts/1/groups", **{"group-2": "on"})

    assert taken.headers["location"] == "/staff/accounts?done=access_ended"
    assert sessions_of(desk, "sam") == 0
    assert staff_audit(desk)[-2:] == [
        ("staff:marie", "staff_group_add", "sam", 2, None),
        ("staff:marie", "staff_group_remove", "sam", 1, None),
    ]
    desk.web.cookies.set(sessions.COOKIE, sam_cookie, domain="relay.example.org", path="/staff")
    assert desk.web.get("/staff/groups").status_code == 303


def test_an_admin_changes_a_role_but_not_its_own(desk: Desk) -> None:
    desk.sign_in("sam", StaffRole.FACILITATOR)
    desk.sign_in("marie", StaffRole.ADMIN)

    raised = desk.post("/staff/accounts/1/role", role="admin")
    own = desk.post("/staff/accounts/2/role", role="facilitator")
    bad = desk.post("/staff/accounts/1/role", role="emperor")

    assert raised.status_code == 303
    assert own.status_code == 400 and "your own" in own.text
    assert bad.status_code == 400
    assert staff_audit(desk) == [("staff:marie", "staff_role", "sam", None, "admin")]


def test_an_admin_gives_a_new_link_and_removes_an_account(desk: Desk) -> None:
    desk.sign_in("sam", StaffRole.FACILITATOR)
    desk.sign_in("marie", StaffRole.ADMIN)

    link = desk.post("/staff/accounts/1/link")
    wrong = desk.post("/staff/accounts/1/remove", confirm="someone")
    removed = desk.post("/staff/accounts/1/remove", confirm="sam")

    assert link.status_code == 200 and "/staff/setup/" in link.text
    assert wrong.status_code == 400 and "nothing changed" in wrong.text
    assert removed.status_code == 303
    assert "sam" not in desk.web.get("/staff/accounts").text
    assert desk.post("/staff/accounts/1/role", role="admin").status_code == 404
    assert [a[1] for a in staff_audit(desk)] == ["staff_link", "staff_remove"]


def test_errors_on_the_staff_page_are_shown_in_the_page(desk: Desk) -> None:
    desk.sign_in("marie", StaffRole.ADMIN, lang="fr")

    taken = desk.post("/staff/accounts", name="marie", role="admin")
    bad = desk.post("/staff/accounts", name="Not A Name", role="facilitator")

    assert taken.status_code == bad.status_code == 400
    assert "Traceback" not in taken.text + bad.text
