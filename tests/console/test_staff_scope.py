"""Staff who see only their groups: a facilitator of ``mardi`` reaching for ``jeudi`` through
every console route, with jeudi's ids and with mardi's ids mixed with jeudi's; an admin who
reaches both; and access taken away or given, holding from the very next request."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select as select_all
from sqlmodel import Session, SQLModel, col, select
from starlette.routing import Route

from cercle.console import access, passkeys
from cercle.console.context import ROOT
from cercle.console.web import routes
from relay.messages import Channel
from relay.service import groups as group_admin
from relay.service.relay import GroupSettings
from relay.storage.models import AuditEvent, Invite, Role, StaffRole
from tests.console_support import Desk

MARDI_NUMBER = "+15145550142"
JEUDI_NUMBER = "+15145550143"
# Forms a page would send, so that a refusal is the scope's and not a missing field's.
FORMS: dict[str, dict[str, str]] = {
    "/groups/{gid:int}/basics": {"lang": "fr", "timer": "2d"},
    "/groups/{gid:int}/schedule": {"sessions": "tue 19:00-20:30"},
    "/groups/{gid:int}/end": {"ends": "2030-01-31"},
    "/groups/{gid:int}/safety": {"premoderate": "3"},
    "/groups/{gid:int}/close": {"confirm": "jeudi"},
    "/groups/{gid:int}/members": {"number": "+15145550144", "role": "member", "lang": "en"},
    "/groups/{gid:int}/invites": {"expires": "48h", "role": "member"},
}


def two_groups(desk: Desk) -> dict[str, int]:
    """mardi and jeudi, a member and a live invite in each; their ids by name."""
    ids: dict[str, int] = {}
    for name, number in (("mardi", MARDI_NUMBER), ("jeudi", JEUDI_NUMBER)):
        group = desk.app.relay.create_group(GroupSettings(name, lang="en"))
        member = desk.app.relay.enroll(number, name, Role.MEMBER, "en", Channel.SMS)
        group_admin.create_invite(desk.app.relay, name)
        ids[name] = group.id or 0
        ids[f"{name}-member"] = member.id or 0
    with Session(desk.app.engine) as s:
        rows = s.exec(select(Invite.id, Invite.group_id)).all()
    for invite_id, group_id in rows:
        ids["mardi-invite" if group_id == ids["mardi"] else "jeudi-invite"] = invite_id
    return ids


def snapshot(desk: Desk) -> dict[str, list[Any]]:
    """Every row of every table but the sessions' (each request touches its own)."""
    skip = {"staff_session", "join_attempt"}
    with Session(desk.app.engine) as s:
        return {
            name: sorted(map(tuple, s.execute(select_all(table)).all()), key=repr)
            for name, table in SQLModel.metadata.tables.items()
            if name not in skip
        }


def console_routes(desk: Desk) -> list[tuple[str, str]]:
    """(method, path template) of every staff-only console route, read from the router."""
    rp = passkeys.RelyingParty.from_base_url("https://relay.example.org", "Org")
    found = []
    for route in routes(desk.app, rp):
        if not isinstance(route, Route) or route.path == "/":
            continue
        if route.path.startswith(("/signin", "/setup")):
            continue
        found.extend((m, route.path) for m in sorted((route.methods or {"GET"}) - {"HEAD"}))
    return found


def fill(path: str, values: dict[str, int]) -> str:
    def one(match: re.Match[str]) -> str:
        return str(values[match.group(1)])

    return ROOT + re.sub(r"\{(\w+)(?::\w+)?\}", one, path)


def call(desk: Desk, method: str, path: str, template: str) -> Any:
    if method == "GET":
        return desk.web.get(path)
    return desk.post(path, **FORMS.get(template, {}))


