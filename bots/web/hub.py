"""Waking connected browsers when copies arrive, even from a worker in another process.

One loop per web process asks the database for news for *every* connected seat at once: on
PostgreSQL it waits for ``NOTIFY cercle_web`` (sent by the transaction that stored the copy);
on SQLite it looks every ``poll`` seconds. A worker in the same process (``cercle run``)
also pokes it directly. Either way, one query per wake-up, however many browsers are open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections import defaultdict

import anyio

from relay.doors import WebSeats

log = logging.getLogger(__name__)


class Listener:
    """One connected browser's wake-up."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def wake(self) -> None:
        """There may be copies to send."""
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for news; whether there was any."""
        with anyio.move_on_after(seconds):
            await self._event.wait()
        woken = self._event.is_set()
        self._event = anyio.Event()
        return woken


class PushHub:
    """Connected browsers by seat, and the loop that wakes them."""

    def __init__(self, store: WebSeats, poll: float = 0.25, max_streams: int = 2000) -> None:
        self.store = store
        self.poll = poll
        self.max_streams = max_streams
        # Weak: a stream that never started (its client left at once) frees its place when
        # its generator is collected, even though its ``finally`` never ran.
        self._seats: dict[str, weakref.WeakSet[Listener]] = defaultdict(weakref.WeakSet)
        self._last = 0
        self._poke = anyio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None

    @property
    def connected(self) -> int:
        """How many browsers are connected to this process."""
        return sum(len(listeners) for listeners in self._seats.values())

    def open(self, seat_hash: str, per_seat: int) -> Listener | None:
        """A place for one more connection of this seat, or ``None`` when this process or the
        seat holds as many as allowed. Checked and taken at once (no await in between)."""
        if self.connected >= self.max_streams or len(self._seats.get(seat_hash, ())) >= per_seat:
            return None
        listener = Listener()
        self._seats[seat_hash].add(listener)
        return listener

    def close(self, seat_hash: str, listener: Listener) -> None:
        """The connection ended."""
        listeners = self._seats.get(seat_hash)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._seats[seat_hash]

    def poke(self) -> None:
        """Look for news now (safe from any thread)."""
        if self._loop is None or threading.get_ident() == self._thread:
            self._poke.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                self._loop.call_soon_threadsafe(self._poke.set)

    async def run(self, stop: anyio.Event) -> None:
        """Wake browsers with news until ``stop`` is set; never ends on an error."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._last = await anyio.to_thread.run_sync(self.store.newest_id)
        purge_every, since_purge = 60.0, 0.0
        async with anyio.create_task_group() as tg:
            if self._pg:
                tg.start_soon(self.store.listen, self.poke)
            while not stop.is_set():
                waited = anyio.current_time()
                with anyio.move_on_after(self.poll if not self._pg else 2.0):
                    await self._poke.wait()
                self._poke = anyio.Event()
                since_purge += anyio.current_time() - waited
                try:
                    if self._seats:
                        self._last, seats = await anyio.to_thread.run_sync(
                            self.store.seats_with_news, self._last
                        )
                        for seat in seats:
                            for listener in self._seats.get(seat, ()):
                                listener.wake()
                    else:
                        self._last = await anyio.to_thread.run_sync(self.store.newest_id)
                    if since_purge >= purge_every:
                        since_purge = 0.0
                        await anyio.to_thread.run_sync(self.store.purge)
                except Exception:  # the hub must survive anything; browsers re-poll
                    log.exception("web push round failed")
            tg.cancel_scope.cancel()

    @property
    def _pg(self) -> bool:
        """Whether other processes announce their copies (PostgreSQL ``NOTIFY``): then the
        hub polls only as a fallback."""
        return self.store.notifies()
