"""Survivor safety on the inbound path: quick exit, alerts to staff, open hours, pre-moderation.

:mod:`relay.inbound.pipeline` calls into this module at three points of handling a message, and
nowhere else:

- :func:`first`, before anything else (consent, commands, relaying): the exit word works in
  every state, and a newcomer waiting for approval is told to wait;
- :func:`check_alert`, before a member's message meets the mute and flood guards, so that a
  muted or flooding member in danger still reaches staff and gets the crisis lines;
- :func:`review`, once the text is cleaned and checked: outside open hours the message is held
  for the member to send privately to staff instead; a newcomer's first messages and (where
  the group says so) alerting messages wait for a facilitator's ``/approve`` or ``/reject``.

Held content exists only in a sealed :class:`~relay.storage.models.OutboxBody`, pointed at by a
:class:`~relay.storage.models.HeldMessage` row, and both are deleted once decided or expired.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlmodel import Session, col, select

from relay.core.handlers import display_name
from relay.core.outcome import (
    Audit,
    Outcome,
    Remove,
    Reply,
    Service,
    Store,
    ToGroup,
    ToMember,
    ToStaff,
)
from relay.core.words import ANSWER_WORD, CommandWord, Word
from relay.delivery.outbox import OutboxWriter, open_payload, seal_payload
from relay.groups import policy, schedule
from relay.groups.invites import normalize_code, parse_join
from relay.groups.policy import Tally, fold
from relay.groups.schedule import when
from relay.language.channels import PerChannel
from relay.language.i18n import LANGS, TN, Joined, Raw, Renderable, T
from relay.language.texts import ConfigText
from relay.messages import Inbound, InboundKind
from relay.safety import alerts
from relay.storage.crypto import DataKeys
from relay.storage.models import (
    Group,
    GroupPolicy,
    HeldMessage,
    Member,
    MemberState,
    OutboxBody,
    Role,
)

# A message held outside open hours can be sent to staff for this long, then it is deleted.
CLOSED_HOLD = timedelta(minutes=15)
# Held for a decision no longer than this, even in a group with a longer timer.
MAX_REVIEW_HOLD = timedelta(days=7)
# One alert (and one copy of the crisis lines) per member in this time: enough to act on.
ALERT_QUIET = timedelta(minutes=15)
EXIT_REPLY = T("Subscription cancelled.")
_EXIT_WORD = re.compile(r"[^\W_]{3,32}")
_ANSWER_KEYS = {fold(w) for w in ANSWER_WORD.values()}


class Handled(StrEnum):
    """What became of a message handled here (values of :class:`relay.inbound.turn.Result`)."""

    STATE = "state"
    HELD_BACK = "held_back"
    COMMAND = "command"


class Applier(Protocol):
    """The service's applier, as this module uses it."""

    @property
    def writer(self) -> OutboxWriter:
        """Adds outbox rows in the same transaction."""
        ...

    def apply(self, outcome: Outcome) -> None:
        """Apply an outcome's effects, in order."""
        ...

    def receivers(self, exclude: int | None) -> list[Member]:
        """Active members who receive group messages."""
        ...


class Turn(Protocol):
    """The handling of one inbound message from a known member, as this module sees it."""

    @property
    def s(self) -> Session:
        """The transaction."""
        ...

    @property
    def inbound(self) -> Inbound:
        """The message."""
        ...

    @property
    def member(self) -> Member:
        """Its sender."""
        ...

    @property
    def group(self) -> Group:
        """The sender's group."""
        ...

    @property
    def now(self) -> datetime:
        """When it arrived."""
        ...

    @property
    def apply(self) -> Applier:
        """Applies outcomes for this sender."""
        ...

    @property
    def relay(self) -> Service:
        """The service (keys, texts)."""
        ...


# --- quick exit ------------------------------------------------------------------------------


def exit_word_key(word: str) -> str | None:
    """The folded form of an exit word, or ``None`` if it cannot be one (one word, 3 to 32
    letters or digits)."""
    key = fold(word)
    return key if _EXIT_WORD.fullmatch(key) else None


EXIT_WORD_CONTEXT = "member_safety.exit_word"
EXIT_WORD_KIND = "exitword"


def exit_word_value(member_id: int, key: str) -> str:
    """What is hashed (and sealed) for a member's own exit word: the member id is mixed in so
    two members with the same word do not share a hash."""
    return f"{member_id}:{key}"


def exit_word_hash(keys: DataKeys, member_id: int, key: str) -> str:
    """The keyed hash stored for a member's own exit word."""
    return keys.lookup_hash(exit_word_value(member_id, key), EXIT_WORD_KIND)


