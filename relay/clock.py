"""Time, injectable so tests can move it. All times are timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the time."""

    def now(self) -> datetime:
        """The current UTC time (aware)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current UTC time (aware)."""
        return datetime.now(UTC)


class FakeClock:
    """A clock that moves only when told to (tests, the sandbox's time travel)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 6, 19, 0, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """The current fake time."""
        return self._now

    def advance(self, **delta: float) -> None:
        """Move forward, e.g. ``advance(minutes=5)``."""
        self._now += timedelta(**delta)
