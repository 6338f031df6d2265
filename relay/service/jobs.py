"""Scheduled work the worker runs every minute: session reminders, video links at a session's
start and forgetting its room at the end, end-of-group notices, the end of time-limited
groups, and deleting what has expired (held messages, join counters,
old invites).

Every step is safe to run twice and from several workers at once: what was sent is marked
with a compare-and-set in the same transaction as the outbox rows, so a reminder or notice
goes out once per session or stage even if two workers race.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import Update, delete, or_, update
from sqlalchemy.engine import CursorResult
from sqlmodel import Session, col, select

from relay.delivery.outbox import OutboxWriter
from relay.errors import CercleError
from relay.groups import guesses, policy, schedule
from relay.language.channels import PerChannel
from relay.language.durations import describe
from relay.language.i18n import T
from relay.service import video
from relay.service.relay import Relay
from relay.storage.engine import transaction
from relay.storage.models import (
    Group,
    GroupPolicy,
    HeldMessage,
    Invite,
    JoinAttempt,
    Member,
    MemberSafety,
    MemberState,
)

log = logging.getLogger(__name__)

REMIND_BEFORE = timedelta(minutes=30)
NOTICE_STAGES = ((2, timedelta(days=1)), (1, timedelta(days=7)))  # (stage, how long before)
KEEP_SPENT_INVITES = timedelta(days=7)


def run_due(relay: Relay) -> Counter[str]:
    """Do whatever is due now; return counts (for logs and tests; they name no one)."""
    now = relay.clock.now()
    done: Counter[str] = Counter()
    with Session(relay.engine) as s:
        groups = s.exec(
            select(Group.id, Group.name)
            .join(GroupPolicy, col(GroupPolicy.group_id) == Group.id)
            .where(col(Group.closed_at).is_(None))
        ).all()
    for group_id, name in groups:
        if group_id is None:
            continue
        if _ended(relay, group_id, now):
            try:
                done["members_at_end"] += relay.close_group(name)
                done["groups_ended"] += 1
            except CercleError:
                pass  # another worker closed it first
            continue
        done["end_notices"] += _end_notice(relay, group_id, now)
        done["reminders"] += _remind(relay, group_id, now)
        done["video_links"] += video.start_due(relay, group_id, now)
    done["video_rooms_ended"] += video.end_due(relay, now)
    done["purged"] += purge(relay, now)
    if any(done.values()):
        log.info("scheduled jobs: %s", dict(done))
    return done


def _ended(relay: Relay, group_id: int, now: datetime) -> bool:
    with Session(relay.engine) as s:
        pol = s.get(GroupPolicy, group_id)
        return pol is not None and pol.ends_at is not None and now >= pol.ends_at


def _claimed(s: Session, statement: Update) -> bool:
    result: CursorResult[tuple[()]] = s.execute(statement)  # type: ignore[assignment]
    return result.rowcount == 1


def _remind(relay: Relay, group_id: int, now: datetime) -> int:
    """Remind members who asked, once per session, up to 30 minutes before it starts."""
    with transaction(relay.engine) as s:
        pol = s.get(GroupPolicy, group_id)
        sched = schedule.Schedule.of(pol)
        nxt = sched.next_start(now) if sched is not None else None
        if pol is None or nxt is None or nxt[0] - now > REMIND_BEFORE:
            return 0
        start = nxt[0]
        if pol.reminded_for == start:
            return 0
        if not _claimed(
            s,
            update(GroupPolicy)
            .where(
                col(GroupPolicy.group_id) == group_id,
                or_(
                    col(GroupPolicy.reminded_for).is_(None), col(GroupPolicy.reminded_for) != start
                ),
            )
            .values(reminded_for=start),
        ):
            return 0
        if not schedule.is_open(pol, start):
            return 0  # a facilitator closed the group through that session
        members = s.exec(
            select(Member)
            .join(MemberSafety, col(MemberSafety.member_id) == Member.id)
            .where(
                col(Member.group_id) == group_id,
                col(Member.state) == MemberState.ACTIVE,
                col(MemberSafety.reminders).is_(True),
            )
        ).all()
        minutes = max(1, round((start - now).total_seconds() / 60))
        text = T(
            "Reminder: the group opens at {time}, in {duration}.",
            time=schedule.LocalTime(start, schedule.zone(pol.tz), "time"),
            duration=describe(minutes * 60),
        )
        return OutboxWriter(s, relay.keys, now).fan_out(members, text)


def _end_notice(relay: Relay, group_id: int, now: datetime) -> int:
    """Tell everyone a week and a day before a time-limited group ends."""
    with transaction(relay.engine) as s:
        pol = s.get(GroupPolicy, group_id)
        if pol is None or pol.ends_at is None:
            return 0
        stage = next((n for n, before in NOTICE_STAGES if now >= pol.ends_at - before), 0)
        if stage <= pol.end_notices:
            return 0
        if not _claimed(
            s,
            update(GroupPolicy)
            .where(col(GroupPolicy.group_id) == group_id, col(GroupPolicy.end_notices) < stage)
            .values(end_notices=stage),
        ):
            return 0
        members = s.exec(
            select(Member).where(
                col(Member.group_id) == group_id,
                col(Member.state).in_([MemberState.ACTIVE, MemberState.PAUSED]),
            )
        ).all()
        last_day = pol.ends_at - timedelta(seconds=1)
        date = schedule.LocalTime(last_day, schedule.zone(pol.tz), "date")
        text = PerChannel(
            T(
                "This group ends on {date}. At the end, Cercle will send you a last message with "
                "resources, and your number and your data will be deleted.",
                date=date,
            ),
            {
                "web": T(
                    "This group ends on {date}. At the end, this page will show a last message "
                    "with resources, and your key to it and your data will be deleted.",
                    date=date,
                )
            },
        )
        return OutboxWriter(s, relay.keys, now).fan_out(members, text)


def purge(relay: Relay, now: datetime) -> int:
    """Delete expired held messages (with their sealed bodies), stale join counters, spent
    invites, and the safety choices of removed members. Returns how many rows went."""
    with transaction(relay.engine) as s:
        held = list(s.exec(select(HeldMessage).where(col(HeldMessage.expires_at) <= now)).all())
        policy.drop_held(s, held)
        # Per-sender counters last their hour; the refused-attempt counts by hour, two days.
        attempts: CursorResult[tuple[()]] = s.execute(  # type: ignore[assignment]
            delete(JoinAttempt).where(
                col(JoinAttempt.window_start) < now - timedelta(hours=1),
                ~col(JoinAttempt.key).startswith(guesses.PREFIX),
            )
        )
        counted = guesses.purge(s, now)
        spent = now - KEEP_SPENT_INVITES
        invites: CursorResult[tuple[()]] = s.execute(  # type: ignore[assignment]
            delete(Invite).where(or_(col(Invite.used_at) < spent, col(Invite.expires_at) < spent))
        )
        removed = select(Member.id).where(col(Member.state) == MemberState.REMOVED)
        left: CursorResult[tuple[()]] = s.execute(  # type: ignore[assignment]
            delete(MemberSafety).where(col(MemberSafety.member_id).in_(removed))
        )
        return len(held) + attempts.rowcount + counted + invites.rowcount + left.rowcount