def is_exit_word(s: Session, keys: DataKeys, member: Member, text: str) -> bool:
    """Whether ``text`` is, on its own, this member's exit word (their own word if they chose
    one, else the group's default)."""
    key = exit_word_key(text) if len(text) <= 64 else None
    if key is None or member.id is None:
        return False
    own = policy.safety_of(s, member.id)
    if own is not None and own.exit_word_hash:
        # During a key rotation the stored hash may still be the previous key's.
        candidates = keys.lookup_hashes(exit_word_value(member.id, key), EXIT_WORD_KIND)
        return any(hmac.compare_digest(own.exit_word_hash, h) for h in candidates)
    group_policy = policy.policy_of(s, member.group_id)
    return group_policy is not None and group_policy.exit_word == key


def quick_exit(turn: Turn) -> None:
    """Remove the sender at once: data deleted, an innocuous reply, staff told by pseudonym."""
    m = turn.member
    assert m.id is not None  # noqa: S101 - a stored member has an id
    name = display_name(m)
    effects: list[Any] = [
        Audit("quick_exit", target=m.pseudonym),
        ToStaff(
            T(
                "{name} sent their exit word: they have left the group, and their number and "
                "data are deleted. Do not try to reach them at this number; follow your safety "
                "plan.",
                name=name,
            )
        ),
    ]
    if m.state in (MemberState.ACTIVE, MemberState.PAUSED):
        effects.append(ToGroup(T("{name} is no longer in the group.", name=name), exclude=m.id))
    # The reply names no group and no organization: it may be read on a phone someone checks.
    effects.append(Remove(m.id, EXIT_REPLY))
    turn.apply.apply(Outcome(effects))


def _looks_like_join(text: str | None) -> bool:
    parsed = parse_join(text)
    return parsed is not None and normalize_code(parsed[1]) is not None


def first(turn: Turn) -> Handled | None:
    """Before consent, commands and relaying: the exit word, and newcomers awaiting approval."""
    ib, m = turn.inbound, turn.member
    if (
        ib.kind == InboundKind.MESSAGE
        and ib.text
        and is_exit_word(turn.s, turn.relay.keys, m, ib.text)
    ):
        quick_exit(turn)
        return Handled.STATE
    if ib.kind == InboundKind.MESSAGE and _looks_like_join(ib.text):
        # An invite code must never reach the group. Whether it is valid is not said either:
        # members get no oracle for codes.
        turn.apply.apply(
            Outcome.of(
                Reply(
                    PerChannel(
                        T(
                            "This number is already in a group, so that code was not used, and "
                            "it was not shared with the group."
                        ),
                        {
                            "web": T(
                                "This page is already in a group, so that code was not used, "
                                "and it was not shared with the group."
                            )
                        },
                    )
                )
            )
        )
        return Handled.HELD_BACK
    if m.state == MemberState.PENDING:
        turn.apply.apply(
            Outcome.of(
                Reply(
                    T(
                        "A facilitator has not confirmed your place yet. Cercle will write to "
                        "you as soon as they do."
                    )
                )
            )
        )
        return Handled.HELD_BACK
    return None


# --- alerts ----------------------------------------------------------------------------------


def check_alert(turn: Turn) -> bool:
    """Raise an alert if the message has an alert phrase; return whether to hold it.

    Staff on duty (active facilitators and admins) get the author's pseudonym, not the
    content (unless the group chose to include it); the author gets the crisis lines in their
    language. At most one alert per member per quarter hour.
    """
    m, text = turn.member, turn.inbound.text or ""
    if Role(m.role).is_staff or not text or not alerts.matches(turn.relay.texts.root, text):
        return False
    assert m.id is not None  # noqa: S101 - a stored member has an id
    group_policy = policy.policy_of(turn.s, m.group_id)
    hold = group_policy is not None and group_policy.alert_hold
    policy.tally(turn.s, m.group_id, Tally.ALERT, turn.now)
    own = policy.ensure_safety(turn.s, m.id)
    if own.last_alert_at is not None and turn.now - own.last_alert_at < ALERT_QUIET:
        return hold
    own.last_alert_at = turn.now
    name = display_name(m)
    parts: list[Renderable] = [
        T(
            "Alert: {name} wrote words that may mean they are in danger or thinking of "
            "harming themselves. Cercle has sent them the crisis lines.",
            name=name,
        )
    ]
    if hold:
        parts.append(T("Their message is held for your decision (details follow)."))
    elif group_policy is not None and group_policy.alert_content:
        parts.append(T("Their message: {text}", text=Raw(text)))
    else:
        parts.append(T("See the group."))
    parts.append(T("You can answer them privately with {reply}.", reply=CommandWord("reply")))
    turn.apply.apply(
        Outcome.of(
            ToStaff(Joined(tuple(parts), " ")),
            Reply(
                Joined(
                    (
                        T(
                            "If you need help now, these lines answer at any hour. The "
                            "facilitators have also been told privately."
                        ),
                        ConfigText(turn.relay.texts, "resources"),
                    )
                )
            ),
            Audit("alert", target=m.pseudonym),
        )
    )
    return hold


