"""How hard the sender tries (:class:`DeliveryPolicy`), and what it needs of the relay service
(:class:`Service`)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from sqlalchemy import Engine

from relay.clock import Clock
from relay.delivery.pacing import Pace
from relay.errors import (
    Reason,
)
from relay.storage.crypto import DataKeys
from relay.storage.models import Member


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try. Backoff is exponential with full jitter, capped."""

    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 8
    base_backoff: float = 2.0
    max_backoff: float = 900.0
    batch: int = 50
    concurrency: int = 16
    # Per-channel send rate shared by all workers; channels not listed are not paced.
    paces: Mapping[str, Pace] = field(default_factory=dict)
    # Per-recipient pace on a channel (Signal: per sender-recipient pair), shared by all
    # workers; such a channel also needs an entry in `paces` (its whole-number ceiling).
    recipient_paces: Mapping[str, Pace] = field(default_factory=dict)
    # Sends in flight at once per channel in this worker (default: `concurrency`, shared).
    channel_concurrency: Mapping[str, int] = field(default_factory=dict)
    # How long a channel rests after a rate limit that did not say for how long.
    rate_limit_pause: float = 5.0
    # How far ahead (seconds) a worker takes send slots on a paced channel and sleeps until
    # each: long enough that the channel's schedule never runs dry between two claims, short
    # enough that a 429 stops everyone quickly. Far shorter than the lease.
    pace_lookahead: float = 1.0

    def __post_init__(self) -> None:
        if self.pace_lookahead < 0:
            raise ValueError("the pacing lookahead cannot be negative")
        if set(map(str, self.recipient_paces)) - set(map(str, self.paces)):
            raise ValueError("a channel paced per recipient needs a channel pace (its ceiling)")
        if any(n < 1 for n in self.channel_concurrency.values()):
            raise ValueError("sends in flight per channel must be at least 1")

    @property
    def lookahead(self) -> float:
        """The pacing lookahead, never more than a quarter of the lease: a row must not wait
        for its slot so long that its lease runs out and another worker sends it too."""
        return min(self.pace_lookahead, self.lease.total_seconds() / 4)

    def backoff(self, attempts: int) -> float:
        """Seconds to wait before attempt ``attempts + 1``."""
        ceiling = min(self.max_backoff, self.base_backoff * (2 ** max(attempts - 1, 0)))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


class Service(Protocol):
    """What the sender needs of the relay service (:class:`relay.service.relay.Relay`):
    where a member is reached, and whom to tell when a message fails for good."""

    @property
    def engine(self) -> Engine:
        """The database."""
        ...

    @property
    def keys(self) -> DataKeys:
        """Opens sealed addresses and payloads."""
        ...

    @property
    def clock(self) -> Clock:
        """The time."""
        ...

    def delivery_address(self, member: Member) -> str | None:
        """Where to send to ``member``."""
        ...

    def report_failure(self, recipient_id: int, reason: Reason) -> None:
        """Tell the recipient's group staff that a message could not reach them."""
        ...
