"""State events, which change a member's standing and are never relayed: STOP and START on
SMS, a disappearing-timer change, a safety-number change.
"""

from __future__ import annotations

import logging

from relay.core.handlers import display_name
from relay.core.outcome import Audit, Outcome, Reply, ToStaff
from relay.inbound.apply import cancel_open
from relay.inbound.turn import Result, Turn
from relay.language.durations import describe
from relay.language.i18n import T
from relay.storage.models import MemberState

log = logging.getLogger(__name__)


def opted_out(turn: Turn) -> Result:
    """STOP on SMS: nothing more is sent to them, and staff are told."""
    m = turn.member
    if m.state in (MemberState.ACTIVE, MemberState.PAUSED, MemberState.INVITED):
        m.state = MemberState.OPTED_OUT
        cancel_open(turn.s, m.id)  # type: ignore[arg-type]
        turn.apply.apply(
            Outcome.of(
                ToStaff(
                    T(
                        "{name} texted STOP: SMS can no longer reach them until they text START.",
                        name=display_name(m),
                    )
                ),
                Audit("opted_out", target=m.pseudonym),
            )
        )
    return Result.STATE


def opted_in(turn: Turn) -> Result:
    """START on SMS after STOP: they receive messages again (or the consent, if never given)."""
    m = turn.member
    if m.state == MemberState.OPTED_OUT:
        m.state = MemberState.ACTIVE if m.consented_at else MemberState.INVITED
        turn.apply.apply(
            Outcome.of(
                ToStaff(
                    T(
                        "{name} texted START and can receive messages again.",
                        name=display_name(m),
                    )
                ),
                Audit("opted_in", target=m.pseudonym),
            )
        )
        if m.state == MemberState.INVITED:
            turn.relay.send_consent(turn.apply.writer, turn.group, m)
    return Result.STATE


def enforce_timer(turn: Turn, seconds: int | None, *, always: bool) -> None:
    """Reset the sender's disappearing timer to the group's (before anything is relayed)."""
    m, group = turn.member, turn.group
    if seconds == group.timer_seconds:
        m.timer_seconds = seconds
        return
    # Reset before anything else is relayed to them: the TIMER row is queued first.
    turn.apply.writer.timer(m, group.timer_seconds)
    m.timer_seconds = group.timer_seconds
    if always or seconds is not None:
        turn.apply.apply(
            Outcome.of(
                Reply(
                    T(
                        "In this group, messages disappear after {timer}, to protect "
                        "everyone. Cercle has reset your timer to the group's.",
                        timer=describe(group.timer_seconds),
                    )
                )
            )
        )


def identity_changed(turn: Turn) -> Result:
    """A member's safety number changed: staff are told to check with them."""
    m = turn.member
    turn.apply.apply(
        Outcome.of(
            ToStaff(
                T(
                    "{name}'s safety number changed. It may be a new phone or a reinstall, or "
                    "someone else may now be using their account. Check with them by another "
                    "safe way if you can.",
                    name=display_name(m),
                )
            ),
            Audit("identity_changed", target=m.pseudonym),
        )
    )
    return Result.STATE
