"""Shared per-channel pacing: the bucket is in the database, so workers share one rate."""

from __future__ import annotations

import threading

import anyio
from sqlalchemy import Engine

from bots.sandbox.transport import LoopbackTransport
from relay.clock import FakeClock, SystemClock
from relay.delivery import Deliverer, DeliveryPolicy
from relay.errors import RateLimitedError
from relay.messages import Channel
from relay.pacing import Pace, Pacer
from tests.delivery.seed import World, add_group, address, queue, states

SMS = {"sms": Pace(rate=2.0, burst=3)}


def test_a_full_bucket_gives_its_burst_then_the_rate(engine: Engine) -> None:
    clock = FakeClock()
    pacer = Pacer(engine, clock, SMS)
    assert pacer.take("sms", 10).tokens == 3
    empty = pacer.take("sms", 10)
    assert empty.tokens == 0
    assert 0.4 < empty.wait <= 0.5
    clock.advance(seconds=1)
    assert pacer.take("sms", 10).tokens == 2


def test_workers_share_one_bucket(engine: Engine) -> None:
    clock = FakeClock()
    workers = [Pacer(engine, clock, SMS) for _ in range(3)]
    total = 0
    for _ in range(10):  # ten seconds, every worker asking every second
        clock.advance(seconds=1)
        total += sum(w.take("sms", 50).tokens for w in workers)
    # The bucket is already full at the first ask, then refills 2 per second for 9 seconds.
    assert total == 3 + 2 * 9


def test_concurrent_takers_never_exceed_the_bucket(engine: Engine) -> None:
    pacer_clock = SystemClock()
    pace = {"sms": Pace(rate=0.001, burst=20)}  # effectively no refill during the test
    got: list[int] = []
    lock = threading.Lock()

    def grab() -> None:
        pacer = Pacer(engine, pacer_clock, pace)
        for _ in range(5):
            n = pacer.take("sms", 3).tokens
            with lock:
                got.append(n)

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(got) == 20


def test_unused_tokens_go_back(engine: Engine) -> None:
    pacer = Pacer(engine, FakeClock(), SMS)
    assert pacer.take("sms", 3).tokens == 3
    pacer.give_back("sms", 2)
    assert pacer.take("sms", 3).tokens == 2


def test_a_rate_limit_stops_every_worker_for_the_time_asked(engine: Engine) -> None:
    clock = FakeClock()
    a, b = Pacer(engine, clock, SMS), Pacer(engine, clock, SMS)
    a.slow_down("sms", 30)
    refused = b.take("sms", 5)
    assert refused.tokens == 0
    assert refused.wait == 30
    clock.advance(seconds=31)
    assert b.take("sms", 5).tokens == 2  # refilling started when the block ended


def test_delivery_is_paced_and_a_429_slows_the_channel(engine: Engine) -> None:
    world = World.on(engine)
    clock = world.clock
    assert isinstance(clock, FakeClock)
    ids = add_group(world, "g", 6, channel="sms")
    queue(world, ids, ["hello"])
    transport = LoopbackTransport(channel_name=Channel.SMS)
    deliverer = Deliverer(
        world.relay,
        {Channel.SMS: transport},
        DeliveryPolicy(paces=SMS, base_backoff=1, max_backoff=1),
    )
    anyio.run(deliverer.drain)
    assert states(world) == {"sent": 3, "pending": 3}  # the burst, then out of tokens
    assert deliverer.wait_hint is not None

    transport.fail_next(address(ids[3], world), RateLimitedError(retry_after=20))
    clock.advance(seconds=1)
    anyio.run(deliverer.drain)  # two tokens: one row rate-limited, one sent
    assert states(world) == {"sent": 4, "retry": 1, "pending": 1}
    clock.advance(seconds=10)
    anyio.run(deliverer.drain)
    assert states(world)["sent"] == 4, "the channel must rest for the provider's 20 s"
    clock.advance(seconds=15)
    anyio.run(deliverer.drain)
    assert states(world) == {"sent": 6}
