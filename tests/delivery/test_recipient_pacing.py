"""Signal paced per member (Signal's own rule: a burst, then one a second per recipient), shared
by every worker through the database; a rate limit still slows the whole number."""

from __future__ import annotations

import time

import anyio
import pytest
from sqlalchemy import Engine

from bots.sandbox.transport import LoopbackTransport
from cercle.bootstrap import delivery_policy
from cercle.settings import Settings
from relay.clock import FakeClock, SystemClock
from relay.delivery.pacing import Pace
from relay.delivery.sender import Deliverer, DeliveryPolicy
from relay.messages import Channel
from relay.storage.crypto import generate_key
from relay.storage.engine import make_engine
from tests.delivery.fake_provider import FakeProvider, Script
from tests.delivery.fleet import Fleet, by_address, wait_drained, world_of
from tests.delivery.seed import World, add_group, address, queue, states

# Each recipient: a burst of 2, then one a second; the channel itself is not the limit.
PER_MEMBER = DeliveryPolicy(
    paces={"signal": Pace(1000.0, 1000)}, recipient_paces={"signal": Pace(1.0, 2)}
)


def _signal(world: World, policy: DeliveryPolicy) -> tuple[Deliverer, LoopbackTransport]:
    transport = LoopbackTransport(channel_name=Channel.SIGNAL)
    return Deliverer(world.relay, {Channel.SIGNAL: transport}, policy), transport


def test_each_member_gets_the_burst_then_one_a_second(engine: Engine) -> None:
    world = World.on(engine)
    clock = world.clock
    assert isinstance(clock, FakeClock)
    ids = add_group(world, "g", 3, channel="signal")
    queue(world, ids, ["a", "b", "c", "d"])
    deliverer, transport = _signal(world, PER_MEMBER)

    anyio.run(deliverer.drain)
    assert {len(transport.inbox[address(i, world)]) for i in ids} == {2}, "the burst each"
    clock.advance(seconds=1)
    anyio.run(deliverer.drain)
    assert {len(transport.inbox[address(i, world)]) for i in ids} == {3}, "then one a second"
    clock.advance(seconds=1)
    anyio.run(deliverer.drain)
    assert [d.text for d in transport.inbox[address(ids[0], world)]] == ["a", "b", "c", "d"]


def test_a_member_at_their_limit_does_not_hold_back_the_others(engine: Engine) -> None:
    world = World.on(engine)
    ids = add_group(world, "g", 3, channel="signal")
    busy, others = ids[0], ids[1:]
    queue(world, [busy], ["private 1", "private 2", "private 3"])  # e.g. replies to commands
    queue(world, ids, ["to everyone"])
    deliverer, transport = _signal(world, PER_MEMBER)

    anyio.run(deliverer.drain)
    assert [d.text for d in transport.inbox[address(busy, world)]] == ["private 1", "private 2"]
    for other in others:
        assert [d.text for d in transport.inbox[address(other, world)]] == ["to everyone"]


def test_default_settings_send_a_message_to_fifty_members_at_once(engine: Engine) -> None:
    """Someone who sets only SIGNAL_SERVICE and SIGNAL_NUMBER: nobody in a group of 50 waits
    for a slot, and the number may send on to the next message at once."""
    world = World.on(engine)
    only = {"SIGNAL_SERVICE": "localhost:8080", "SIGNAL_NUMBER": "+15145550100"}
    settings = Settings.from_env(only)
    ids = add_group(world, "g", 49, channel="signal")
    queue(world, ids, ["hello"])
    deliverer, _ = _signal(world, delivery_policy(settings))

    jobs = deliverer.claim_paced()
    assert len(jobs) == 49
    assert {j.not_before for j in jobs} == {world.clock.now()}, "no one waits for a slot"
    assert deliverer.policy.channel_concurrency == {Channel.SIGNAL: 8}


