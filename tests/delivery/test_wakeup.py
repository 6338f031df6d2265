"""The delivery loop starts as soon as outbox rows commit, not at its next poll."""

from __future__ import annotations

import time

import anyio
import pytest
from sqlalchemy import Engine

from bots.sandbox.transport import LoopbackTransport
from relay.clock import SystemClock
from relay.delivery.sender import Deliverer
from relay.messages import Channel
from relay.storage.engine import make_engine
from tests.delivery.seed import World, add_group, queue

IDLE = 30.0  # a poll that would never come within the test


def _delivered_within(world: World, deliverer: Deliverer, writer: World) -> float:
    """Seconds from queueing (through ``writer``) until the loop delivered everything."""
    ids = add_group(writer, "g", 5)
    transport = deliverer.transports[Channel.SANDBOX]
    assert isinstance(transport, LoopbackTransport)
    took = 0.0

    async def go() -> None:
        nonlocal took
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(deliverer.run, stop, IDLE)
            await anyio.sleep(0.3)  # the loop has found nothing and dozes
            t0 = time.monotonic()
            await anyio.to_thread.run_sync(queue, writer, ids, ["hello"])
            with anyio.fail_after(5):
                while sum(len(v) for v in transport.inbox.values()) < len(ids):
                    await anyio.sleep(0.005)
            took = time.monotonic() - t0
            stop.set()

    anyio.run(go)
    return took


def test_rows_committed_in_this_process_wake_the_loop(engine: Engine) -> None:
    world = World.on(engine, clock=SystemClock())
    deliverer = Deliverer(world.relay, {Channel.SANDBOX: LoopbackTransport()})
    assert _delivered_within(world, deliverer, world) < 1.0


@pytest.mark.postgres
def test_on_postgresql_rows_committed_elsewhere_wake_the_loop(pg_url: str) -> None:
    worker_engine, web_engine = make_engine(pg_url), make_engine(pg_url)
    try:
        world = World.on(worker_engine, clock=SystemClock())
        web = World.on(web_engine, clock=SystemClock(), keys=world.keys)  # another "process"
        deliverer = Deliverer(world.relay, {Channel.SANDBOX: LoopbackTransport()})
        assert _delivered_within(world, deliverer, web) < 1.0
    finally:
        worker_engine.dispose()
        web_engine.dispose()
