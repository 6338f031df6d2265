"""In-memory rate limits per client address: never stored, never logged.

The address is only ever held as a keyed hash under a key made at start and never saved, so
even this process's memory holds no IP address after the request that carried it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict


class ClientLimit:
    """At most ``limit`` events per ``window`` seconds per client; remembers at most
    ``capacity`` clients (the oldest are forgotten first, so a flood cannot grow memory)."""

    def __init__(self, limit: int, window: float = 3600.0, capacity: int = 10000) -> None:
        self.limit = limit
        self.window = window
        self.capacity = capacity
        self._key = secrets.token_bytes(32)
        self._seen: OrderedDict[bytes, tuple[float, int]] = OrderedDict()

    def _id(self, client: str) -> bytes:
        return hashlib.blake2b(client.encode(), key=self._key, digest_size=16).digest()

    def over(self, client: str | None) -> bool:
        """Whether ``client`` is already past the limit (counts nothing)."""
        start, count = self._seen.get(self._id(client or "?"), (0.0, 0))
        return count >= self.limit and time.monotonic() - start < self.window

    def allow(self, client: str | None) -> bool:
        """Count one event for ``client``; whether it is within the limit."""
        return self.hit(client) <= self.limit

    def hit(self, client: str | None) -> int:
        """Count one event for ``client``; how many it made in its window, this one included."""
        key = self._id(client or "?")
        now = time.monotonic()
        start, count = self._seen.pop(key, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        count += 1
        self._seen[key] = (start, count)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return count
