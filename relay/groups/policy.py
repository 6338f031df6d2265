"""Reading and writing the per-group and per-member safety choices (open hours, admission,
pre-moderation, exit words, alerts, end dates), and daily tallies.

Groups and members without a row have the defaults (see :class:`~relay.storage.models.GroupPolicy`
and :class:`~relay.storage.models.MemberSafety`), so existing groups need no data migration.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from relay.storage.models import GroupPolicy, GroupTally, HeldMessage, MemberSafety, OutboxBody


class Tally(StrEnum):
    """What facilitators see counted in ``/stats``: messages that did not reach the group."""

    CLOSED = "closed"  # sent outside open hours
    REVIEW = "review"  # held for a facilitator (newcomer pre-moderation)
    ALERT = "alert"  # raised an alert to staff
    MUTED = "muted"  # sent while muted
    LIMITED = "limited"  # over the flood limit or in a cooldown


def fold(text: str) -> str:
    """Lower case, no accents, no surrounding space or punctuation: how words are compared."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("’", "'"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return bare.strip().strip(".!?,;:…'\"«»() ").strip()


def policy_of(s: Session, group_id: int | None) -> GroupPolicy | None:
    """The group's stored choices (``None``: every default)."""
    return s.get(GroupPolicy, group_id) if group_id is not None else None


def ensure_policy(s: Session, group_id: int, tz: str | None = None) -> GroupPolicy:
    """The group's row, created with the defaults if missing (added to the session); ``tz``
    is the time zone a new row gets (the deployment's ``CERCLE_TIMEZONE``)."""
    row = s.get(GroupPolicy, group_id)
    if row is None:
        row = GroupPolicy(group_id=group_id)
        if tz is not None:
            row.tz = tz
        s.add(row)
    return row


def safety_of(s: Session, member_id: int | None) -> MemberSafety | None:
    """The member's stored choices (``None``: every default)."""
    return s.get(MemberSafety, member_id) if member_id is not None else None


def ensure_safety(s: Session, member_id: int) -> MemberSafety:
    """The member's row, created with the defaults if missing (added to the session)."""
    row = s.get(MemberSafety, member_id)
    if row is None:
        row = MemberSafety(member_id=member_id)
        s.add(row)
    return row


def tally(s: Session, group_id: int | None, kind: Tally, now: datetime, n: int = 1) -> None:
    """Count ``n`` more messages of ``kind`` today. An upsert, so two members flooding at
    the same moment on PostgreSQL cannot make one of their transactions fail."""
    if group_id is None:
        return
    values = {"group_id": group_id, "day": now.date(), "kind": str(kind), "count": n}
    dialect = s.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(GroupTally).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["group_id", "day", "kind"],
        set_={"count": col(GroupTally.count) + n},
    )
    s.execute(stmt)


def tallies(s: Session, group_id: int, since: date) -> dict[str, int]:
    """Counts per kind from ``since`` (included) to today."""
    rows = s.exec(
        select(GroupTally).where(col(GroupTally.group_id) == group_id, col(GroupTally.day) >= since)
    ).all()
    found: dict[str, int] = {}
    for row in rows:
        found[row.kind] = found.get(row.kind, 0) + row.count
    return found


def drop_held(s: Session, held: list[HeldMessage]) -> None:
    """Delete held messages and their sealed bodies: nothing of the content stays."""
    if not held:
        return
    ids = [h.id for h in held]
    bodies = [h.body_id for h in held]
    s.execute(delete(HeldMessage).where(col(HeldMessage.id).in_(ids)))
    s.execute(delete(OutboxBody).where(col(OutboxBody.id).in_(bodies)))


def forget(s: Session, member_id: int) -> None:
    """Delete what this module keeps about a member (on removal and quick exit)."""
    held = list(s.exec(select(HeldMessage).where(col(HeldMessage.member_id) == member_id)).all())
    drop_held(s, held)
    s.execute(delete(MemberSafety).where(col(MemberSafety.member_id) == member_id))
