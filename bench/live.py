"""The "live session" benchmark: a Signal group talking at a real pace, on default settings.

Everyone joins through the relay (enrollment, consent, join notices) and the welcomes drain;
then one message every 3 s from rotating authors for the session's length. The fake provider
(its own process) takes 150 ms per send and enforces Signal's per-pair limit (60, +1/s),
answering 413 like signal-cli when it is exceeded. Latency is from the inbound accepted to
the provider's arrival of its last copy (both ``time.monotonic()``, one machine).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import anyio
from sqlalchemy import update
from sqlmodel import col

from bench.support import Database, Provider, Row
from cercle.bootstrap import delivery_policy
from cercle.settings import Settings
from relay.clock import SystemClock
from relay.delivery.sender import Deliverer, pending_count
from relay.messages import Channel, Inbound, InboundKind, Sender
from relay.service.relay import GroupSettings
from relay.storage.engine import transaction
from relay.storage.models import Outbox, OutboxState, Role
from tests.delivery.http_transport import HttpTransport
from tests.delivery.seed import World

SEND_LATENCY = 0.15  # seconds per send at the fake, as signal-cli's 50-300 ms
SIGNAL_PAIR = (60, 1.0)  # Signal-Server RateLimiters.For.MESSAGES: bucket 60, 1 per second
EVERY = 3.0  # one message every 3 s


@dataclass
class Figures:
    """What one live session measured."""

    people: int
    joins_drained: float | None  # seconds for the welcomes to drain, None if they did not
    joins_left: int  # rows still open when we stopped waiting (cancelled before the session)
    housekeeping: int  # sends during the join phase
    took: list[float]  # per message, seconds from accepted to last copy at the provider
    undelivered: int  # messages whose copies had not all arrived when we stopped waiting
    refusals: int  # 413/429 answers from the provider
    max_in_flight: int


def _number(i: int) -> str:
    return f"+1514555{100 + i:04d}"  # fictional: 555-0100 .. 0199


def _inbound(number: str, key: str, text: str) -> Inbound:
    return Inbound(
        channel=Channel.SIGNAL,
        sender=Sender(address=number),
        dedup_key=key,
        kind=InboundKind.MESSAGE,
        ref=key,
        text=text,
    )


async def _wait_drained(world: World, cap: float) -> float | None:
    t0 = time.monotonic()
    while await anyio.to_thread.run_sync(pending_count, world.engine):
        if time.monotonic() - t0 > cap:
            return None
        await anyio.sleep(0.05)
    return time.monotonic() - t0


def _cancel_open(world: World) -> int:
    with transaction(world.engine) as s:
        n = s.execute(
            update(Outbox)
            .where(col(Outbox.state).in_([OutboxState.PENDING, OutboxState.RETRY]))
            .values(state=OutboxState.CANCELLED)
        ).rowcount
    return int(n)


def session(
    db: Database,
    people: int,
    seconds: float,
    join_cap: float,
    grace: float,
    env: dict[str, str] | None = None,
) -> Figures:
    """Run one live session of ``people`` on the default settings (or with ``env``: settings
    to compare); see the module docstring."""
    provider = Provider(latency=SEND_LATENCY, pair=SIGNAL_PAIR)
    try:
        engine = db.fresh()
        world = World.on(engine, clock=SystemClock())
        policy = delivery_policy(Settings.from_env(env or {}))  # what users run: defaults
        transport = HttpTransport(provider.url, Channel.SIGNAL, timeout=10)
        deliverer = Deliverer(world.relay, {Channel.SIGNAL: transport}, policy)
        relay = world.relay
        relay.create_group(GroupSettings(name="live", lang="en", timer_seconds=86400))
        numbers = [_number(i) for i in range(people)]
        started: list[float] = []
        figures = Figures(people, None, 0, 0, [], 0, 0, 0)

        async def run() -> None:
            stop = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(deliverer.run, stop, 0.5)
                for i, number in enumerate(numbers):
                    role = Role.FACILITATOR if i == 0 else Role.MEMBER
                    await anyio.to_thread.run_sync(
                        relay.enroll, number, "live", role, "en", Channel.SIGNAL
                    )
                for number in numbers:
                    await anyio.to_thread.run_sync(
                        relay.accept, _inbound(number, f"agree:{number}", "I agree")
                    )
                figures.joins_drained = await _wait_drained(world, join_cap)
                if figures.joins_drained is None:
                    figures.joins_left = await anyio.to_thread.run_sync(_cancel_open, world)
                    await _wait_drained(world, 30)  # the rows already in flight
                figures.housekeeping = len((await anyio.to_thread.run_sync(provider.stats))["log"])
                t0 = time.monotonic()
                for n in range(int(seconds / EVERY)):
                    await anyio.sleep_until(t0 + n * EVERY)
                    author = numbers[n % people]
                    started.append(time.monotonic())
                    result = await anyio.to_thread.run_sync(
                        relay.accept, _inbound(author, f"live:{n}", f"said #{n}#")
                    )
                    assert result == "relayed", result
                await _wait_drained(world, grace)
                stop.set()

        anyio.run(run)
        engine.dispose()
        stats = provider.stats()
    finally:
        provider.close()
    last: dict[int, float] = {}
    copies: dict[int, int] = {}
    for (_, text), at in zip(stats["log"], stats["times"], strict=True):
        if "#" in text:
            n = int(text.split("#")[1])
            last[n] = max(last.get(n, at), at)
            copies[n] = copies.get(n, 0) + 1
    figures.took = [last[n] - t0 for n, t0 in enumerate(started) if copies.get(n) == people - 1]
    figures.undelivered = len(started) - len(figures.took)
    figures.refusals = sum(int(v) for k, v in stats["refusals"].items() if k in ("413", "429"))
    figures.max_in_flight = int(stats["max_in_flight"])
    return figures


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def rows(f: Figures, seconds: float, join_cap: float) -> list[Row]:
    """The figures as table rows."""
    label = f"live session, {f.people} people (1 msg / {EVERY:g} s, {seconds:g} s, defaults)"
    joins = (
        f"welcomes drained in {f.joins_drained:.1f} s"
        if f.joins_drained is not None
        else f"welcomes NOT drained after {join_cap:g} s ({f.joins_left} rows cancelled)"
    )
    if f.took:
        third = max(1, len(f.took) // 3)
        first, final = statistics.median(f.took[:third]), statistics.median(f.took[-third:])
        latency = (
            f"p50 {statistics.median(f.took):.2f} s, p95 {_pct(f.took, 0.95):.2f} s, "
            f"worst {max(f.took):.2f} s"
        )
        trend = f"median first third {first:.2f} s → last third {final:.2f} s"
    else:
        latency, trend = "no message fully delivered", "-"
    if f.undelivered:
        latency += f"; {f.undelivered} messages not fully delivered in time"
    return [
        (label, latency, trend),
        (
            f"  … {f.people} people: rate-limit answers, sends in flight",
            f"{f.refusals} rate-limit answers (aim 0); most sends in flight {f.max_in_flight}",
            f"{joins}; {f.housekeeping} housekeeping sends",
        ),
    ]


def live_sessions(db: Database, quick: bool, env: dict[str, str] | None = None) -> list[Row]:
    """12 people and 30 people."""
    seconds = 30.0 if quick else 60.0
    join_cap = 60.0 if quick else 180.0
    out: list[Row] = []
    for people in (12, 30):
        figures = session(db, people, seconds, join_cap, grace=30.0 if quick else 60.0, env=env)
        out += rows(figures, seconds, join_cap)
    if env:
        out.append(
            ("  (settings changed for this run)", ", ".join(f"{k}={v}" for k, v in env.items()), "")
        )
    return out
