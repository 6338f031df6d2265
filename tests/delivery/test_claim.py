"""Outbox claims on SQLite and PostgreSQL: disjoint, head-of-line, lease expiry, cancelled."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta

import anyio
from sqlalchemy import Engine, func, select, update
from sqlmodel import col

from bots.sandbox.transport import LoopbackTransport
from relay.clock import FakeClock
from relay.delivery.lease import owner_id
from relay.delivery.sender import Deliverer, DeliveryPolicy, Job
from relay.messages import Channel, SendReceipt
from relay.storage.models import Outbox, OutboxState
from tests.delivery.seed import World, add_group, address, queue, states


def _deliverer(world: World, transport: LoopbackTransport, **policy: object) -> Deliverer:
    return Deliverer(world.relay, {Channel.SANDBOX: transport}, DeliveryPolicy(**policy))  # type: ignore[arg-type]


def test_only_the_head_row_of_each_recipient_is_claimed(engine: Engine) -> None:
    world = World.on(engine)
    ids = add_group(world, "g", 3)
    queue(world, ids, ["one", "two", "three"])
    jobs = _deliverer(world, LoopbackTransport()).claim()
    assert sorted(j.recipient_id for j in jobs) == ids
    assert {j.message.text for j in jobs if j.message} == {"one"}


def test_two_workers_never_claim_the_same_row(engine: Engine) -> None:
    world = World.on(engine)
    ids = add_group(world, "g", 40)
    queue(world, ids, ["a", "b"])
    won: list[list[Job]] = [[], [], [], []]
    workers = [_deliverer(world, LoopbackTransport(), batch=15) for _ in won]
    barrier = threading.Barrier(len(workers))

    def grab(i: int) -> None:
        barrier.wait()
        won[i] = workers[i].claim()

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = [j.row_id for jobs in won for j in jobs]
    assert len(rows) == len(set(rows))
    recipients = [j.recipient_id for jobs in won for j in jobs]
    assert len(recipients) == len(set(recipients)), "two rows of one recipient in flight"


def test_an_expired_lease_is_claimed_again_and_the_late_result_is_ignored(engine: Engine) -> None:
    world = World.on(engine)
    clock = world.clock
    assert isinstance(clock, FakeClock)
    ids = add_group(world, "g", 1)
    queue(world, ids, ["hello"])
    dead, alive = (
        _deliverer(world, LoopbackTransport(), lease=timedelta(seconds=30)) for _ in range(2)
    )
    [job] = dead.claim()
    assert alive.claim() == []  # still leased
    clock.advance(seconds=31)
    [again] = alive.claim()
    assert again.row_id == job.row_id
    dead._sent(job, SendReceipt(ref="late"))  # the first worker wakes up: it no longer owns it
    alive._sent(again, SendReceipt(ref="mine"))
    assert states(world) == {OutboxState.SENT: 1}


def test_rows_for_one_recipient_go_out_in_order_with_several_workers(engine: Engine) -> None:
    world = World.on(engine)
    ids = add_group(world, "g", 12)
    texts = [f"m{i}" for i in range(6)]
    queue(world, ids, texts)
    transport = LoopbackTransport()
    workers = [_deliverer(world, transport, batch=5, concurrency=4) for _ in range(3)]

    async def go() -> None:
        async with anyio.create_task_group() as tg:
            for w in workers:
                tg.start_soon(w.drain)

    anyio.run(go)
    for member_id in ids:
        got = [d.text for d in transport.inbox[address(member_id, world)]]
        assert got == texts
    assert states(world) == {OutboxState.SENT: len(ids) * len(texts)}


def test_cancelled_rows_are_never_sent(engine: Engine) -> None:
    world = World.on(engine)
    ids = add_group(world, "g", 2)
    queue(world, ids, ["first", "second"])
    with engine.begin() as conn:
        conn.execute(
            update(Outbox)
            .where(col(Outbox.recipient_id) == ids[0])
            .values(state=OutboxState.CANCELLED)
        )
    transport = LoopbackTransport()
    anyio.run(_deliverer(world, transport).drain)
    assert address(ids[0], world) not in transport.inbox
    assert [d.text for d in transport.inbox[address(ids[1], world)]] == ["first", "second"]


def test_a_held_row_blocks_only_its_recipient(engine: Engine) -> None:
    world = World.on(engine)
    ids = add_group(world, "g", 2)
    queue(world, ids, ["first", "second"])
    with engine.begin() as conn:
        first = conn.execute(
            select(func.min(col(Outbox.id))).where(col(Outbox.recipient_id) == ids[0])
        ).scalar_one()
        conn.execute(update(Outbox).where(col(Outbox.id) == first).values(state=OutboxState.HELD))
    transport = LoopbackTransport()
    anyio.run(_deliverer(world, transport).drain)
    assert address(ids[0], world) not in transport.inbox  # "second" waits behind the held one
    assert len(transport.inbox[address(ids[1], world)]) == 2


def test_a_stopping_worker_releases_what_it_claimed_so_another_takes_it_at_once(
    engine: Engine,
) -> None:
    world = World.on(engine)
    ids = add_group(world, "g", 3)
    queue(world, ids, ["bye"])
    stopping = _deliverer(world, LoopbackTransport())
    assert len(stopping.claim()) == 3
    other = _deliverer(world, LoopbackTransport())
    assert other.claim() == []  # held under the stopping worker's lease
    assert stopping.release_held() == 3
    # No wait for the lease to run out (the clock has not moved).
    assert sorted(j.recipient_id for j in other.claim()) == ids
    assert stopping.release_held() == 0  # nothing of its own left to give back


def test_a_restart_takes_back_at_once_what_a_killed_worker_on_this_host_held(
    engine: Engine,
) -> None:
    world = World.on(engine)
    ids = add_group(world, "g", 3)
    queue(world, ids, ["bye"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _, space, _, token = owner_id().split(":")
    killed = Deliverer(
        world.relay,
        {Channel.SANDBOX: LoopbackTransport()},
        worker_id=f"p:{space}:{gone.pid}:{token}",
    )
    assert len(killed.claim()) == 3  # then the process was killed, its rows still leased
    restarted = _deliverer(world, LoopbackTransport())
    assert restarted.claim() == []
    assert restarted.free_rows_of_dead_workers() == 3  # no wait for the lease (clock unmoved)
    assert sorted(j.recipient_id for j in restarted.claim()) == ids


def test_rows_of_a_live_worker_or_another_host_keep_their_lease(engine: Engine) -> None:
    world = World.on(engine)
    ids = add_group(world, "g", 2)
    queue(world, ids, ["hi"])
    elsewhere = Deliverer(
        world.relay, {Channel.SANDBOX: LoopbackTransport()}, worker_id="p:0123456789ab:1:feed"
    )
    assert len(elsewhere.claim()) == 2
    alive = _deliverer(world, LoopbackTransport())  # this process: alive
    assert alive.free_rows_of_dead_workers() == 0
    assert alive.claim() == []
