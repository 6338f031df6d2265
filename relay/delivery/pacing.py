"""Per-channel pacing shared by every worker: send *slots* handed out from one database row.

Each channel (Signal number, SMS sender) has one ``channel_pace`` row, read as a token bucket
that may go into debt (the "generic cell rate algorithm" of ATM networks, used by most rate
limiters): ``tokens`` is the level at ``refilled_at``; it refills at ``rate`` per second up to
``burst``; each message takes one token. A worker that finds the bucket short does not give
up: it takes a *future* send slot, spaced ``1/rate`` after the previous one, and sleeps until
it. The level then goes below zero by the slots handed out and not yet due. Slots are only
handed out a short ``lookahead`` ahead, so a worker holds at most a second or so of sends.

Why slots and not "take what is there now": with a burst of 1 the bucket holds one token; a
worker whose round (claim, send, record) takes longer than ``1/rate`` would find a full bucket
that had overflowed meanwhile, and the tokens that overflowed are lost for good. With slots,
the schedule of a busy channel is one unbroken line spaced ``1/rate`` apart, whoever sends,
so the rate achieved is the rate configured, and no window of one second ever holds more
than ``rate`` sends plus the burst.

The row is changed in short write transactions (``SELECT … FOR UPDATE`` on PostgreSQL; on
SQLite the transaction starts with a write, so it holds the single writer lock before it
reads), so several workers share one schedule, and one worker's 429 slows all of them down.
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
from relay.storage.engine import is_postgres, transaction
from relay.storage.models import ChannelPace

_EPSILON = 1e-9  # float slack when counting whole tokens
_ANY = 1 << 30  # "as many as there are" when asking how long until a batch is worthwhile


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
    """Send slots handed to one worker (clock times, earliest first), and the seconds until
    asking again is worthwhile (a full batch within the lookahead, or the end of a block)."""

    slots: tuple[datetime, ...] = ()
    wait: float = 0.0

    @property
    def tokens(self) -> int:
        """How many messages may be sent."""
        return len(self.slots)


@dataclass(frozen=True)
class _Level:
    """The bucket as seen at ``base``: the later of now and the end of any block."""

    base: datetime
    tokens: float  # may be negative: slots handed out and not yet due


class Pacer:
    """Hands out send slots on paced channels; unpaced channels are unlimited."""

    def __init__(self, engine: Engine, clock: Clock, paces: Mapping[str, Pace]) -> None:
        self.engine = engine
        self.clock = clock
        self.paces = {str(k): v for k, v in paces.items()}
        self._ensured: set[str] = set()

    def paced(self, channel: str) -> bool:
        """Whether ``channel`` has a configured pace."""
        return channel in self.paces

    def take(self, channel: str, want: int, lookahead: float = 0.0) -> Grant:
        """Take up to ``want`` slots due within ``lookahead`` seconds, in one transaction.

        With ``lookahead=0`` this takes only what the bucket holds now. A worker that claims
        outbox rows uses :meth:`lock`, :meth:`plan` and :meth:`spend` inside its claim
        transaction instead, so that it spends exactly as many slots as rows it won.
        """
        if not self.paced(channel):
            return Grant(tuple([self.clock.now()] * want))
        with transaction(self.engine) as s:
            row, now = self.lock(s, channel)
            offer = self.plan(row, now, want, lookahead)
            return self.spend(s, row, now, offer.tokens, lookahead) if offer.tokens else offer

    def available(self, channel: str, want: int, lookahead: float) -> Grant:
        """Peek without locking or writing: how many slots a claim could get now (as
        placeholder times), or how long until it could. Other workers may take them first."""
        pace = self.paces.get(channel)
        if pace is None:
            return Grant(tuple([self.clock.now()] * want))
        self._ensure(channel, pace)
        with Session(self.engine) as s:
            row = s.execute(select(ChannelPace).where(col(ChannelPace.channel) == channel)).scalar()
        if row is None:
            return Grant()
        now = self.clock.now()
        n, wait = self._count(pace, self._level(row, pace, now), now, want, lookahead)
        return Grant(tuple([now] * n), wait)

    def lock(self, s: Session, channel: str) -> tuple[ChannelPace, datetime]:
        """The channel's row, locked against other workers until ``s`` commits; and the time
        read after the lock (a worker that waited for it must not refill from the past)."""
        pace = self.paces[channel]
        self._ensure(channel, pace)
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
        return row, self.clock.now()

    def plan(self, row: ChannelPace, now: datetime, want: int, lookahead: float) -> Grant:
        """The slots a worker could take from a row locked by :meth:`lock` (nothing written).

        A worker is offered slots only when a worthwhile number is available within
        ``lookahead`` (half of what the lookahead holds, or ``want`` if fewer), or when the
        next slot is due right now; so a busy channel is claimed in batches, not one by one.
        Otherwise ``wait`` says when that will be the case.
        """
        pace = self.paces[row.channel]
        level = self._level(row, pace, now)
        n, wait = self._count(pace, level, now, want, lookahead)
        return Grant(self._slots(pace, level, n), wait)

    def spend(
        self, s: Session, row: ChannelPace, now: datetime, used: int, lookahead: float
    ) -> Grant:
        """Take the first ``used`` slots of :meth:`plan` (same row, same ``now``). Returns
        them, with ``wait``: when the next worthwhile batch falls within the lookahead."""
        pace = self.paces[row.channel]
        level = self._level(row, pace, now)
        slots = self._slots(pace, level, used)
        row.tokens = level.tokens - used
        row.refilled_at = level.base
        s.add(row)
        after = _Level(level.base, row.tokens)
        return Grant(slots, self._count(pace, after, now, _ANY, lookahead)[1])

    def slow_down(self, channel: str, seconds: float) -> None:
        """The provider rate-limited us: no new slot on ``channel`` for ``seconds``, and the
        bucket starts empty once the block ends (slots already handed out stay counted)."""
        pace = self.paces.get(channel)
        if pace is None:
            return
        with transaction(self.engine) as s:
            row, now = self.lock(s, channel)
            until = now + timedelta(seconds=seconds)
            level = self._level(row, pace, now)
            if until > level.base:
                tokens = level.tokens + (until - level.base).total_seconds() * pace.rate
                level = _Level(until, min(float(pace.burst), tokens))
            row.tokens = min(0.0, level.tokens)
            row.refilled_at = level.base
            if row.blocked_until is None or row.blocked_until < until:
                row.blocked_until = until
            s.add(row)

    # --- internals ------------------------------------------------------------------------

    @staticmethod
    def _level(row: ChannelPace, pace: Pace, now: datetime) -> _Level:
        if now <= row.refilled_at:  # blocked until then, or exactly now
            return _Level(row.refilled_at, row.tokens)
        elapsed = (now - row.refilled_at).total_seconds()
        return _Level(now, min(float(pace.burst), row.tokens + elapsed * pace.rate))

    @staticmethod
    def _slots(pace: Pace, level: _Level, n: int) -> tuple[datetime, ...]:
        """The next ``n`` slots: slot i (from 0) is due once the level would reach i + 1."""
        return tuple(
            level.base + timedelta(seconds=max(0.0, (i + 1 - level.tokens) / pace.rate))
            for i in range(n)
        )

    @staticmethod
    def _count(
        pace: Pace, level: _Level, now: datetime, want: int, lookahead: float
    ) -> tuple[int, float]:
        """How many slots to hand out now (0, or a worthwhile number), and else the wait."""
        if want <= 0:
            return 0, 0.0
        ahead = (level.base - now).total_seconds()  # > 0 while a block lasts
        # Slot i is due at base + (i + 1 - tokens) / rate (see _slots): count those due by
        # now + lookahead.
        within = math.floor(level.tokens + (lookahead - ahead) * pace.rate + _EPSILON)
        worthwhile = max(1, min(want, math.ceil(lookahead * pace.rate / 2)))
        due_now = ahead <= 0 and level.tokens >= 1 - _EPSILON
        if within >= worthwhile or (due_now and within >= 1):
            return min(want, within), 0.0
        # Seconds until `worthwhile` slots fall within the lookahead.
        wait = ahead + (worthwhile - level.tokens) / pace.rate - lookahead
        return 0, max(wait, 0.0)

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
