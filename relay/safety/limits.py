"""Guards before relaying: a paused or muted member's message, and one over the flood limit,
is held back; the sender is told why (and staff, the first time a flood limit is passed).
"""

from __future__ import annotations

import logging

from relay.core.handlers import display_name, named
from relay.core.outcome import Audit, Outcome, Reply, ToStaff
from relay.groups import policy
from relay.language.durations import describe
from relay.language.i18n import Raw, T
from relay.safety import flood
from relay.safety.protocols import Handled, Turn
from relay.storage.models import MemberState

log = logging.getLogger(__name__)


def paused_or_muted(turn: Turn) -> Handled | None:
    """Hold back a message from a paused or muted member, and tell them why."""
    m = turn.member
    if m.state == MemberState.PAUSED:
        turn.apply.apply(
            Outcome.of(
                Reply(
                    T(
                        "You are paused, so your message was not sent to the group. "
                        "Send {resume} to come back.",
                        resume=Raw("/" + named("resume").words[m.lang]),
                    )
                )
            )
        )
        return Handled.HELD_BACK
    if m.muted_until is not None and m.muted_until > turn.now:
        policy.tally(turn.s, m.group_id, policy.Tally.MUTED, turn.now)
        left = int((m.muted_until - turn.now).total_seconds())
        turn.apply.apply(
            Outcome.of(
                Reply(
                    T(
                        "A facilitator has muted you; your message was not sent to the "
                        "group. You can write again in {duration}. You can still reach the "
                        "facilitators with {staff}.",
                        duration=describe(max(left, 60)),
                        staff=Raw("/" + named("staff").words[m.lang]),
                    )
                )
            )
        )
        return Handled.HELD_BACK
    return None


def flooding(turn: Turn, rule: flood.FloodLimit) -> Handled | None:
    """Hold back messages over the member's flood limit; tell them and staff once."""
    m = turn.member
    verdict = flood.count(turn.s, m.id, turn.now, rule)  # type: ignore[arg-type]
    if verdict is flood.Verdict.OK:
        return None
    policy.tally(turn.s, m.group_id, policy.Tally.LIMITED, turn.now)
    if verdict is flood.Verdict.FIRST_OVER:
        wait = flood.seconds_left(turn.s, m.id, turn.now, rule)  # type: ignore[arg-type]
        turn.apply.apply(
            Outcome.of(
                Reply(
                    T(
                        "You are sending a lot of messages quickly, so this one and the next "
                        "ones were not sent to the group. You can write again in {duration}.",
                        duration=describe(max(wait, 60)),
                    )
                ),
                ToStaff(
                    T(
                        "{name} sent more than {n} messages in {window}; their messages are "
                        "held back for now.",
                        name=display_name(m),
                        n=rule.limit,
                        window=describe(max(int(rule.window), 60)),
                    )
                ),
                Audit("flood", target=m.pseudonym),
            )
        )
    log.info("inbound held back: flood limit")
    return Handled.HELD_BACK