def test_every_route_with_a_foreign_id_answers_404_and_changes_nothing(desk: Desk) -> None:
    ids = two_groups(desk)
    desk.sign_in("sam", StaffRole.FACILITATOR, groups=["mardi"])
    foreign = {"gid": ids["jeudi"], "mid": ids["jeudi-member"], "iid": ids["jeudi-invite"]}
    # mardi's own address with jeudi's member or invite in it
    mixed = {"gid": ids["mardi"], "mid": ids["jeudi-member"], "iid": ids["jeudi-invite"]}
    missing = {"gid": 999, "mid": 999, "iid": 999}
    before = snapshot(desk)
    walked = 0

    for method, template in console_routes(desk):
        if "{gid" not in template:
            continue
        for values in (foreign, mixed, missing):
            if values is mixed and "{mid" not in template and "{iid" not in template:
                continue
            answer = call(desk, method, fill(template, values), template)
            assert answer.status_code in (403, 404), (method, template, values)
            if answer.status_code == 404:  # 403 only where facilitators may never act
                assert "There is no open group here." in answer.text
            assert "jeudi" not in answer.text and "5550143" not in answer.text
            walked += 1

    assert walked >= 30  # every group, member and invite route, each way
    assert snapshot(desk) == before


def test_a_foreign_id_looks_exactly_like_a_missing_one(desk: Desk) -> None:
    ids = two_groups(desk)
    desk.sign_in("sam", StaffRole.FACILITATOR, groups=["mardi"])

    foreign = desk.web.get(f"/staff/groups/{ids['jeudi']}/members")
    missing = desk.web.get("/staff/groups/999/members")

    assert foreign.status_code == missing.status_code == 404
    assert foreign.text == missing.text


def test_lists_audit_and_health_name_only_the_facilitators_groups(desk: Desk) -> None:
    ids = two_groups(desk)
    desk.sign_in("sam", StaffRole.FACILITATOR, groups=["mardi"])

    groups = desk.web.get("/staff/groups").text
    audit = desk.web.get("/staff/audit").text
    health = desk.web.get("/staff/health").text
    by_foreign_group = desk.web.get("/staff/audit", params={"group": str(ids["jeudi"])})

    assert "mardi" in groups and "jeudi" not in groups
    assert "<td>mardi</td>" in audit and "jeudi" not in audit
    assert "staff_add" not in audit  # entries naming no group are the organization's
    assert "<td>mardi</td>" in health and "jeudi" not in health
    assert by_foreign_group.status_code == 404


def test_a_facilitator_acts_on_its_own_group(desk: Desk) -> None:
    ids = two_groups(desk)
    desk.sign_in("sam", StaffRole.FACILITATOR, groups=["mardi"])

    assert desk.web.get(f"/staff/groups/{ids['mardi']}/members").status_code == 200
    revoked = desk.post(f"/staff/groups/{ids['mardi']}/invites/{ids['mardi-invite']}/revoke")
    removed = desk.post(f"/staff/groups/{ids['mardi']}/members/{ids['mardi-member']}/remove")

    assert revoked.status_code == removed.status_code == 303
    assert [e.action for e in audit_rows(desk)][-2:] == ["invite_revoke", "remove"]


def test_an_admin_reaches_every_group(desk: Desk) -> None:
    ids = two_groups(desk)
    desk.sign_in("marie", StaffRole.ADMIN)
    values = {"gid": ids["jeudi"], "mid": ids["jeudi-member"], "iid": ids["jeudi-invite"]}

    for method, template in console_routes(desk):
        if method == "GET":
            assert desk.web.get(fill(template, values)).status_code == 200, template
    assert "jeudi" in desk.web.get("/staff/groups").text
    assert "jeudi" in desk.web.get("/staff/audit").text
    revoked = desk.post(f"/staff/groups/{ids['jeudi']}/invites/{ids['jeudi-invite']}/revoke")
    assert revoked.status_code == 303


def audit_rows(desk: Desk) -> list[AuditEvent]:
    with Session(desk.app.engine) as s:
        return list(s.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all())


