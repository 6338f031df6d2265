"""Held messages: outside open hours, and waiting for a facilitator's decision.

:func:`review` runs once the text is cleaned and checked: outside open hours the message is
held for the member to send privately to staff instead (``STAFF`` / ``EQUIPE``); a newcomer's
first messages and (where the group says so) alerting messages wait for a facilitator's
``/approve`` or ``/reject`` (:mod:`relay.safety.decisions`).

Held content exists only in a sealed :class:`~relay.storage.models.OutboxBody`, pointed at by a
:class:`~relay.storage.models.HeldMessage` row, and both are deleted once decided or expired.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from relay.core.handlers import display_name
from relay.core.outcome import (
    Outcome,
    Reply,
    ToStaff,
)
from relay.core.words import ANSWER_WORD, CommandWord, Word
from relay.delivery.outbox import open_payload, seal_payload
from relay.groups import policy, schedule
from relay.groups.policy import Tally, fold
from relay.groups.schedule import when
from relay.language.i18n import Joined, Raw, Renderable, T
from relay.safety.protocols import Handled, Turn
from relay.storage.crypto import DataKeys
from relay.storage.models import (
    GroupPolicy,
    HeldMessage,
    Member,
    OutboxBody,
    Role,
)
from relay.storage.models import Inbound as InboundRow

# A message held outside open hours can be sent to staff for this long, then it is deleted.
CLOSED_HOLD = timedelta(minutes=15)


# Held for a decision no longer than this, even in a group with a longer timer.
MAX_REVIEW_HOLD = timedelta(days=7)


_ANSWER_KEYS = {fold(w) for w in ANSWER_WORD.values()}

# Reasons a message waits for a facilitator's /approve or /reject.
DECIDED = ("review", "alert")


def hold(
    s: Session,
    keys: DataKeys,
    now: datetime,
    member: Member,
    reason: str,
    payload: dict[str, Any],
    ttl: timedelta,
    inbound_id: int | None = None,
) -> HeldMessage:
    """Keep a message sealed until someone decides, or until ``ttl`` passes; ``inbound_id``
    is the stored message, which becomes the group message if it is released."""
    assert member.id is not None  # noqa: S101 - a stored member has an id
    body = OutboxBody(payload_enc=seal_payload(keys, payload), created_at=now)
    s.add(body)
    s.flush()
    assert body.id is not None  # noqa: S101 - set by flush
    row = HeldMessage(
        group_id=member.group_id,
        member_id=member.id,
        body_id=body.id,
        inbound_id=inbound_id,
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


def awaiting(s: Session, member_id: int, ref: str | None, now: datetime) -> HeldMessage | None:
    """The member's own message, sent as ``ref``, that still waits for a facilitator."""
    if not ref:
        return None
    return s.exec(
        select(HeldMessage)
        .join(InboundRow, col(InboundRow.id) == col(HeldMessage.inbound_id))
        .where(
            col(HeldMessage.member_id) == member_id,
            col(HeldMessage.reason).in_(list(DECIDED)),
            col(HeldMessage.expires_at) > now,
            col(InboundRow.member_id) == member_id,
            col(InboundRow.author_ref) == ref,
        )
    ).first()


def withdraw(turn: Turn, held: HeldMessage) -> Handled:
    """The author deleted a message that waits for a decision: it is deleted, never shared."""
    policy.drop_held(turn.s, [held])
    # Facilitators were shown it: tell them there is no longer anything to decide.
    turn.apply.apply(
        Outcome.of(
            ToStaff(
                T(
                    "{name} took back the message that waited for your decision; it was "
                    "deleted and will not be shared.",
                    name=display_name(turn.member),
                )
            )
        )
    )
    return Handled.HELD_BACK


def replace(turn: Turn, held: HeldMessage, text: str) -> Handled:
    """The author edited a message that waits for a decision: the edited words are what a
    facilitator reads and what ``/approve`` shares; photos sent with it stay."""
    payload = held_payload(turn.s, turn.relay.keys, held)
    payload["text"] = text
    body = turn.s.get(OutboxBody, held.body_id)
    if body is None:
        return Handled.HELD_BACK
    body.payload_enc = seal_payload(turn.relay.keys, payload)
    turn.s.add(body)
    # Facilitators decide on what they have read: show them the new words before any /approve.
    name = display_name(turn.member)
    turn.apply.apply(
        Outcome.of(
            ToStaff(
                Joined(
                    (
                        T(
                            "{name} edited the message that waits for your decision; "
                            "{approve} {name} would now share this:",
                            name=name,
                            approve=CommandWord("approve"),
                        ),
                        T("{name}: {text}", name=name, text=Raw(text)),
                    )
                )
            )
        )
    )
    return Handled.HELD_BACK


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
    reason = "alert" if alerted else "review"
    hold(s, turn.relay.keys, turn.now, m, reason, payload, ttl, turn.row.id)
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
