"""Keeps delivery-failure reports to staff from flooding them.

One report per recipient and reason per window (an hour by default); failures in between
are counted and the next report says how many there were. Only ids, a reason code and a
count are stored.

The same table counts members' ``/report`` messages per window (:func:`count_in_window`),
so that reporting can be rate-limited without storing anything more.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

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


def count_in_window(s: Session, member_id: int, key: str, now: datetime, window: timedelta) -> int:
    """Record one event of kind ``key`` by ``member_id``; return how many came before it in
    the current window (the first event after a window ends opens the next one)."""
    row = s.get(FailureReport, (member_id, key))
    if row is None or now - row.last_at >= window:
        row = row or FailureReport(recipient_id=member_id, reason=key, last_at=now)
        row.last_at, row.suppressed = now, 1
        s.add(row)
        return 0
    before = row.suppressed
    row.suppressed += 1
    s.add(row)
    return before