# --- open hours and review -------------------------------------------------------------------


def hold(
    s: Session,
    keys: DataKeys,
    now: datetime,
    member: Member,
    reason: str,
    payload: dict[str, Any],
    ttl: timedelta,
) -> HeldMessage:
    """Keep a message sealed until someone decides, or until ``ttl`` passes."""
    assert member.id is not None  # noqa: S101 - a stored member has an id
    body = OutboxBody(payload_enc=seal_payload(keys, payload), created_at=now)
    s.add(body)
    s.flush()
    assert body.id is not None  # noqa: S101 - set by flush
    row = HeldMessage(
        group_id=member.group_id,
        member_id=member.id,
        body_id=body.id,
        reason=reason,
        created_at=now,
        expires_at=now + ttl,
    )
    s.add(row)
    return row


def held_for(
    s: Session, member_id: int, reasons: Sequence[str], now: datetime
) -> list[HeldMessage]:
    """A member's held messages for these reasons that have not expired, oldest first."""
    return list(
        s.exec(
            select(HeldMessage)
            .where(
                col(HeldMessage.member_id) == member_id,
                col(HeldMessage.reason).in_(list(reasons)),
                col(HeldMessage.expires_at) > now,
            )
            .order_by(col(HeldMessage.id))
        ).all()
    )


def held_payload(s: Session, keys: DataKeys, held: HeldMessage) -> dict[str, Any]:
    """The sealed content of a held message."""
    body = s.get(OutboxBody, held.body_id)
    if body is None or body.payload_enc is None:
        return {}
    return open_payload(keys, body.payload_enc)


def _premoderated(s: Session, group_policy: GroupPolicy | None, m: Member) -> bool:
    if group_policy is None or group_policy.premoderate <= 0:
        return False
    assert m.id is not None  # noqa: S101 - a stored member has an id
    own = policy.ensure_safety(s, m.id)
    if own.premoderate_left is None:
        # Decided on the first message: members who agreed before the setting are not new.
        since = group_policy.premoderate_since
        new = since is not None and m.consented_at is not None and m.consented_at >= since
        own.premoderate_left = group_policy.premoderate if new else 0
    return own.premoderate_left > 0


def _answer(turn: Turn, text: str) -> Handled | None:
    """``STAFF`` / ``EQUIPE`` after a message held outside open hours: send it to staff."""
    m = turn.member
    assert m.id is not None  # noqa: S101 - a stored member has an id
    if fold(text) not in _ANSWER_KEYS:
        return None  # checked first: most messages cost no query here
    held = held_for(turn.s, m.id, ("closed",), turn.now)
    if not held:
        return None
    effects: list[Any] = []
    for h in held:
        words = str(held_payload(turn.s, turn.relay.keys, h).get("text", ""))
        if words:
            effects.append(
                ToStaff(
                    T("Private to staff from {name}: {text}", name=display_name(m), text=Raw(words))
                )
            )
    policy.drop_held(turn.s, held)
    effects.append(Reply(T("Sent privately to the facilitators. They will answer you privately.")))
    turn.apply.apply(Outcome(effects))
    return Handled.COMMAND


def closed_notice(group_policy: GroupPolicy | None, now: datetime) -> Renderable:
    """What a member is told when they write outside open hours."""
    parts: list[Renderable] = [T("The group is closed right now, so your message was not sent.")]
    opening = schedule.next_opening(group_policy, now)
    if opening is not None and group_policy is not None:
        parts.append(
            T("It opens again {when}.", when=when(opening, schedule.zone(group_policy.tz)))
        )
    parts.append(T("If you need help now, send {resources}.", resources=CommandWord("resources")))
    parts.append(
        T(
            "To send this message privately to the facilitators instead, reply {word}.",
            word=Word(ANSWER_WORD),
        )
    )
    return Joined(tuple(parts), " ")


