"""Which groups a console request may see: resolved once per request, applied in the queries.

An admin's scope is every group. A facilitator's scope is the groups linked to its account in
``staff_group``, read from the database on every request, so a change made by an admin (or on
the command line) holds from the very next request. Anything else fails closed: an account
whose role is not known, or a facilitator with no group, sees no group at all. Pages never
check a group themselves: they get groups through :meth:`Scope.group` (which answers ``None``
for a foreign id exactly as for a missing one) and filter lists with :meth:`Scope.where`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, true
from sqlmodel import Session, col, select

from relay.storage.models import (
    Group,
    Invite,
    Member,
    MemberState,
    StaffAccount,
    StaffGroup,
    StaffRole,
)


@dataclass(frozen=True)
class Scope:
    """The groups one request may see; ``group_ids`` is ``None`` for every group (an admin)."""

    group_ids: frozenset[int] | None

    @property
    def everything(self) -> bool:
        """Whether this scope is every group of the organization (an admin's)."""
        return self.group_ids is None

    def allows(self, group_id: int | None) -> bool:
        """Whether ``group_id`` is in scope (an entry with no group is only an admin's)."""
        if self.group_ids is None:
            return True
        return group_id is not None and group_id in self.group_ids

    def where(self, column: Any) -> ColumnElement[bool]:
        """A condition keeping only rows whose group (``column``) is in scope."""
        if self.group_ids is None:
            return true()
        if not self.group_ids:
            return false()
        return col(column).in_(sorted(self.group_ids))

    def group(self, s: Session, group_id: int) -> Group | None:
        """The open group ``group_id`` if it is in scope; ``None`` for a missing, closed or
        foreign one alike (the caller answers the same 404 to all three)."""
        group = s.exec(select(Group).where(col(Group.id) == group_id, self.where(Group.id))).first()
        if group is None or group.closed_at is not None:
            return None
        return group


NOTHING = Scope(frozenset())


def resolve(s: Session, account: StaffAccount | None) -> Scope:
    """The scope of ``account`` now, from the database (never from the session cookie)."""
    if account is None or account.id is None:
        return NOTHING
    if account.role == StaffRole.ADMIN:
        return Scope(None)
    if account.role != StaffRole.FACILITATOR:
        return NOTHING
    ids = s.exec(select(StaffGroup.group_id).where(col(StaffGroup.staff_id) == account.id)).all()
    return Scope(frozenset(ids))


class OutOfScopeError(Exception):
    """An id in the address is missing, closed or outside the request's scope (answered
    with the same 404 in every case)."""


def _member_of(s: Session, group: Group | None, member_id: int) -> bool:
    member = s.get(Member, member_id)
    return (
        group is not None
        and member is not None
        and member.group_id == group.id
        and member.state != MemberState.REMOVED
    )


def _invite_of(s: Session, group: Group | None, invite_id: int) -> bool:
    invite = s.get(Invite, invite_id)
    return group is not None and invite is not None and invite.group_id == group.id


def _account(s: Session, scope: Scope, staff_id: int) -> bool:
    return scope.everything and s.get(StaffAccount, staff_id) is not None


def check_path(s: Session, scope: Scope, params: Mapping[str, Any]) -> Group | None:
    """Resolve every id in a console address against ``scope`` before any page runs; return
    its group (``None`` when the address names none). A group (``gid``) must be open and in
    scope; a member (``mid``) or invite (``iid``) must belong to that group; a staff account
    (``sid``) is an admin's only. An id of any other name is refused: a new route must say
    here how its ids are scoped before it can answer anything."""
    group: Group | None = None
    if "gid" in params:
        group = scope.group(s, int(params["gid"]))
        if group is None:
            raise OutOfScopeError
    checks = {
        "mid": lambda v: _member_of(s, group, v),
        "iid": lambda v: _invite_of(s, group, v),
        "sid": lambda v: _account(s, scope, v),
    }
    for name, value in params.items():
        if name == "gid":
            continue
        check = checks.get(name)
        if check is None or not isinstance(value, int) or not check(value):
            raise OutOfScopeError
    return group


@dataclass(frozen=True)
class RequestScope:
    """What :func:`for_request` found: the scope, the address's group, and whether an id in
    the address is out of scope (answer 404 before the page runs)."""

    scope: Scope
    group: Group | None
    refused: bool


def for_request(
    s: Session, account: StaffAccount | None, params: Mapping[str, Any]
) -> RequestScope:
    """The scope of one console request and the check of its address, in one call."""
    scope = resolve(s, account)
    try:
        return RequestScope(scope, check_path(s, scope, params), False)
    except OutOfScopeError:
        return RequestScope(scope, None, True)
