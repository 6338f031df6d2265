"""Cercle delivery benchmarks. ``python -m bench [--quick] [--database-url URL]``.

Prints one table: relay overhead and SQL statements per inbound by group size, delivery
throughput against a raw httpx loop, pacing fidelity, inbound→last-recipient latency, and
worker memory with many groups. Everything runs against a loopback fake provider.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
import httpx
from sqlalchemy import update
from sqlmodel import Session

from bench.live import live_sessions
from bench.signal_paths import signal_paths
from bench.support import Database, Provider, Row, count_statements
from cercle.bootstrap import delivery_policy
from cercle.settings import Settings
from relay.clock import FakeClock, SystemClock
from relay.delivery.pacing import Pace
from relay.delivery.sender import Deliverer, DeliveryPolicy, pending_count
from relay.messages import Channel, Inbound, InboundKind, Outgoing, Sender, SendReceipt
from relay.safety.flood import FloodLimit
from relay.storage.models import Inbound as InboundRow
from relay.storage.models import Member, Outbox
from tests.delivery.http_transport import HttpTransport
from tests.delivery.seed import World, add_group, queue

# --- 1. relay overhead -----------------------------------------------------------------------


def relay_overhead(db: Database, size: int, messages: int) -> list[Row]:
    engine = db.fresh()
    world = World.on(engine, clock=FakeClock())
    world.relay.flood_limit = FloodLimit(10**9, 60)
    ids = add_group(world, "g", size)
    senders = [f"loop-{i:05d}" for i in range(min(size, 20))]
    statements = count_statements(engine)
    start_count = statements()
    t0 = time.perf_counter()
    for n in range(messages):
        who = senders[n % len(senders)]
        result = world.relay.accept(
            Inbound(
                channel=Channel.SANDBOX,
                sender=Sender(address=who),
                dedup_key=f"b:{n}",
                kind=InboundKind.MESSAGE,
                ref=str(n),
                text=f"message {n}",
            )
        )
        assert result == "relayed", result
    elapsed = time.perf_counter() - t0
    per = (statements() - start_count) / messages
    rows = messages * (len(ids) - 1)
    engine.dispose()
    return [
        (
            f"relay accept, group of {size}",
            f"{messages / elapsed:,.0f} inbound/s",
            f"{rows / elapsed:,.0f} outbox rows/s",
        ),
        (f"SQL statements per inbound, group of {size}", f"{per:.1f}", "must not grow with size"),
    ]


# --- 2. delivery throughput ------------------------------------------------------------------


async def raw_loop(url: str, n: int, concurrency: int) -> float:
    limiter = anyio.CapacityLimiter(concurrency)
    async with httpx.AsyncClient(
        base_url=url, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)
    ) as client:

        async def one(i: int) -> None:
            async with limiter:
                r = await client.post("/send", json={"to": f"raw-{i % 200}", "text": "x"})
                r.raise_for_status()

        t0 = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
        return n / (time.perf_counter() - t0)


def throughput(db: Database, rows_per_member: int, *, relayed: bool = False) -> list[Row]:
    provider = Provider()
    try:
        engine = db.fresh()
        world = World.on(engine, clock=SystemClock())
        ids = add_group(world, "g", 200)
        total = queue(world, ids, [f"m{i}" for i in range(rows_per_member)])
        if relayed:
            as_relayed_copies(world, ids[0])
        policy = DeliveryPolicy(batch=50, concurrency=16)
        transport = HttpTransport(provider.url)
        deliverer = Deliverer(world.relay, {Channel.SANDBOX: transport}, policy)
        t0 = time.perf_counter()
        anyio.run(deliverer.drain, 10**6)
        ours = total / (time.perf_counter() - t0)
        assert pending_count(engine) == 0
        raw = anyio.run(raw_loop, provider.url, total, 16)
        engine.dispose()
    finally:
        provider.close()
    return [
        (
            "delivery throughput (zero-latency fake, concurrency 16)"
            + (", copies of a member's message (checked before each send)" if relayed else ""),
            f"{ours:,.0f} msg/s vs raw httpx {raw:,.0f} msg/s",
            f"ratio {ours / raw:.2f} (aim ≥ 0.70)",
        )
    ]


def as_relayed_copies(world: World, author_id: int) -> None:
    """Make the queued rows copies of one member's message, as a relay writes them: the
    engine then checks, just before each send, that no facilitator removed it."""
    now = world.clock.now()
    with Session(world.engine) as s:
        author = s.get(Member, author_id)
        assert author is not None
        message = InboundRow(
            dedup_hash="bench",
            member_id=author_id,
            group_id=author.group_id,
            relayed=True,
            received_at=now,
            expires_at=now + timedelta(days=1),
        )
        s.add(message)
        s.flush()
        s.execute(update(Outbox).values(inbound_id=message.id))
        s.commit()


# --- 3. pacing fidelity ----------------------------------------------------------------------


def pacing(db: Database, rate: float, seconds: float) -> list[Row]:
    policy = DeliveryPolicy(paces={"sms": Pace(rate, 1)}, batch=50, concurrency=16)
    texts = int(rate * seconds / 400) + 2
    stats, statements = two_workers(
        db, Provider(rate=rate), Channel.SMS, 400, texts, policy, seconds
    )
    # The rate between the provider's first and last arrival within `seconds` of the first
    # (the workers finish the slots they hold when stopped: those arrive after the window).
    times = sorted(stats["times"])
    window = times[: bisect.bisect_left(times, times[0] + seconds)]
    achieved = (len(window) - 1) / (window[-1] - window[0])
    busiest = max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
    refused = stats["refusals"].get("429", 0)
    return [
        (
            f"pacing SMS at {rate:g} msg/s over {seconds:g} s (2 workers, burst 1)",
            f"{achieved:.2f} msg/s, ratio {achieved / rate:.3f} (aim 0.95-1.0)",
            f"provider 429s caused: {refused} (aim 0); busiest second at the provider "
            f"{busiest}; {statements / len(times):.1f} SQL statements per send",
        )
    ]


def two_workers(
    db: Database,
    provider: Provider,
    channel: Channel,
    members: int,
    texts: int,
    policy: DeliveryPolicy,
    seconds: float,
) -> tuple[dict[str, Any], int]:
    """Queue ``texts`` messages to each of ``members`` on ``channel``, run two workers sharing
    the database's pacing for ``seconds``; the provider's log and the SQL statements run."""
    try:
        engine = db.fresh()
        world = World.on(engine, clock=SystemClock())
        ids = add_group(world, "g", members, channel=str(channel))
        queue(world, ids, [f"m{i}" for i in range(texts)])
        workers = [
            Deliverer(world.relay, {channel: HttpTransport(provider.url, channel)}, policy)
            for _ in range(2)
        ]
        statements = count_statements(engine)

        async def run() -> None:
            stop = anyio.Event()
            async with anyio.create_task_group() as tg:
                for w in workers:
                    tg.start_soon(w.run, stop, 0.5)
                await anyio.sleep(seconds)
                stop.set()

        anyio.run(run)
        stats = provider.stats()
        engine.dispose()
    finally:
        provider.close()
    return stats, statements()


def pacing_per_recipient(db: Database, seconds: float, members: int = 5) -> list[Row]:
    """Signal on the default settings, two workers, a deep queue for each of ``members``:
    each recipient must get the burst, then exactly the per-member rate, and the fake
    (enforcing Signal's 60, +1/s per pair) must refuse nothing."""
    settings = Settings.from_env({})
    burst, rate = settings.signal_member_burst, settings.signal_member_rate
    texts = burst + int(rate * seconds) + 10
    stats, statements = two_workers(
        db,
        Provider(pair=(60, 1.0)),
        Channel.SIGNAL,
        members,
        texts,
        delivery_policy(settings),
        seconds,
    )
    by_to: dict[str, list[float]] = {}
    for (to, _), at in zip(stats["log"], stats["times"], strict=True):
        by_to.setdefault(to, []).append(at)
    # Sends to each member over what their bucket allows from their first send to their last:
    # the burst, plus the rate for the time between (1.0: every token used, none too many).
    ratios = [len(t) / (burst + rate * (max(t) - min(t))) for t in by_to.values()]
    refused = sum(int(v) for k, v in stats["refusals"].items() if k in ("413", "429"))
    sends = len(stats["times"])
    return [
        (
            f"pacing per Signal member, defaults ({burst} at once, then {rate:g}/s), "
            f"{members} members, {seconds:g} s, 2 workers",
            f"sends per member / what the member's bucket allows: min {min(ratios):.3f}, "
            f"max {max(ratios):.3f} (aim 0.95-1.0)",
            f"413/429 caused: {refused} (aim 0); {statements / sends:.1f} SQL statements per send",
        )
    ]


# --- 4. latency ------------------------------------------------------------------------------


async def raw_fan_out(url: str, recipients: int, samples: int) -> list[float]:
    """Seconds for a raw httpx loop to send one message to each of ``recipients`` at once,
    ``samples`` times: the floor that the fake provider and this machine allow."""
    took: list[float] = []
    async with httpx.AsyncClient(
        base_url=url,
        timeout=5,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    ) as client:

        async def one(i: int) -> None:
            r = await client.post("/send", json={"to": f"raw-{i}", "text": "hi"})
            r.raise_for_status()

        for _ in range(samples):
            t0 = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for i in range(recipients):
                    tg.start_soon(one, i)
            took.append(time.perf_counter() - t0)
    return took


def _p50_p99(took: list[float]) -> str:
    took = sorted(took)
    p50 = statistics.median(took) * 1000
    p99 = took[min(len(took) - 1, int(len(took) * 0.99))] * 1000
    return f"p50 {p50:.0f} ms, p99 {p99:.0f} ms"


def latency(db: Database, samples: int) -> list[Row]:
    provider = Provider(latency=0.05)
    try:
        engine = db.fresh()
        world = World.on(engine, clock=SystemClock())
        world.relay.flood_limit = FloodLimit(10**9, 60)
        add_group(world, "g", 50)
        transport = HttpTransport(provider.url, timeout=5)
        deliverer = Deliverer(
            world.relay, {Channel.SANDBOX: transport}, DeliveryPolicy(batch=50, concurrency=50)
        )
        started: list[float] = []

        async def run() -> None:
            stop = anyio.Event()
            async with anyio.create_task_group() as tg:
                # The default idle poll: the commit of the fan-out wakes the worker (same
                # process, as with `cercle run` or the Signal receive loop in `cercle worker`).
                tg.start_soon(deliverer.run, stop, 0.5)
                for n in range(samples):
                    started.append(time.monotonic())
                    await anyio.to_thread.run_sync(
                        world.relay.accept,
                        Inbound(
                            channel=Channel.SANDBOX,
                            sender=Sender(address="loop-00001"),
                            dedup_key=f"l:{n}",
                            kind=InboundKind.MESSAGE,
                            ref=str(n),
                            text=f"hi #{n}#",
                        ),
                    )
                    # One message at a time: the next once this one is all recorded as sent.
                    while await anyio.to_thread.run_sync(pending_count, engine):
                        await anyio.sleep(0.01)
                stop.set()

        anyio.run(run)
        engine.dispose()
        stats = provider.stats()
        # When the provider received each message's last copy (the same monotonic clock).
        last: dict[int, float] = {}
        for (_, text), at in zip(stats["log"], stats["times"], strict=True):
            n = int(text.split("#")[1])
            last[n] = max(last.get(n, at), at)
        took = [last[n] - t0 for n, t0 in enumerate(started)]
        floor = anyio.run(raw_fan_out, provider.url, 49, samples)
    finally:
        provider.close()
    return [
        (
            "latency accepted → last of 49 recipients sent (provider 50 ms)",
            _p50_p99(took),
            f"{samples} messages, worker idle poll 0.5 s (woken by the commit)",
        ),
        (
            "  floor: raw httpx, 49 sends at once to the same fake",
            _p50_p99(floor),
            "what the fake and this machine allow; no database",
        ),
    ]


# --- 5. memory -------------------------------------------------------------------------------


class NullTransport:
    """Discards everything (so the transport holds no memory)."""

    channel = Channel.SANDBOX
    supports_timers = False
    supports_media = False

    async def send(self, message: Outgoing) -> SendReceipt:
        del message
        return SendReceipt(ref="0")

    async def set_timer(self, address: str, seconds: int) -> None:
        del address, seconds


def memory(db: Database, groups: int, size: int) -> list[Row]:
    engine = db.fresh()
    world = World.on(engine, clock=SystemClock())
    for g in range(groups):
        ids = add_group(world, f"g{g}", size, start=g * size)
        queue(world, ids, ["hello"])
    gc.collect()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    deliverer = Deliverer(
        world.relay,
        {Channel.SANDBOX: NullTransport()},  # type: ignore[dict-item]
        DeliveryPolicy(lease=timedelta(minutes=5)),
    )
    t0 = time.perf_counter()
    sent = anyio.run(deliverer.drain, 10**6)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine.dispose()
    return [
        (
            f"worker memory, {groups} groups × {size} ({sent:,} rows)",
            f"peak Python allocations {peak / 2**20:.1f} MiB",
            f"max RSS growth {(rss1 - rss0) / 1024:.1f} MiB; {sent / elapsed:,.0f} rows/s",
        )
    ]


def _overhead(db: Database, quick: bool) -> list[Row]:
    return [r for size in (5, 50, 500) for r in relay_overhead(db, size, 100 if quick else 300)]


_PARTS: dict[str, Callable[[Database, bool], list[Row]]] = {
    "overhead": _overhead,
    "throughput": lambda db, quick: throughput(db, 5 if quick else 10),
    "throughput-relayed": lambda db, quick: throughput(db, 5 if quick else 10, relayed=True),
    "pacing": lambda db, quick: pacing(db, 20.0, 10.0 if quick else 60.0),
    "member-pacing": lambda db, quick: pacing_per_recipient(db, 10.0 if quick else 60.0),
    "latency": lambda db, quick: latency(db, 20 if quick else 50),
    "memory": lambda db, quick: memory(db, 200 if quick else 1000, 20),
    "live": live_sessions,
    "signal-paths": signal_paths,
}


def main() -> None:
    """Run every benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs (pacing 10 s)")
    parser.add_argument("--database-url", help="PostgreSQL admin URL (default: SQLite files)")
    parser.add_argument("--only", choices=sorted(_PARTS), action="append", help="run only these")
    parser.add_argument(
        "--signal-in-flight", help="live sessions with this CERCLE_SIGNAL_IN_FLIGHT, to compare"
    )
    parser.add_argument(
        "--signal-send-delay",
        type=float,
        default=0.0,
        help="signal-paths: seconds each send takes at the fakes (e.g. 0.15, as signal-cli)",
    )
    args = parser.parse_args()
    if args.signal_send_delay:
        delay = args.signal_send_delay
        _PARTS["signal-paths"] = lambda db, quick: signal_paths(db, quick, delay)
    if args.signal_in_flight:
        env = {"CERCLE_SIGNAL_IN_FLIGHT": args.signal_in_flight}
        _PARTS["live"] = lambda db, quick: live_sessions(db, quick, env)
    quick = args.quick
    db = Database(args.database_url)
    rows: list[Row] = []
    try:
        for name in args.only or list(_PARTS):
            rows += _PARTS[name](db, quick)
    finally:
        db.close()
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    line = "+-" + "-+-".join("-" * w for w in width) + "-+"
    print(line)
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, width, strict=True)) + " |")
    print(line)


if __name__ == "__main__":
    main()