def review(
    turn: Turn, text: str, attachments: list[dict[str, str]], *, alerted: bool
) -> Handled | None:
    """Hold a member's message outside open hours, or for a facilitator's decision."""
    m, s = turn.member, turn.s
    if Role(m.role).is_staff:
        return None  # staff speak in the group at any hour and are never pre-moderated
    if (answered := _answer(turn, text)) is not None:
        return answered
    group_policy = policy.policy_of(s, m.group_id)
    if not schedule.is_open(group_policy, turn.now):
        if text:
            hold(s, turn.relay.keys, turn.now, m, "closed", {"text": text}, CLOSED_HOLD)
        policy.tally(s, m.group_id, Tally.CLOSED, turn.now)
        turn.apply.apply(Outcome.of(Reply(closed_notice(group_policy, turn.now))))
        return Handled.HELD_BACK
    if not alerted and not _premoderated(s, group_policy, m):
        return None
    payload: dict[str, Any] = {"text": text}
    if attachments:
        payload["attachments"] = attachments
    if turn.inbound.view_once:
        payload["view_once"] = True
    ttl = min(MAX_REVIEW_HOLD, timedelta(seconds=turn.group.timer_seconds))
    hold(s, turn.relay.keys, turn.now, m, "alert" if alerted else "review", payload, ttl)
    if not alerted:
        policy.tally(s, m.group_id, Tally.REVIEW, turn.now)
    name = display_name(m)
    decide = T(
        "{name}'s message waits for your decision: {approve} {name} sends it to the group, "
        "{reject} {name} drops it.",
        name=name,
        approve=CommandWord("approve"),
        reject=CommandWord("reject"),
    )
    shown = T("{name}: {text}", name=name, text=Raw(text)) if text else T("(a photo or file)")
    told = (
        T("Your message will go to the group once a facilitator has read it.")
        if alerted
        else T(
            "In this group, a facilitator reads a newcomer's first messages before they go to "
            "the group. Yours will be shared once they have read it."
        )
    )
    turn.apply.apply(Outcome.of(ToStaff(Joined((decide, shown))), Reply(told)))
    return Handled.HELD_BACK


# --- decisions (deferred work for /approve and /reject) --------------------------------------


def _muted(member: Member, now: datetime) -> bool:
    return member.muted_until is not None and member.muted_until > now


def release(st: Store, target: Member) -> Outcome:
    """Send a member's held messages to the group, oldest first."""
    assert target.id is not None  # noqa: S101 - a stored member has an id
    held = held_for(st.s, target.id, ("review", "alert"), st.now)
    if not held:
        return Outcome.of(
            Reply(T("Nothing from {name} is waiting for a decision.", name=display_name(target)))
        )
    receivers = [r for r in _receivers(st.s, st.group, target.id) if not _muted(r, st.now)]
    name = display_name(target)
    for h in held:
        payload = held_payload(st.s, st.relay.keys, h)
        words = str(payload.pop("text", ""))
        body = (
            T("{name}: {text}", name=name, text=Raw(words))
            if words
            else T("{name} sent:", name=name)
        )
        notes = (
            {
                lang: {
                    "media_note": T(
                        "({name} sent a photo or file that cannot be shown here.)", name=name
                    ).render(lang)
                }
                for lang in LANGS
            }
            if payload.get("attachments")
            else None
        )
        st.writer.fan_out(receivers, body, extra=payload or None, extra_by_lang=notes)
    own = policy.ensure_safety(st.s, target.id)
    own.premoderate_left = max(0, (own.premoderate_left or 0) - len(held))
    policy.drop_held(st.s, held)
    return Outcome.of(
        ToMember(target.id, T("A facilitator has shared your message with the group.")),
        Reply(
            TN(
                "Sent to the group: {n} message from {name}.",
                "Sent to the group: {n} messages from {name}.",
                len(held),
                name=name,
            )
        ),
        Audit("approve", target=target.pseudonym, detail=str(len(held))),
    )


def drop(st: Store, target: Member) -> Outcome:
    """Delete a member's held messages without sharing them; tell them gently."""
    assert target.id is not None  # noqa: S101 - a stored member has an id
    held = held_for(st.s, target.id, ("review", "alert"), st.now)
    name = display_name(target)
    if not held:
        return Outcome.of(Reply(T("Nothing from {name} is waiting for a decision.", name=name)))
    policy.drop_held(st.s, held)
    return Outcome.of(
        ToMember(
            target.id,
            T(
                "A facilitator did not share your message with the group. You can write to the "
                "facilitators privately with {staff}.",
                staff=CommandWord("staff"),
            ),
        ),
        Reply(
            TN(
                "Not shared: {n} message from {name}, now deleted.",
                "Not shared: {n} messages from {name}, now deleted.",
                len(held),
                name=name,
            )
        ),
        Audit("reject", target=target.pseudonym, detail=str(len(held))),
    )


def _receivers(s: Session, group: Group, exclude: int) -> list[Member]:
    return list(
        s.exec(
            select(Member).where(
                col(Member.group_id) == group.id,
                col(Member.state) == MemberState.ACTIVE,
                col(Member.id) != exclude,
            )
        ).all()
    )
