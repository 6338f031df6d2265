"""Keeps delivery-failure reports to staff from flooding them.

One report per recipient and reason per window (an hour by default); failures in between
are counted and the next report says how many there were. Only ids, a reason code and a
count are stored. :data:`REASON_WORDS` says, in plain words, why a message was lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from relay.errors import Reason
from relay.language.i18n import T
from relay.storage.models import FailureReport

REPORT_WINDOW = timedelta(hours=1)


def due(
    s: Session, recipient_id: int, reason: str, now: datetime, window: timedelta = REPORT_WINDOW
) -> int | None:
    """Record one failure. Returns ``None`` if staff were told recently (the failure is
    counted for later), else the number of earlier failures folded into this report."""
    row = s.get(FailureReport, (recipient_id, reason))
    if row is not None and now - row.last_at < window:
        row.suppressed += 1
        s.add(row)
        return None
    folded = row.suppressed if row is not None else 0
    if row is None:
        row = FailureReport(recipient_id=recipient_id, reason=reason, last_at=now)
    row.last_at, row.suppressed = now, 0
    s.add(row)
    return folded


# What staff are told when a message could not reach someone, by reason.
REASON_WORDS: dict[Reason, T] = {
    Reason.NETWORK: T("the connection to the provider kept failing."),
    Reason.PROVIDER_DOWN: T("the provider was unavailable for too long."),
    Reason.RATE_LIMITED: T("the provider is limiting how fast we can send."),
    Reason.CAPTCHA_REQUIRED: T(
        "Signal asks for a captcha before we can send more; messages are kept until then. An "
        "admin must solve it and run the command shown in the worker's log (see docs/signal.md, "
        "Captcha)."
    ),
    Reason.UNREGISTERED: T(
        "their number is no longer registered on this service (for "
        "Signal: they deleted their account or changed number)."
    ),
    Reason.OPTED_OUT: T(
        "they texted STOP, so SMS can no longer reach them. They can text START to come back."
    ),
    Reason.INVALID_NUMBER: T("their number is not valid for this service."),
    Reason.UNREACHABLE: T(
        "their phone could not be reached (off, out of coverage, or blocked by the carrier)."
    ),
    Reason.IDENTITY_CHANGED: T(
        "their safety number changed, so messages to them are on hold. "
        "Check with them by another safe way, then send /trust and "
        "their name."
    ),
    Reason.REJECTED: T("the provider refused it."),
}
