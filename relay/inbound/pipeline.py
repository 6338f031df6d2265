"""One message's way through the relay, top to bottom, in one transaction.

parse (the adapter made an :class:`~relay.messages.Inbound`) -> identify the member
(:mod:`.identify`) -> state events (:mod:`.state`) -> safety guards
(:mod:`relay.safety.quick_exit`) -> consent (:mod:`.consent`) -> a command (:mod:`.command`) or
an edit, deletion, reaction (:mod:`.edits`) or a message to relay (:mod:`.relaying`, whose
own guards are in :mod:`relay.safety.limits`) -> the outcome applied (:mod:`.apply`) ->
outbox rows, which :mod:`relay.delivery` sends.
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from relay.commands import table as commands
from relay.inbound import command, consent, edits, relaying, state
from relay.inbound.identify import identify
from relay.inbound.turn import InboundService, Result, Turn, clean_text
from relay.messages import Inbound, InboundKind
from relay.safety import quick_exit
from relay.storage.models import MemberState

log = logging.getLogger(__name__)


def handle(relay: InboundService, s: Session, ib: Inbound) -> Result:
    """Handle one inbound event inside the caller's transaction."""
    turn = identify(relay, s, ib, relay.clock.now())
    if isinstance(turn, Result):
        return turn
    result = _route(turn)
    log.info("inbound %s: %s", ib.kind, result)
    return result


def _route(turn: Turn) -> Result:
    ib, m = turn.inbound, turn.member
    match ib.kind:
        case InboundKind.OPTED_OUT:
            return state.opted_out(turn)
        case InboundKind.OPTED_IN:
            return state.opted_in(turn)
        case InboundKind.TIMER_CHANGED:
            state.enforce_timer(turn, ib.expires_in_seconds, always=True)
            return Result.STATE
        case InboundKind.IDENTITY_CHANGED:
            return state.identity_changed(turn)
    # The exit word works in every state; newcomers awaiting approval wait.
    if (handled := quick_exit.first(turn)) is not None:
        return Result(handled)
    if m.state == MemberState.OPTED_OUT:
        # They texted again after STOP without START: carrier will not deliver anyway.
        return Result.IGNORED
    if ib.expires_in_seconds is not None:
        state.enforce_timer(turn, ib.expires_in_seconds, always=False)
    text = clean_text(ib.text or "")
    parsed = commands.parse(text) if ib.kind == InboundKind.MESSAGE else None
    if m.state == MemberState.INVITED:
        return consent.before_consent(turn, text, parsed)
    if parsed is not None:
        return command.run(turn, parsed)
    match ib.kind:
        case InboundKind.EDIT:
            return edits.edit(turn)
        case InboundKind.DELETE:
            return edits.delete(turn)
        case InboundKind.REACTION:
            return edits.reaction(turn)
    return relaying.relay(turn)