def test_a_mixed_group_with_sms_saturated_does_not_slow_signal_members(engine: Engine) -> None:
    """Real time, the real delivery loop on the default settings: SMS at one a second holds
    a long queue while every Signal member has every message within a second."""
    world = World.on(engine, clock=SystemClock())
    on_signal = add_group(world, "g", 6, channel="signal")
    on_sms = add_group(world, "h", 6, channel="sms", start=100)
    texts = ["one", "two", "three"]
    queue(world, on_signal + on_sms, texts)
    signal_phone = LoopbackTransport(channel_name=Channel.SIGNAL)
    sms_phone = LoopbackTransport(channel_name=Channel.SMS)
    policy = delivery_policy(Settings.from_env({}))
    deliverer = Deliverer(
        world.relay, {Channel.SIGNAL: signal_phone, Channel.SMS: sms_phone}, policy
    )

    async def run_for(seconds: float) -> None:
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(deliverer.run, stop, 0.5)
            await anyio.sleep(seconds)
            stop.set()

    anyio.run(run_for, 1.0)
    for member in on_signal:
        assert [d.text for d in signal_phone.inbox[address(member, world)]] == texts
    sms_sent = sum(len(v) for v in sms_phone.inbox.values())
    assert sms_sent <= 3, "SMS keeps to its one a second"
    assert states(world)["pending"] >= 18 - sms_sent - 1


def _fleet_run(
    url: str, provider: FakeProvider, workers: int, members: int, **env: str
) -> tuple[World, list[int]]:
    """Queue 8 messages to each member of a new group, let ``workers`` processes send them."""
    engine = make_engine(url)
    key = generate_key()
    world = world_of(engine, key)
    ids = add_group(world, "g", members)
    queue(world, ids, [f"m{i:02d}" for i in range(8)])
    fleet = Fleet(url, key, provider, CERCLE_TEST_LEASE="30", CERCLE_TEST_BATCH="10", **env)
    try:
        for _ in range(workers):
            fleet.spawn()
        wait_drained(engine, 30)
    finally:
        fleet.stop()
    return world, ids


@pytest.mark.slow
def test_workers_share_each_members_pace_and_signal_never_refuses(db_url: str) -> None:
    """Two worker processes pace each member at a burst of 3, then 4 a second; the fake
    enforces a burst of 4 and 4 a second per recipient, as Signal's server does per pair, and
    answers 413 beyond it (one token in hand for the network's jitter, as the default keeps
    10 of Signal's 60). Nothing is refused, lost, repeated or reordered."""
    provider = FakeProvider(Script(latency=0.01, pair_burst=4, pair_rate=4.0)).start()
    try:
        t0 = time.monotonic()
        world, ids = _fleet_run(db_url, provider, workers=2, members=6, CERCLE_TEST_PAIR="3,4")
        took = time.monotonic() - t0
    finally:
        provider.stop()
    assert provider.refusals == {}, "no member received more than their pace allows"
    got = by_address(provider.log)
    for member in ids:
        assert got[address(member, world)] == [f"m{i:02d}" for i in range(8)]
    assert took > (8 - 3) / 4.0, "the pace was kept: 3 at once, then 4 a second"


@pytest.mark.slow
def test_a_413_slows_the_whole_number_then_it_recovers_and_nothing_is_lost(
    db_url: str,
) -> None:
    """signal-cli answers 413 to every send for half a second: the worker stops the whole
    number at the first answer (only the sends already in flight get one), rests, and then
    sends everything, in order."""
    provider = FakeProvider(Script(latency=0.01, throttle_for=0.5)).start()
    try:
        world, ids = _fleet_run(
            db_url,
            provider,
            workers=1,
            members=10,
            CERCLE_TEST_PAUSE="1.0",
            CERCLE_TEST_PAIR="60,1",
        )
    finally:
        provider.stop()
    got = by_address(provider.log)
    for member in ids:
        assert got[address(member, world)] == [f"m{i:02d}" for i in range(8)]
    assert 1 <= provider.refusals.get(413, 0) <= 8, "one answer per send in flight, no more"
    assert provider.max_in_flight <= 8
