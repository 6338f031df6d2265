"""Commands facilitators send to moderate: who, remove, mute, announce, reply, timer, trust,
ban. Each handler registers its row of the table (:mod:`relay.commands.table`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from relay.commands.message_moderation import suggest_delete_all
from relay.core import farewells
from relay.core.handlers import (
    CHANNEL_NAMES,
    MAX_TEXT,
    MAX_TIMER,
    MIN_TIMER,
    ROLE_NAMES,
    STATE_NAMES,
    Context,
    Refusal,
    UsageError,
    command,
    display_name,
    member_id,
    named,
    require_text,
)
from relay.core.outcome import (
    Audit,
    Ban,
    Mute,
    Outcome,
    Remove,
    Reply,
    SetGroupTimer,
    ToGroup,
    ToMember,
    Trust,
)
from relay.language.durations import describe, parse_duration
from relay.language.i18n import Joined, Raw, Renderable, T
from relay.storage.models import BanReason, Member, Role

DEFAULT_MUTE = timedelta(hours=1)
MAX_MUTE = timedelta(days=30)


def _word_for(member: Member, command: str) -> Raw:
    """The command's word in ``member``'s language, e.g. ``/equipe`` for a French speaker."""
    return Raw("/" + named(command).words[member.lang])


def _outranks(actor: Member, target: Member) -> bool:
    return Role(actor.role).rank >= Role(target.role).rank


def _target(ctx: Context, *, allow_self: bool = False) -> tuple[Member, str]:
    target, rest = ctx.split_target()
    if target.id == ctx.member.id and not allow_self:
        raise Refusal(T("You cannot use this command on yourself."))
    return target, rest


def _last_active(member: Member, now: datetime) -> Renderable:
    if member.last_active_on is None:
        return T("never")
    days = (now.date() - member.last_active_on).days
    if days <= 0:
        return T("today")
    if days == 1:
        return T("yesterday")
    return T("{n} days ago", n=days)


@command(
    "who",
    {"en": "who", "fr": "qui"},
    Role.FACILITATOR,
    T("/who"),
    T("who is in the group: names, roles, Signal or SMS, state"),
)
def cmd_who(ctx: Context) -> Outcome:
    """The roster: pseudonyms, roles, transport, state, last activity. Never numbers."""
    lines: list[Renderable] = [T("In this group:")]
    for m in sorted(ctx.roster, key=lambda m: (-Role(m.role).rank, m.name_key or "")):
        state: Renderable = STATE_NAMES[m.state]
        if m.muted_until is not None and m.muted_until > ctx.now:
            state = T("muted")
        lines.append(
            T(
                "• {name}: {role}, {channel}, {state}, last active: {when}",
                name=display_name(m),
                role=ROLE_NAMES[m.role],
                channel=CHANNEL_NAMES.get(m.channel, Raw(m.channel)),
                state=state,
                when=_last_active(m, ctx.now),
            )
        )
    return Outcome.of(Reply(Joined(tuple(lines))))


@command(
    "remove",
    {"en": "remove", "fr": "retirer"},
    Role.FACILITATOR,
    T("/remove NAME [reason]"),
    T("remove someone and delete their data"),
)
def cmd_remove(ctx: Context) -> Outcome:
    """Remove a member; their data is deleted and they are told why if a reason is given."""
    target, reason = _target(ctx)
    if not _outranks(ctx.member, target):
        raise Refusal(T("You cannot remove {name}.", name=display_name(target)))
    farewell: Renderable = farewells.removed_by_facilitator()
    if reason.strip():
        farewell = Joined((farewell, T("Reason: {reason}", reason=Raw(reason.strip()))))
    return Outcome.of(
        Remove(member_id(target), farewell),
        ToGroup(
            T("{name} is no longer in the group.", name=display_name(target)), exclude=target.id
        ),
        suggest_delete_all(member_id(target), display_name(target)),
        Audit("remove", target=target.pseudonym),
    )


@command(
    "mute",
    {"en": "mute", "fr": "sourdine"},
    Role.FACILITATOR,
    T("/mute NAME [duration, e.g. 30m, 2h, 1d]"),
    T("stop someone's messages reaching the group for a while"),
)
def cmd_mute(ctx: Context) -> Outcome:
    """Mute a member for a while (default one hour)."""
    target, rest = _target(ctx)
    if not _outranks(ctx.member, target):
        raise Refusal(T("You cannot mute {name}.", name=display_name(target)))
    seconds = parse_duration(rest) if rest.strip() else int(DEFAULT_MUTE.total_seconds())
    if seconds is None or seconds > MAX_MUTE.total_seconds():
        raise UsageError
    until = ctx.now + timedelta(seconds=seconds)
    return Outcome.of(
        Mute(member_id(target), until),
        ToMember(
            member_id(target),
            T(
                "A facilitator has muted you for {duration}. Your messages will not be sent "
                "to the group until then. You can still write to the facilitators with "
                "{staff}.",
                duration=describe(seconds),
                staff=_word_for(target, "staff"),
            ),
        ),
        Reply(
            T(
                "{name} is muted for {duration}.",
                name=display_name(target),
                duration=describe(seconds),
            )
        ),
        Audit("mute", target=target.pseudonym, detail=f"{seconds}s"),
    )


@command(
    "unmute",
    {"en": "unmute", "fr": "reactiver"},
    Role.FACILITATOR,
    T("/unmute NAME"),
    T("lift a mute"),
)
def cmd_unmute(ctx: Context) -> Outcome:
    """Lift a mute."""
    target, _ = _target(ctx)
    return Outcome.of(
        Mute(member_id(target), None),
        ToMember(member_id(target), T("You can write to the group again.")),
        Reply(T("{name} can write to the group again.", name=display_name(target))),
        Audit("unmute", target=target.pseudonym),
    )


@command(
    "announce",
    {"en": "announce", "fr": "annonce"},
    Role.FACILITATOR,
    T("/announce MESSAGE"),
    T("send a message to everyone, marked as staff"),
)
def cmd_announce(ctx: Context) -> Outcome:
    """A message to everyone, marked as coming from staff."""
    text = require_text(ctx)
    return Outcome.of(
        ToGroup(
            T("Announcement from {name}: {text}", name=display_name(ctx.member), text=Raw(text)),
            exclude=ctx.member.id,
        ),
        Reply(T("Announcement sent.")),
        Audit("announce"),
    )


@command(
    "reply",
    {"en": "reply", "fr": "repondre"},
    Role.FACILITATOR,
    T("/reply NAME MESSAGE"),
    T("answer someone privately"),
)
def cmd_reply(ctx: Context) -> Outcome:
    """A private answer to one member; neither side sees the other's number."""
    target, text = _target(ctx)
    if not text.strip():
        raise UsageError
    if len(text) > MAX_TEXT:
        raise Refusal(T("That message is too long ({n} characters at most).", n=MAX_TEXT))
    return Outcome.of(
        ToMember(
            member_id(target),
            T(
                "Private message from {name}: {text}",
                name=display_name(ctx.member),
                text=Raw(text.strip()),
            ),
        ),
        Reply(T("Sent privately to {name}.", name=display_name(target))),
        Audit("reply", target=target.pseudonym),
    )


