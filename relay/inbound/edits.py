"""Edits, deletions and reactions: each points at a message relayed earlier, and reaches
only those who received it (or, for a reaction, only its author). An edit or deletion of a
message still waiting for a facilitator's decision changes or deletes the held copy instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlmodel import col, select

from relay.core.handlers import display_name
from relay.inbound.relaying import find_target, text_or_refuse
from relay.inbound.turn import Result, Turn, clean_text
from relay.language.i18n import Raw, T
from relay.safety import held as holding
from relay.safety import limits
from relay.storage.models import Inbound as InboundRow
from relay.storage.models import Member, MemberState, Outbox, OutboxKind, OutboxState

log = logging.getLogger(__name__)


def edit(turn: Turn) -> Result:
    """Relay the sender's edit of their own message to those who received it."""
    # Before the pause and mute guards: a held message goes to no one until a facilitator
    # decides, and they should decide on the words the author means.
    waiting = holding.awaiting(turn.s, turn.member.id, turn.inbound.edit_ref, turn.now)  # type: ignore[arg-type]
    if waiting is not None:
        text = text_or_refuse(turn, turn.inbound.text)
        return Result(holding.replace(turn, waiting, text)) if text else Result.IGNORED
    if (held := limits.paused_or_muted(turn)) is not None:
        return Result(held)
    target = own_target(turn, turn.inbound.edit_ref)
    text = text_or_refuse(turn, turn.inbound.text)
    if target is None or not text:
        return Result.IGNORED
    recipients = [
        c.recipient_id
        for c in copies_of(turn, target.id)  # type: ignore[arg-type]
        if c.state not in (OutboxState.CANCELLED, OutboxState.FAILED)
    ]
    members = [m for m in turn.apply.roster() if m.id in set(recipients)]
    turn.apply.writer.fan_out(
        members,
        T("{name}: {text}", name=display_name(turn.member), text=Raw(text)),
        kind=OutboxKind.EDIT,
        inbound_id=turn.row.id,
        target_inbound_id=target.id,
    )
    return Result.RELAYED


def delete(turn: Turn) -> Result:
    """Withdraw the sender's message: unsent copies are cancelled, sent ones deleted on phones;
    one still waiting for a facilitator's decision is deleted and never shared."""
    target = own_target(turn, turn.inbound.delete_ref)
    if target is None:
        waiting = holding.awaiting(turn.s, turn.member.id, turn.inbound.delete_ref, turn.now)  # type: ignore[arg-type]
        return Result(holding.withdraw(turn, waiting)) if waiting is not None else Result.IGNORED
    copies = copies_of(turn, target.id)  # type: ignore[arg-type]
    # Copies not yet sent are simply never sent; the rest are deleted on the phones.
    for c in copies:
        if c.state in (OutboxState.PENDING, OutboxState.RETRY, OutboxState.HELD):
            c.state = OutboxState.CANCELLED
            turn.s.add(c)
    sent_to = {c.recipient_id for c in copies if c.state in (OutboxState.SENT, OutboxState.SENDING)}
    members = [m for m in turn.apply.roster() if m.id in sent_to]
    turn.apply.writer.fan_out(
        members,
        Raw(""),
        kind=OutboxKind.DELETE,
        inbound_id=turn.row.id,
        target_inbound_id=target.id,
        report_failure=False,
    )
    return Result.RELAYED


def reaction(turn: Turn) -> Result:
    """Tell a message's author, privately, that someone reacted to it."""
    reaction = turn.inbound.reaction
    if reaction is None or reaction.remove:
        return Result.IGNORED
    target_id = find_target(turn, reaction.target_ref)
    target = turn.s.get(InboundRow, target_id) if target_id else None
    if target is None or target.member_id == turn.member.id:
        return Result.IGNORED
    author = turn.s.get(Member, target.member_id)
    if author is None or author.state != MemberState.ACTIVE:
        return Result.IGNORED
    # Only the author hears of it, as a short note quoting their message: the bot can hold
    # one reaction per message, so relaying reactions natively would merge everyone's.
    emoji = clean_text(reaction.emoji)[:16]
    turn.apply.writer.fan_out(
        [author],
        T(
            "{name} reacted {emoji} to your message.",
            name=display_name(turn.member),
            emoji=Raw(emoji),
        ),
        inbound_id=turn.row.id,
        target_inbound_id=target.id,
        report_failure=False,
    )
    return Result.RELAYED


def own_target(turn: Turn, ref: str | None) -> InboundRow | None:
    """The sender's own relayed message that ``ref`` points at."""
    if not ref:
        return None
    return turn.s.exec(
        select(InboundRow).where(
            col(InboundRow.member_id) == turn.member.id,
            col(InboundRow.author_ref) == ref,
            col(InboundRow.relayed).is_(True),
        )
    ).first()


def copies_of(turn: Turn, target_id: int) -> Sequence[Outbox]:
    """The copies of a relayed message, one per recipient."""
    return turn.s.exec(
        select(Outbox).where(
            col(Outbox.inbound_id) == target_id, col(Outbox.kind) == OutboxKind.MESSAGE
        )
    ).all()
