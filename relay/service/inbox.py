"""The core's side of :class:`relay.doors.Inbox`: one channel's share of the durable inbox of
received events not yet accepted (:mod:`relay.storage.inbox`), for an adapter that must write
what it received before it answers its provider."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio

from relay.doors import Stashed
from relay.service.relay import Relay
from relay.storage import inbox


class ChannelInbox:
    """One channel's inbox over the core's database. ``hold`` is how long workers leave an
    event put with ``hold=True`` to the adapter that stored it (it hands it over itself)."""

    def __init__(self, relay: Relay, channel: str, hold: timedelta) -> None:
        self._relay = relay
        self._channel = channel
        self._hold = hold

    async def accepted(self, dedup_key: str) -> bool:
        """Whether the core already accepted this provider event."""
        r = self._relay
        return await anyio.to_thread.run_sync(inbox.accepted, r.engine, r.keys, dedup_key)

    async def put(self, dedup_key: str, payload: dict[str, Any], *, hold: bool) -> int | None:
        """Store one event, sealed; its ticket, or ``None`` when already stored."""
        r = self._relay
        now = r.clock.now()
        return await anyio.to_thread.run_sync(
            lambda: inbox.queue(
                r.engine,
                r.keys,
                now,
                self._channel,
                dedup_key,
                payload,
                not_before=now + self._hold if hold else None,
            )
        )

    async def done(self, ticket: int) -> None:
        """Forget a handed-over event."""
        await anyio.to_thread.run_sync(inbox.done, self._relay.engine, ticket)

    async def later(self, ticket: int, attempts: int) -> None:
        """Try again after a backoff."""
        r = self._relay
        now = r.clock.now()
        await anyio.to_thread.run_sync(lambda: inbox.retry_later(r.engine, ticket, now, attempts))

    async def take(self) -> list[Stashed]:
        """Events due, each leased to the caller."""
        r = self._relay
        now = r.clock.now()
        claimed = await anyio.to_thread.run_sync(
            lambda: inbox.claim(r.engine, r.keys, now, self._channel)
        )
        return [Stashed(p.id, p.payload, p.attempts) for p in claimed]
