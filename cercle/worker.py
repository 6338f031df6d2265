"""The ``worker`` process: delivery, receive loops and scheduled jobs, until stopped."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio

from cercle.bootstrap import App
from cercle.providers import purge_twilio_records, signal_receiver

log = logging.getLogger(__name__)

Loop = Callable[[anyio.Event], Awaitable[None]]


def worker_loops(app: App) -> list[Loop]:
    """Every loop this process runs: delivery, each transport's receive loop, and purges."""
    loops: list[Loop] = []
    if app.deliverer is not None:
        loops.append(app.deliverer.run)
    receiver = signal_receiver(app.providers, app.relay)
    if receiver is not None:

        async def receive(stop: anyio.Event) -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(receiver.run)
                await stop.wait()
                receiver.stop()

        loops.append(receive)
    if app.providers.sms is not None:

        async def purge(stop: anyio.Event) -> None:
            await purge_twilio_records(app.providers, app.relay, stop)

        loops.append(purge)
    return loops


async def run_worker(app: App, stop: anyio.Event, extra: list[Loop] | None = None) -> None:
    """Run all loops until ``stop`` is set."""
    loops = [*worker_loops(app), *(extra or [])]
    log.info("worker started: %d loops", len(loops))
    async with anyio.create_task_group() as tg:
        for loop in loops:
            tg.start_soon(loop, stop)
    log.info("worker stopped")
