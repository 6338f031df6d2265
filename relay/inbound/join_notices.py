"""Join notices, grouped: several people joining within a short window make one notice
("Iris and Jules have joined the group.") instead of one per person to everyone.

A join is noted in a ``pending_join`` row in the join's own transaction, so a crash loses no
notice. The notice is written when the joins have been quiet for :data:`QUIET` (or the first
has waited :data:`LONGEST`) by the worker's loop (:func:`announce_due`), or at once, before
anything else is written to the group (:func:`announce_pending`, called where the relay picks
a group's receivers): nobody reads "Iris: hello" before "Iris has joined the group", and each
member's messages keep their order. Each recipient is told of the others who joined, never of
themselves.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, or_, select
from sqlmodel import Session, col

from relay.core.handlers import display_name
from relay.delivery.outbox import OutboxWriter
from relay.language.i18n import Joined, Renderable, T
from relay.storage.crypto import DataKeys
from relay.storage.engine import transaction
from relay.storage.models import Group, Member, MemberState, PendingJoin

log = logging.getLogger(__name__)

QUIET = timedelta(seconds=5)  # announce once nobody else joined for this long…
LONGEST = timedelta(seconds=30)  # …or once the first join has waited this long
EVERY = 2.0  # seconds between the worker's looks for joins to announce


def note(s: Session, member: Member, now: datetime) -> None:
    """Remember that ``member`` joined (in the join's transaction)."""
    assert member.id is not None  # noqa: S101 - a stored member has an id
    s.add(PendingJoin(member_id=member.id, group_id=member.group_id, joined_at=now))


def notice(joiners: Sequence[Member]) -> Renderable:
    """ "Iris has joined the group." / "Iris, Jules and Kai have joined the group."."""
    names = [display_name(m) for m in joiners]
    if len(names) == 1:
        return T("{name} has joined the group.", name=names[0])
    return T(
        "{names} and {last} have joined the group.",
        names=Joined(tuple(names[:-1]), sep=", "),
        last=names[-1],
    )


def announce_pending(
    s: Session, writer: OutboxWriter, group: Group, roster: Sequence[Member]
) -> int:
    """Write the notice of the group's pending joins now, if any (one statement when none).
    Returns the outbox rows written."""
    # Deleting is claiming: of two workers announcing at once, only one gets the rows.
    pending = sorted(
        s.execute(
            delete(PendingJoin)
            .where(col(PendingJoin.group_id) == group.id)
            .returning(col(PendingJoin.joined_at), col(PendingJoin.member_id))
        ).all()
    )
    if not pending:
        return 0
    by_id = {m.id: m for m in roster}
    # Someone who left (or was removed) before the notice went out is not announced.
    joiners = [
        m
        for _, member_id in pending
        if (m := by_id.get(member_id)) is not None and m.state == MemberState.ACTIVE
    ]
    if not joiners:
        return 0
    # Each recipient hears of the others: one text per set of names (at most joiners + 1).
    told: dict[int | None, list[Member]] = defaultdict(list)  # by the joiner left out
    joined = {m.id for m in joiners}
    for member in roster:
        if member.state == MemberState.ACTIVE:
            told[member.id if member.id in joined else None].append(member)
    rows = 0
    for left_out, recipients in told.items():
        names = [m for m in joiners if m.id != left_out]
        if names:
            rows += writer.fan_out(recipients, notice(names))
    return rows


def announce_due(engine: Engine, keys: DataKeys, now: datetime, *, waiting: bool = True) -> int:
    """Write the notices of groups whose joins are quiet or waited long enough (the worker's
    loop); with ``waiting=False``, of every group with pending joins (a test room setting
    up its members one by one). Returns the groups announced."""
    query = select(col(PendingJoin.group_id)).group_by(col(PendingJoin.group_id))
    if waiting:
        query = query.having(
            or_(
                func.max(col(PendingJoin.joined_at)) <= now - QUIET,
                func.min(col(PendingJoin.joined_at)) <= now - LONGEST,
            )
        )
    with Session(engine) as s:
        due = list(s.execute(query).scalars())
    for group_id in due:
        with transaction(engine) as s:
            group = s.get(Group, group_id)
            if group is None:
                s.execute(delete(PendingJoin).where(col(PendingJoin.group_id) == group_id))
                continue
            roster = list(
                s.execute(select(Member).where(col(Member.group_id) == group_id)).scalars()
            )
            rows = announce_pending(s, OutboxWriter(s, keys, now), group, roster)
        log.info("join notice: %d rows", rows)
    return len(due)
