"""What admins set on a group from the command line: open hours, an end date, admission and
safety choices, invite codes. Each function is one transaction and raises
:class:`~relay.errors.CercleError` with a message the admin can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from relay.core import farewells
from relay.core.actor import current_actor
from relay.core.handlers import MAX_TIMER, MIN_TIMER, display_name
from relay.core.outcome import Audit, Ban, Outcome, Remove, SetGroupTimer, ToGroup
from relay.errors import CercleError
from relay.groups import invites, policy, schedule
from relay.inbound.apply import Applier
from relay.language.durations import describe
from relay.language.i18n import LANGS, T
from relay.language.pseudonyms import name_key
from relay.messages import Channel
from relay.safety.quick_exit import exit_word_key
from relay.service.relay import Relay
from relay.storage.engine import transaction
from relay.storage.models import (
    AuditEvent,
    Group,
    GroupPolicy,
    Invite,
    Member,
    MemberState,
    Outbox,
    Role,
)


def _group(
    relay: Relay, s: Session, name: str, default_tz: str | None
) -> tuple[Group, GroupPolicy]:
    group = relay.group(s, name)
    assert group.id is not None  # noqa: S101 - a stored group has an id
    return group, policy.ensure_policy(s, group.id, default_tz)


def audit_setting(s: Session, group: Group, now: datetime, action: str, detail: str | None) -> None:
    """Record in the audit log that whoever is acting changed one of ``group``'s settings."""
    s.add(
        AuditEvent(group_id=group.id, at=now, actor=current_actor(), action=action, detail=detail)
    )


def set_schedule(
    relay: Relay,
    name: str,
    *,
    add: tuple[str, ...] = (),
    remove: tuple[str, ...] = (),
    clear: bool = False,
    always_open: bool = False,
    tz: str | None = None,
    default_tz: str | None = None,
) -> GroupPolicy:
    """Change a group's weekly sessions. ``clear`` drops them before adding; ``always_open``
    drops them all (and cannot be combined with ``add``). ``default_tz`` is the time zone of a
    group that has none yet (``CERCLE_TIMEZONE``)."""
    if always_open and add:
        raise CercleError("--always-open and --add do not go together.")
    adding = [slot for spec in add for slot in schedule.parse_schedule(spec)]
    removing = {slot for spec in remove for slot in schedule.parse_schedule(spec)}
    if tz is not None:
        schedule.zone(tz)
    now = relay.clock.now()
    with transaction(relay.engine) as s:
        group, pol = _group(relay, s, name, default_tz)
        sched = None if clear or always_open else schedule.Schedule.of(pol)
        current = list(sched.slots) if sched is not None else []
        slots = [sl for sl in {*current, *adding} if sl not in removing]
        pol.schedule = schedule.format_schedule(slots)
        if tz is not None:
            pol.tz = tz
        pol.reminded_for = None
        s.add(pol)
        audit_setting(s, group, now, "schedule", pol.schedule or "always open")
        return pol


def set_end(
    relay: Relay,
    name: str,
    *,
    on: date | None = None,
    after_sessions: int | None = None,
    never: bool = False,
    default_tz: str | None = None,
) -> datetime | None:
    """Make a group time-limited: it ends at the close of ``on`` (in its time zone), or when
    its ``after_sessions``-th session from now ends; ``never`` makes it open-ended again."""
    if sum((on is not None, after_sessions is not None, never)) != 1:
        raise CercleError("Give exactly one of --on DATE, --after-sessions N or --never.")
    now = relay.clock.now()
    with transaction(relay.engine) as s:
        group, pol = _group(relay, s, name, default_tz)
        ends: datetime | None = None
        if on is not None:
            ends = end_of_day(on, pol.tz)
        elif after_sessions is not None:
            sched = schedule.Schedule.of(pol)
            if sched is None or after_sessions < 1:
                raise CercleError("--after-sessions needs a schedule and a number from 1.")
            ends = sched.nth_end(now, after_sessions)
        if ends is not None and ends <= now:
            raise CercleError("That end date has already passed.")
        pol.ends_at, pol.end_notices = ends, 0
        s.add(pol)
        audit_setting(s, group, now, "group_end", ends.isoformat() if ends else "never")
        return ends


