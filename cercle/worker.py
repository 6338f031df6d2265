"""The ``worker`` process: delivery, receive loops and scheduled jobs, until stopped."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio

from cercle.bootstrap import App

log = logging.getLogger(__name__)

Loop = Callable[[anyio.Event], Awaitable[None]]


def worker_loops(app: App) -> list[Loop]:
    """Every loop this process runs: delivery, plus each transport's receive loop."""
    loops: list[Loop] = []
    if app.deliverer is not None:
        loops.append(app.deliverer.run)
    return loops


async def run_worker(app: App, stop: anyio.Event, extra: list[Loop] | None = None) -> None:
    """Run all loops until ``stop`` is set."""
    loops = [*worker_loops(app), *(extra or [])]
    log.info("worker started: %d loops", len(loops))
    async with anyio.create_task_group() as tg:
        for loop in loops:
            tg.start_soon(loop, stop)
    log.info("worker stopped")
