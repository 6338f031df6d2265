"""Alerts to staff: a member's message with an alert phrase (:mod:`relay.safety.alerts`).

:func:`check_alert` runs before a member's message meets the mute and flood guards, so that a
muted or flooding member in danger still reaches staff and gets the crisis lines.
"""

from __future__ import annotations

from datetime import timedelta

from relay.core.handlers import display_name
from relay.core.outcome import (
    Audit,
    Outcome,
    Reply,
    ToStaff,
)
from relay.core.words import CommandWord
from relay.groups import policy
from relay.groups.policy import Tally
from relay.language.i18n import Joined, Raw, Renderable, T
from relay.language.texts import ConfigText
from relay.safety import alerts
from relay.safety.protocols import Turn
from relay.storage.models import (
    Role,
)

# One alert (and one copy of the crisis lines) per member in this time: enough to act on.
ALERT_QUIET = timedelta(minutes=15)


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