def end_of_day(day: date, tz: str) -> datetime:
    """Midnight at the end of ``day`` in ``tz``, in UTC."""
    after = datetime.combine(day + timedelta(days=1), time(0), tzinfo=schedule.zone(tz))
    return after.astimezone(UTC)


@dataclass(frozen=True)
class SafetyChoices:
    """What ``cercle group safety`` may change; ``None`` leaves a choice as it is."""

    require_approval: bool | None = None
    premoderate: int | None = None
    exit_word: str | None = None  # "" removes the group's default
    alert_hold: bool | None = None
    alert_content: bool | None = None


def set_safety(
    relay: Relay, name: str, choices: SafetyChoices, default_tz: str | None = None
) -> GroupPolicy:
    """Change a group's admission and safety choices."""
    now = relay.clock.now()
    key: str | None = None
    if choices.exit_word:
        key = exit_word_key(choices.exit_word)
        if key is None:
            raise CercleError("An exit word is a single word of 3 to 32 letters or digits.")
    if choices.premoderate is not None and not 0 <= choices.premoderate <= 50:
        raise CercleError("--premoderate takes a number of messages from 0 to 50.")
    with transaction(relay.engine) as s:
        group, pol = _group(relay, s, name, default_tz)
        if choices.require_approval is not None:
            pol.require_approval = choices.require_approval
        if choices.premoderate is not None:
            if choices.premoderate and not pol.premoderate:
                pol.premoderate_since = now  # members who agreed before now are not new
            pol.premoderate = choices.premoderate
        if choices.exit_word is not None:
            pol.exit_word = key
        if choices.alert_hold is not None:
            pol.alert_hold = choices.alert_hold
        if choices.alert_content is not None:
            pol.alert_content = choices.alert_content
        s.add(pol)
        audit_setting(s, group, now, "group_safety", None)
        return pol


def create_invite(
    relay: Relay,
    name: str,
    expires: timedelta = invites.DEFAULT_EXPIRY,
    role: Role = Role.MEMBER,
    lang: str | None = None,
) -> str:
    """A new one-time code for the group (shown once; only its keyed hash is stored)."""
    now = relay.clock.now()
    with transaction(relay.engine) as s:
        group = relay.group(s, name)
        return invites.create(s, relay.keys, group, now, expires=expires, role=role, lang=lang)


def describe_policy(relay: Relay, name: str) -> dict[str, Any]:
    """A group's choices, for ``cercle group schedule|safety`` and scripts."""
    now = relay.clock.now()
    with Session(relay.engine) as s:
        group = relay.group(s, name)
        pol = policy.policy_of(s, group.id) or GroupPolicy(group_id=group.id or 0)
        sched = schedule.Schedule.of(pol)
        nxt = sched.current_or_next(now) if sched is not None else None
        live = len(invites.live_invites(s, group.id or 0, now))
    return {
        "group": name,
        "schedule": pol.schedule or "always open",
        "tz": pol.tz,
        "open_now": schedule.is_open(pol, now),
        "next_session": nxt[0].astimezone(schedule.zone(pol.tz)).isoformat() if nxt else None,
        "ends_at": pol.ends_at.astimezone(schedule.zone(pol.tz)).isoformat()
        if pol.ends_at
        else None,
        "require_approval": pol.require_approval,
        "premoderate": pol.premoderate,
        "exit_word": pol.exit_word.upper() if pol.exit_word else None,
        "alert_hold": pol.alert_hold,
        "alert_content": pol.alert_content,
        "live_invites": live,
    }


# --- shared by the command line and the staff console --------------------------------------


@dataclass(frozen=True)
class GroupBasics:
    """What ``cercle group set`` and the console may change on a group; ``None`` keeps it."""

    lang: str | None = None
    timer_seconds: int | None = None
    allow_rename: bool | None = None
    allow_sms: bool | None = None
    allow_media: bool | None = None
    show_name: bool | None = None


