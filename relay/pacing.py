"""Per-channel pacing shared by every worker: a token bucket kept in one database row.

Each channel (Signal number, SMS sender) has one ``channel_pace`` row: its token level at
``refilled_at`` and, when a provider said "slow down", ``blocked_until``. A worker takes a
batch of tokens in one short write transaction (``SELECT … FOR UPDATE`` on PostgreSQL; on
SQLite the transaction starts with a write, so it holds the single writer lock before it reads)
and sends that many rows. Several workers therefore share one rate instead of each sending at
the full rate, and one worker's 429 slows all of them down.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from relay.clock import Clock
from relay.models import ChannelPace
from relay.storage import is_postgres, transaction


@dataclass(frozen=True)
class Pace:
    """A channel's allowed rate (messages per second) and burst (bucket size)."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a pace needs a positive rate and a burst of at least 1")


@dataclass(frozen=True)
class Grant:
    """Tokens handed to one worker, or how long until the next one (seconds)."""

    tokens: int
    wait: float = 0.0


class Pacer:
    """Takes and returns send tokens for paced channels; unpaced channels are unlimited."""

    def __init__(self, engine: Engine, clock: Clock, paces: Mapping[str, Pace]) -> None:
        self.engine = engine
        self.clock = clock
        self.paces = {str(k): v for k, v in paces.items()}
        self._ensured: set[str] = set()

    def paced(self, channel: str) -> bool:
        """Whether ``channel`` has a configured pace."""
        return channel in self.paces

    def take(self, channel: str, want: int) -> Grant:
        """Take up to ``want`` tokens (whole messages) from the channel's shared bucket."""
        pace = self.paces.get(channel)
        if pace is None:
            return Grant(want)
        self._ensure(channel, pace)
        with transaction(self.engine) as s:
            row, now = self._locked(s, channel)
            blocked = row.blocked_until
            if blocked is not None and blocked > now:
                self._refill(row, pace, now)
                s.add(row)
                return Grant(0, (blocked - now).total_seconds())
            self._refill(row, pace, now)
            granted = min(want, math.floor(row.tokens + 1e-9))
            row.tokens -= granted
            s.add(row)
            wait = 0.0 if granted else (1.0 - row.tokens) / pace.rate
            return Grant(granted, max(wait, 0.0))

    def give_back(self, channel: str, tokens: int) -> None:
        """Return tokens that were taken but not used (fewer rows were due than granted)."""
        pace = self.paces.get(channel)
        if pace is None or tokens <= 0:
            return
        with transaction(self.engine) as s:
            row, now = self._locked(s, channel)
            self._refill(row, pace, now)
            row.tokens = min(float(pace.burst), row.tokens + tokens)
            s.add(row)

    def slow_down(self, channel: str, seconds: float) -> None:
        """The provider rate-limited us: nobody sends on ``channel`` for ``seconds``."""
        pace = self.paces.get(channel)
        if pace is None:
            return
        self._ensure(channel, pace)
        with transaction(self.engine) as s:
            row, now = self._locked(s, channel)
            until = now + timedelta(seconds=seconds)
            if row.blocked_until is None or row.blocked_until < until:
                row.blocked_until = until
            row.tokens = 0.0
            row.refilled_at = until  # the bucket starts refilling only once the block ends
            s.add(row)

    # --- internals ------------------------------------------------------------------------

    def _refill(self, row: ChannelPace, pace: Pace, now: datetime) -> None:
        elapsed = (now - row.refilled_at).total_seconds()
        if elapsed > 0:
            row.tokens = min(float(pace.burst), row.tokens + elapsed * pace.rate)
            row.refilled_at = now

    def _locked(self, s: Session, channel: str) -> tuple[ChannelPace, datetime]:
        """The channel's row, locked against other workers until the transaction ends."""
        if is_postgres(self.engine):
            query = select(ChannelPace).where(col(ChannelPace.channel) == channel).with_for_update()
        else:
            # Write first: SQLite then holds the writer lock before reading, so two workers
            # never both read the same level (and no stale snapshot has to be upgraded).
            s.execute(
                update(ChannelPace)
                .where(col(ChannelPace.channel) == channel)
                .values(channel=channel)
            )
            query = select(ChannelPace).where(col(ChannelPace.channel) == channel)
        row = s.execute(query).scalar_one()
        # Read the time after the lock: a worker that waited must not refill from the past.
        return row, self.clock.now()

    def _ensure(self, channel: str, pace: Pace) -> None:
        """Create the channel's row (full bucket) once; concurrent creators do not clash."""
        if channel in self._ensured:
            return
        values = {
            "channel": channel,
            "tokens": float(pace.burst),
            "refilled_at": self.clock.now(),
            "blocked_until": None,
        }
        stmt = pg_insert(ChannelPace) if is_postgres(self.engine) else sqlite_insert(ChannelPace)
        with transaction(self.engine) as s:
            s.execute(stmt.values(**values).on_conflict_do_nothing(index_elements=["channel"]))
        self._ensured.add(channel)