def test_taking_a_group_away_ends_access_and_sessions_on_the_next_request(desk: Desk) -> None:
    ids = two_groups(desk)
    desk.sign_in("sam", StaffRole.FACILITATOR, groups=["mardi", "jeudi"])
    jeudi = f"/staff/groups/{ids['jeudi']}"
    assert desk.web.get(jeudi).status_code == 200

    access.change_groups(desk.app.engine, desk.app.clock.now(), "sam", remove=["jeudi"])

    assert desk.web.get(jeudi).status_code == 303  # the session was ended: sign in again
    desk.web.cookies.clear()
    signed_in_again(desk, "sam")
    assert desk.web.get(jeudi).status_code == 404
    assert desk.web.get(f"/staff/groups/{ids['mardi']}").status_code == 200


def test_a_group_given_holds_on_the_next_request_without_signing_in_again(desk: Desk) -> None:
    ids = two_groups(desk)
    desk.sign_in("sam", StaffRole.FACILITATOR, groups=["mardi"])
    jeudi = f"/staff/groups/{ids['jeudi']}"
    assert desk.web.get(jeudi).status_code == 404

    access.change_groups(desk.app.engine, desk.app.clock.now(), "sam", add=["jeudi"])

    assert desk.web.get(jeudi).status_code == 200


def test_a_role_change_holds_on_the_next_request(desk: Desk) -> None:
    two_groups(desk)
    desk.sign_in("sam", StaffRole.FACILITATOR, groups=["mardi"])
    assert desk.web.get("/staff/bans").status_code == 403

    access.set_role(desk.app.engine, desk.app.clock.now(), "sam", StaffRole.ADMIN)

    assert desk.web.get("/staff/bans").status_code == 200
    assert "jeudi" in desk.web.get("/staff/groups").text

    access.set_role(desk.app.engine, desk.app.clock.now(), "sam", StaffRole.FACILITATOR)

    assert desk.web.get("/staff/groups").status_code == 303  # lowered: signed out
    signed_in_again(desk, "sam")
    assert desk.web.get("/staff/bans").status_code == 403
    assert "No group is given to your account yet" in desk.web.get("/staff/groups").text


def signed_in_again(desk: Desk, name: str) -> None:
    from cercle.console import sessions
    from relay.storage.models import StaffAccount

    with Session(desk.app.engine) as s:
        account = s.exec(select(StaffAccount).where(StaffAccount.name == name)).one()
    token = sessions.open_session(desk.app.engine, desk.app.clock.now(), "en", account.id)
    desk.web.cookies.clear()
    desk.web.cookies.set(sessions.COOKIE, token, domain="relay.example.org", path="/staff")


def test_a_facilitator_cannot_reach_the_staff_page(desk: Desk) -> None:
    two_groups(desk)
    desk.sign_in("sam", StaffRole.FACILITATOR, groups=["mardi"])
    before = snapshot(desk)

    assert desk.web.get("/staff/accounts").status_code == 403
    for path in ("/staff/accounts", "/staff/accounts/1/role", "/staff/accounts/1/groups"):
        assert desk.post(path, name="evil", role="admin", **{"group-2": "on"}).status_code == 403

    assert snapshot(desk) == before


def test_an_address_id_the_scope_does_not_know_is_refused_even_to_an_admin(desk: Desk) -> None:
    from cercle.console.scope import OutOfScopeError, Scope, check_path

    ids = two_groups(desk)
    with Session(desk.app.engine) as s:
        assert check_path(s, Scope(None), {"gid": ids["jeudi"]}) is not None
        with pytest.raises(OutOfScopeError):  # a new route must say how its ids are scoped
            check_path(s, Scope(None), {"gid": ids["jeudi"], "photo": 1})
        with pytest.raises(OutOfScopeError):
            check_path(s, Scope(frozenset()), {"gid": ids["mardi"]})
