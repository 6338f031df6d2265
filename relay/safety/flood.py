"""Per-member inbound flood limit: at most ``limit`` relayed messages per ``window``.

Only a counter and the start of the member's current window are stored, never content. The
first message over the limit in a window is the one that tells the member and the staff;
later ones in the same window are held back silently, so a flood cannot become a flood of
notices.

Cooldowns escalate: the first flood holds the member back until the window ends (about a
minute by default); another flood within a day holds them back 5 minutes, then 30 minutes,
then 2 hours each time (``ladder``). A day without a flood wipes the slate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session

from relay.storage.models import FloodWindow


@dataclass(frozen=True)
class FloodLimit:
    """How many messages one member may have relayed per window (seconds)."""

    limit: int = 8
    window: float = 60.0
    # Holds after the 2nd, 3rd, 4th… flood within ``forgive`` (seconds); the last one repeats.
    ladder: tuple[float, ...] = (300.0, 1800.0, 7200.0)
    forgive: float = 86400.0

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
    elif row.hold_until is not None and now < row.hold_until:
        # In a cooldown: held quietly, and not counted, so the cooldown does not grow by itself.
        return Verdict.OVER
    elif now - row.window_start >= rule.span or row.hold_until is not None:
        row.window_start, row.count, row.notified = now, 0, False
        row.hold_until = None
    row.count += 1
    verdict = Verdict.OK
    if row.count > rule.limit:
        verdict = Verdict.OVER if row.notified else Verdict.FIRST_OVER
        if not row.notified:
            _strike(row, now, rule)
        row.notified = True
    s.add(row)
    return verdict


def _strike(row: FloodWindow, now: datetime, rule: FloodLimit) -> None:
    recent = row.last_strike_at is not None and now - row.last_strike_at < timedelta(
        seconds=rule.forgive
    )
    row.strikes = (row.strikes if recent else 0) + 1
    row.last_strike_at = now
    if row.strikes >= 2 and rule.ladder:
        step = rule.ladder[min(row.strikes - 2, len(rule.ladder) - 1)]
        row.hold_until = now + timedelta(seconds=step)


def seconds_left(s: Session, member_id: int, now: datetime, rule: FloodLimit) -> int:
    """Whole seconds until the member's window ends (at least 1)."""
    row = s.get(FloodWindow, member_id)
    if row is None:
        return 1
    until = row.hold_until or row.window_start + rule.span
    return max(1, int((until - now).total_seconds()))
