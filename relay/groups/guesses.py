"""Counts of refused join attempts, for staff to see a guessing surge (and never to act on it).

A refused attempt (a wrong, used or expired code, or one from a source over its own limit) adds
one to a counter for its door (``sms``, ``signal``, ``web``, ...) and its hour. Nothing else is
kept: no code, no number, no address, not even a keyed hash of one. Refusing everyone once the
count is high would let whoever sends wrong guesses keep the right person out, so nothing reads
these counts but the health check (``cercle doctor``, the console's health page).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult
from sqlmodel import Session, col, select

from relay.storage.models import JoinAttempt

PREFIX = "guesses:"  # join_attempt keys of these counters (per-sender keys are hex hashes)
KEEP = timedelta(days=2)  # a day to show, and a day's margin


@dataclass(frozen=True)
class Recent:
    """Refused join attempts per door: in the hour now running and the one before it, and in
    the last 24 hours."""

    last_hour: dict[str, int]
    last_day: dict[str, int]

    @property
    def hour_total(self) -> int:
        """All doors together, this hour and the one before."""
        return sum(self.last_hour.values())

    @property
    def day_total(self) -> int:
        """All doors together, the last 24 hours."""
        return sum(self.last_day.values())


def _hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


def count(s: Session, door: str, now: datetime) -> None:
    """Add one refused attempt on ``door`` to the current hour's counter."""
    start = _hour(now)
    key = f"{PREFIX}{door}:{start:%Y%m%d%H}"
    # One statement: many web processes and the worker count at once into the same row, and
    # a read-then-write would lose counts or collide on the hour's first insert.
    insert: Any = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(JoinAttempt).values(key=key, window_start=start, count=1)
    s.execute(
        stmt.on_conflict_do_update(
            index_elements=["key"], set_={"count": col(JoinAttempt.count) + 1}
        )
    )


def recent(s: Session, now: datetime) -> Recent:
    """The counters of the last day, summed per door."""
    hour_from, day_from = _hour(now) - timedelta(hours=1), now - timedelta(hours=24)
    rows = s.exec(
        select(JoinAttempt).where(
            col(JoinAttempt.key).startswith(PREFIX), col(JoinAttempt.window_start) >= day_from
        )
    ).all()
    hour: dict[str, int] = {}
    day: dict[str, int] = {}
    for row in rows:
        door = row.key.removeprefix(PREFIX).rsplit(":", 1)[0]
        day[door] = day.get(door, 0) + row.count
        if row.window_start >= hour_from:
            hour[door] = hour.get(door, 0) + row.count
    return Recent(hour, day)


def purge(s: Session, now: datetime) -> int:
    """Forget counters older than :data:`KEEP`; how many went."""
    gone: CursorResult[tuple[()]] = s.execute(  # type: ignore[assignment]
        delete(JoinAttempt).where(
            col(JoinAttempt.key).startswith(PREFIX), col(JoinAttempt.window_start) < now - KEEP
        )
    )
    return gone.rowcount
