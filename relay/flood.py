"""Per-member inbound flood limit: at most ``limit`` relayed messages per ``window``.

Only a counter and the start of the member's current window are stored, never content. The
first message over the limit in a window is the one that tells the member and the staff;
later ones in the same window are held back silently, so a flood cannot become a flood of
notices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session

from relay.models import FloodWindow


@dataclass(frozen=True)
class FloodLimit:
    """How many messages one member may have relayed per window (seconds)."""

    limit: int = 8
    window: float = 60.0

    @property
    def span(self) -> timedelta:
        """The window as a duration."""
        return timedelta(seconds=self.window)


class Verdict(StrEnum):
    """What to do with one more message from a member."""

    OK = "ok"
    FIRST_OVER = "first_over"  # hold it back, and tell the member and the staff
    OVER = "over"  # hold it back, quietly (already told in this window)


def count(s: Session, member_id: int, now: datetime, rule: FloodLimit) -> Verdict:
    """Count one message from ``member_id`` in the caller's transaction and judge it.

    The window is fixed (starts at the first message after the previous one ended); held-back
    messages count too, so someone who keeps sending is not let through in bursts.
    """
    row = s.get(FloodWindow, member_id)
    if row is None:
        row = FloodWindow(member_id=member_id, window_start=now, count=0, notified=False)
    elif now - row.window_start >= rule.span:
        row.window_start, row.count, row.notified = now, 0, False
    row.count += 1
    verdict = Verdict.OK
    if row.count > rule.limit:
        verdict = Verdict.OVER if row.notified else Verdict.FIRST_OVER
        row.notified = True
    s.add(row)
    return verdict


def seconds_left(s: Session, member_id: int, now: datetime, rule: FloodLimit) -> int:
    """Whole seconds until the member's window ends (at least 1)."""
    row = s.get(FloodWindow, member_id)
    if row is None:
        return 1
    return max(1, int((row.window_start + rule.span - now).total_seconds()))