def set_basics(relay: Relay, name: str, basics: GroupBasics) -> Group:
    """Change a group's language, timer and what members may do. A new timer is set on every
    member's conversation and announced to the group, as ``/timer`` does."""
    if basics.lang is not None and basics.lang not in LANGS:
        raise CercleError(f"Language must be one of: {', '.join(LANGS)}.")
    seconds = basics.timer_seconds
    if seconds is not None and not MIN_TIMER <= seconds <= MAX_TIMER:
        raise CercleError("The timer must be between 1 minute and 12 weeks.")
    now = relay.clock.now()
    with transaction(relay.engine) as s:
        group = relay.group(s, name)
        changed = False
        for attr in ("lang", "allow_rename", "allow_sms", "allow_media", "show_name"):
            value = getattr(basics, attr)
            if value is not None and value != getattr(group, attr):
                setattr(group, attr, value)
                changed = True
        s.add(group)
        if changed:
            audit_setting(s, group, now, "group_edit", None)
        if seconds is not None and seconds != group.timer_seconds:
            Applier(relay, s, group, None, now).apply(
                Outcome.of(
                    SetGroupTimer(seconds),
                    ToGroup(
                        T(
                            "A facilitator set messages in this group to disappear after {timer}.",
                            timer=describe(seconds),
                        )
                    ),
                    Audit("timer", detail=f"{seconds}s"),
                ),
            )
        return group


def remove_invite(relay: Relay, invite_id: int, group_name: str | None = None) -> None:
    """Make a live code unusable now (lost, or given to the wrong person)."""
    now = relay.clock.now()
    with transaction(relay.engine) as s:
        found = s.get(Invite, invite_id)
        group = relay.group(s, group_name) if group_name is not None else None
        if (
            found is None
            or found.used_at is not None
            or found.expires_at <= now
            or (group is not None and found.group_id != group.id)
        ):
            raise CercleError("There is no live invite with that id.")
        found.expires_at = now
        s.add(found)
        s.add(
            AuditEvent(
                group_id=found.group_id, at=now, actor=current_actor(), action="invite_revoke"
            )
        )


def record_numbers_shown(relay: Relay, name: str, count: int) -> None:
    """Audit that an admin was shown ``count`` full numbers of a group."""
    with transaction(relay.engine) as s:
        group = relay.group(s, name)
        audit_setting(s, group, relay.clock.now(), "numbers_shown", f"{count} members")


def sms_usage(relay: Relay, s: Session, group: Group, days: int = 30) -> tuple[int, int]:
    """SMS segments and messages a group cost over the last ``days`` days."""
    since = relay.clock.now() - timedelta(days=days)
    segments, messages = s.exec(
        select(func.coalesce(func.sum(Outbox.segments), 0), func.count()).where(
            col(Outbox.group_id) == group.id,
            col(Outbox.channel) == Channel.SMS,
            col(Outbox.segments).is_not(None),
            col(Outbox.created_at) >= since,
        )
    ).one()
    return int(segments or 0), int(messages)


def member_counts(s: Session) -> dict[int, int]:
    """Members who are not removed, per group id."""
    rows = s.exec(
        select(col(Member.group_id), func.count())
        .where(col(Member.state) != MemberState.REMOVED)
        .group_by(col(Member.group_id))
    ).all()
    return dict(rows)


def ban_member(relay: Relay, name: str, pseudonym: str, reason: str) -> None:
    """Remove a member and put their number on the deny list, without anyone typing or
    seeing it (the console's ban; ``/ban`` in the conversation does the same)."""
    with transaction(relay.engine) as s:
        group = relay.group(s, name)
        target = next(
            (m for m in relay.members_of(s, group) if m.name_key == name_key(pseudonym)), None
        )
        if target is None or target.id is None:
            raise CercleError("There is no one with that name in the group.")
        Applier(relay, s, group, None, relay.clock.now()).apply(
            Outcome.of(
                Ban(target.id, reason),
                Remove(
                    target.id,
                    farewells.removed_by_organization(),
                ),
                ToGroup(
                    T("{name} is no longer in the group.", name=display_name(target)),
                    exclude=target.id,
                ),
                Audit("ban", target=target.pseudonym, detail=reason),
            ),
        )