@command(
    "timer",
    {"en": "timer", "fr": "minuteur"},
    Role.FACILITATOR,
    T("/timer DURATION (e.g. 1d, 1w)"),
    T("set how long messages last before they disappear"),
)
def cmd_timer(ctx: Context) -> Outcome:
    """Set the group's disappearing timer, for every conversation."""
    seconds = parse_duration(ctx.args)
    if seconds is None:
        raise UsageError
    if not MIN_TIMER <= seconds <= MAX_TIMER:
        raise Refusal(T("The timer must be between 1 minute and 12 weeks."))
    return Outcome.of(
        SetGroupTimer(seconds),
        ToGroup(
            T(
                "A facilitator set messages in this group to disappear after {timer}.",
                timer=describe(seconds),
            )
        ),
        Audit("timer", detail=f"{seconds}s"),
    )


@command(
    "trust",
    {"en": "trust", "fr": "confiance"},
    Role.FACILITATOR,
    T("/trust NAME"),
    T("after a safety number change, once you have checked with them"),
)
def cmd_trust(ctx: Context) -> Outcome:
    """Accept a member's new safety number after checking with them by another safe way."""
    target, _ = _target(ctx)
    return Outcome.of(
        Trust(member_id(target)),
        Reply(T("Messages to {name} will go out again.", name=display_name(target))),
        Audit("trust", target=target.pseudonym),
    )


@command(
    "ban",
    {"en": "ban", "fr": "bannir"},
    Role.FACILITATOR,
    T("/ban NAME"),
    T("remove someone and keep their number out of every group"),
)
def cmd_ban(ctx: Context) -> Outcome:
    """Remove someone and ban their number from every group of the organization."""
    target, _ = _target(ctx)
    if not _outranks(ctx.member, target):
        raise Refusal(T("You cannot ban {name}.", name=display_name(target)))
    return Outcome.of(
        Ban(member_id(target), BanReason.STAFF),
        Remove(
            member_id(target),
            farewells.removed_by_facilitator(),
        ),
        ToGroup(
            T("{name} is no longer in the group.", name=display_name(target)), exclude=target.id
        ),
        Reply(
            T(
                "{name} is removed, and their number can no longer join any group of the "
                "organization.",
                name=display_name(target),
            )
        ),
        Audit("ban", target=target.pseudonym),
    )
