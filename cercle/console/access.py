"""What a staff account may reach: its role and, for a facilitator, its groups.

The command line (``cercle staff add|role|groups``) and the console's staff page both call
these functions. Taking access away (an admin made facilitator, a group removed) ends every
session of the account at once, so nothing cached in a browser outlives the change; the
console also re-reads the scope on each request (:mod:`cercle.console.scope`). Every change is
audited with staff and group names only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from cercle.console import accounts
from relay.core.actor import current_actor
from relay.errors import CercleError
from relay.service.relay import open_group
from relay.storage.crypto import DataKeys
from relay.storage.engine import transaction
from relay.storage.models import (
    AuditEvent,
    Group,
    StaffAccount,
    StaffGroup,
    StaffRole,
    StaffSession,
)


@dataclass(frozen=True)
class Change:
    """What a role or group change did: the account's groups now, and whether its sessions
    were ended (access was taken away)."""

    groups: list[str]
    sessions_ended: bool


def _end_sessions(s: Session, account: StaffAccount) -> None:
    s.execute(delete(StaffSession).where(col(StaffSession.staff_id) == account.id))


def _audit(
    s: Session,
    now: datetime,
    action: str,
    account: StaffAccount,
    group_id: int | None = None,
    detail: str | None = None,
) -> None:
    s.add(
        AuditEvent(
            group_id=group_id,
            at=now,
            actor=current_actor(),
            action=action,
            target=account.name,
            detail=detail,
        )
    )


def group_names(s: Session, account: StaffAccount) -> list[str]:
    """The names of the groups linked to ``account``, sorted."""
    return list(
        s.exec(
            select(Group.name)
            .join(StaffGroup, col(StaffGroup.group_id) == col(Group.id))
            .where(col(StaffGroup.staff_id) == account.id)
            .order_by(col(Group.name))
        ).all()
    )


def _link(s: Session, now: datetime, account: StaffAccount, group: Group) -> bool:
    assert account.id is not None and group.id is not None  # noqa: S101 - stored rows
    if s.get(StaffGroup, (account.id, group.id)) is not None:
        return False
    s.add(StaffGroup(staff_id=account.id, group_id=group.id))
    _audit(s, now, "staff_group_add", account, group_id=group.id)
    return True


def add(
    engine: Engine,
    keys: DataKeys,
    now: datetime,
    name: str,
    role: StaffRole,
    lang: str = "fr",
    groups: Sequence[str] = (),
) -> str:
    """Create an account (a facilitator with ``groups``); return its setup link's token."""
    if groups and role != StaffRole.FACILITATOR:
        raise CercleError("An admin sees every group: groups are given to facilitators only.")
    with transaction(engine) as s:
        found = [open_group(s, g) for g in groups]
        account, token = accounts.create(s, keys, now, name, role, lang)
        s.flush()
        for group in found:
            _link(s, now, account, group)
        return token


def set_role(engine: Engine, now: datetime, name: str, role: StaffRole) -> Change:
    """Make ``name`` an admin or a facilitator. Lowering an admin ends its sessions (it keeps
    no group: an admin may give it some next); raising a facilitator drops its group list,
    so lowering it again later grants nothing by surprise."""
    with transaction(engine) as s:
        account = accounts.named(s, name)
        if account.role == role:
            return Change(group_names(s, account), False)
        lowered = role == StaffRole.FACILITATOR
        account.role = role
        s.add(account)
        if lowered:
            _end_sessions(s, account)
        else:
            s.execute(delete(StaffGroup).where(col(StaffGroup.staff_id) == account.id))
        _audit(s, now, "staff_role", account, detail=role.value)
        return Change(group_names(s, account), lowered)


def change_groups(
    engine: Engine, now: datetime, name: str, add: Sequence[str] = (), remove: Sequence[str] = ()
) -> Change:
    """Give facilitator ``name`` the groups ``add`` and take ``remove`` away; taking one away
    ends its sessions."""
    with transaction(engine) as s:
        account = accounts.named(s, name)
        if account.role != StaffRole.FACILITATOR:
            raise CercleError("An admin sees every group: groups are given to facilitators only.")
        for group_name in add:
            _link(s, now, account, open_group(s, group_name))
        removed = False
        for group_name in remove:
            group = s.exec(select(Group).where(Group.name == group_name)).first()
            link = s.get(StaffGroup, (account.id, group.id)) if group is not None else None
            if group is None or link is None:
                raise CercleError("That account does not have that group.")
            s.delete(link)
            _audit(s, now, "staff_group_remove", account, group_id=group.id)
            removed = True
        if removed:
            _end_sessions(s, account)
        s.flush()
        return Change(group_names(s, account), removed)
