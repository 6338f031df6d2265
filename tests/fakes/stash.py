"""An in-memory :class:`relay.transport.InboundStash`, for adapter tests without a database.

It keeps the promises of the real one (``relay.service.inbox.ChannelInbox``): one entry per
de-duplication key, entries held for the caller after ``put`` and ``take``, ``take`` in
arrival order, ``everything`` also taking held entries. Backoffs are shortened so a retried
hand-over shows within a test.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from relay.transport import Stashed


@dataclass
class _Entry:
    key: str
    payload: dict[str, Any]
    due: float
    attempts: int = 0


class MemoryStash:
    """Stashed events in a dict; ``accepted`` stands in for the core's record of what it has."""

    def __init__(self, *, hold: float = 60.0, backoff: float = 0.05) -> None:
        self.entries: dict[int, _Entry] = {}
        self.accepted: set[str] = set()
        self.done_keys: list[str] = []
        self._ids = itertools.count(1)
        self._hold = hold
        self._backoff = backoff

    async def put(self, dedup_key: str, payload: dict[str, Any]) -> int | None:
        if dedup_key in self.accepted or any(e.key == dedup_key for e in self.entries.values()):
            return None
        ticket = next(self._ids)
        self.entries[ticket] = _Entry(dedup_key, payload, time.monotonic() + self._hold)
        return ticket

    async def done(self, ticket: int) -> None:
        entry = self.entries.pop(ticket, None)
        if entry is not None:
            self.accepted.add(entry.key)
            self.done_keys.append(entry.key)

    async def later(self, ticket: int, attempts: int) -> None:
        if ticket in self.entries:
            self.entries[ticket].due = time.monotonic() + self._backoff * 2**attempts

    async def take(self, *, everything: bool = False) -> list[Stashed]:
        now = time.monotonic()
        taken = []
        for ticket, entry in sorted(self.entries.items()):
            if everything or entry.due <= now:
                entry.attempts += 1
                entry.due = now + self._hold
                taken.append(Stashed(ticket, entry.payload, entry.attempts))
        return taken

    async def release(self, tickets: list[int]) -> None:
        for ticket in tickets:
            if ticket in self.entries:
                self.entries[ticket].due = time.monotonic()
                self.entries[ticket].attempts -= 1
