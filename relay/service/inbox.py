"""The core's side of :class:`relay.doors.Inbox` (and so of
:class:`relay.transport.InboundStash`): one channel's share of the durable inbox of received
events not yet accepted (:mod:`relay.storage.inbox`), for an adapter that writes what it
received before it does anything else with it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio

from relay.service.relay import Relay
from relay.storage import inbox
from relay.transport import Stashed


class ChannelInbox:
    """One channel's inbox over the core's database. ``hold`` is how long workers leave an
    event put with ``hold=True`` to the adapter that stored it (it hands it over itself);
    ``batch`` is how many events one :meth:`take` hands out at most."""

    def __init__(self, relay: Relay, channel: str, hold: timedelta, batch: int = 10) -> None:
        self._relay = relay
        self._channel = channel
        self._hold = hold
        self._batch = batch

    async def accepted(self, dedup_key: str) -> bool:
        """Whether the core already accepted this provider event."""
        r = self._relay
        return await anyio.to_thread.run_sync(inbox.accepted, r.engine, r.keys, dedup_key)

    async def put(
        self, dedup_key: str, payload: dict[str, Any], *, hold: bool = True
    ) -> int | None:
        """Store one event, sealed, unless already stored or accepted; its ticket or ``None``.
        With ``hold``, workers leave it to the caller for ``hold`` (the constructor's)."""
        r = self._relay

        def store() -> int | None:
            if inbox.accepted(r.engine, r.keys, dedup_key):
                return None
            now = r.clock.now()
            return inbox.queue(
                r.engine,
                r.keys,
                now,
                self._channel,
                dedup_key,
                payload,
                not_before=now + self._hold if hold else None,
            )

        return await anyio.to_thread.run_sync(store)

    async def done(self, ticket: int) -> None:
        """Forget a handed-over event."""
        await anyio.to_thread.run_sync(inbox.done, self._relay.engine, ticket)

    async def later(self, ticket: int, attempts: int) -> None:
        """Try again after a backoff."""
        r = self._relay
        now = r.clock.now()
        await anyio.to_thread.run_sync(lambda: inbox.retry_later(r.engine, ticket, now, attempts))

    async def take(self, *, everything: bool = False) -> list[Stashed]:
        """Events due (or, with ``everything``, all), oldest first, each leased to the
        caller."""
        r = self._relay
        now = r.clock.now()
        claimed = await anyio.to_thread.run_sync(
            lambda: inbox.claim(
                r.engine, r.keys, now, self._channel, self._batch, everything=everything
            )
        )
        return [Stashed(p.id, p.payload, p.attempts) for p in claimed]

    async def release(self, tickets: list[int]) -> None:
        """Give taken events back, due at once (the worker is stopping)."""
        r = self._relay
        now = r.clock.now()
        await anyio.to_thread.run_sync(lambda: inbox.release(r.engine, tickets, now))
