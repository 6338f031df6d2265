"""The wake-up bell: the delivery loop sleeps between rounds, and new outbox rows (or a batch
finishing) ring it so the loop claims at once instead of at the next poll."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import anyio


class Bell:
    """Wakes the delivery loop early; rung from any thread (e.g. the thread that committed
    a fan-out), heard in the loop's thread. Needs the asyncio backend to be heard across
    threads; on another backend only rings from the loop's own thread are heard."""

    def __init__(self) -> None:
        self.rung = False
        self._event = anyio.Event()
        self._thread = threading.get_ident()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    def ring(self) -> None:
        """Wake the loop (safe from any thread; never blocks)."""
        if threading.get_ident() == self._thread:
            self._ring()
        elif self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                self._loop.call_soon_threadsafe(self._ring)

    def _ring(self) -> None:
        self.rung = True
        self._event.set()

    async def doze(self, seconds: float, stop: anyio.Event) -> None:
        """Sleep up to ``seconds``, less if rung (since ``rung`` was cleared) or
        stopped."""
        if self.rung:
            return
        self._event = anyio.Event()
        with anyio.move_on_after(seconds):
            async with anyio.create_task_group() as tg:

                async def until(event: anyio.Event) -> None:
                    await event.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(until, stop)
                tg.start_soon(until, self._event)
