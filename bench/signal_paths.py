"""Live sessions through each way to Signal: signal-cli's own daemon against signal-cli-rest-api.

Unlike ``bench/live.py`` (which hands messages straight to the core and sends to a generic
provider), everything here goes through the Signal adapter on both sides: a member's message
comes off the receive connection (the daemon's subscription, or the REST websocket), is
stashed in the durable inbox, handed to the core, fanned out, and sent through the adapter's
client to the fake (``tests/fakes/signal_cli_daemon``, ``tests/fakes/signal_server``). Default
settings; one message every 3 s from rotating authors. Latency is from the member's message
reaching the fake's Signal side to the last copy accepted by the fake (polled every 10 ms).

By default the fakes answer at once, so figures are Cercle's own overhead on each path; with
``send_delay`` (``--signal-send-delay 0.15``, as ``bench/live.py``'s 150 ms) each send takes
that long at the fake, as real signal-cli's 50-300 ms do. The fakes run in threads of this
process; the ratio between the paths is what matters.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from bench.support import Database, Row
from cercle.bootstrap import bootstrap
from cercle.providers import signal_receiver
from cercle.settings import Settings
from relay.delivery.sender import pending_count
from relay.messages import Channel, Inbound, Sender
from relay.service.relay import GroupSettings
from relay.storage.crypto import generate_key
from relay.storage.engine import upgrade
from relay.storage.models import Role
from tests.fakes.signal_cli_daemon import run_fake_signal_cli_daemon
from tests.fakes.signal_server import run_fake_signal_server

ORG = "+15145550100"
EVERY = 3.0
WAYS = ("daemon", "rest")


@dataclass
class PathFigures:
    """One session on one way in."""

    way: str
    people: int
    joins_drained: float | None
    took: list[float] = field(default_factory=list)
    undelivered: int = 0


def _member(i: int) -> tuple[str, str]:
    # Fictional numbers only (555-01xx); past 99 members the uuid alone tells them apart at
    # the fake, and the numbers repeat no one's.
    return f"+1514555{101 + i % 99:04d}" if i < 99 else f"+1438555{101 + i % 99:04d}", (
        f"7d1f6a52-0000-4000-8000-{i:012d}"
    )


@contextmanager
def _fake(way: str, send_delay: float) -> Iterator[tuple[Any, dict[str, str]]]:
    if way == "daemon":
        with run_fake_signal_cli_daemon(ORG, receive_mode="manual") as daemon:
            daemon.pair_burst = None  # members here never near Signal's per-pair limit
            daemon.send_delay = send_delay
            yield daemon, {"SIGNAL_CLI": daemon.target}
    else:
        with run_fake_signal_server(ORG) as rest:
            rest.send_delay = send_delay
            yield rest, {"SIGNAL_SERVICE": rest.service}


def _enroll(relay: Any, members: list[tuple[str, str]]) -> None:
    """Everyone enrolled on Signal (the first as facilitator) and agreed."""
    for i, (number, uuid) in enumerate(members):
        role = Role.FACILITATOR if i == 0 else Role.MEMBER
        relay.enroll(number, "live", role, "en", Channel.SIGNAL, uuid=uuid)
        relay.accept(Inbound(Channel.SIGNAL, Sender(number, uuid), f"a:{i}", text="AGREE"))


async def _drained(engine: Any, cap: float) -> float | None:
    """Seconds until nothing waits in the outbox; ``None`` past ``cap``."""
    t0 = time.monotonic()
    while await anyio.to_thread.run_sync(pending_count, engine):
        if time.monotonic() - t0 > cap:
            return None
        await anyio.sleep(0.05)
    return time.monotonic() - t0


def session(
    way: str, people: int, seconds: float, join_cap: float, grace: float, send_delay: float = 0.0
) -> PathFigures:
    """Run one live session of ``people`` through ``way``; see the module docstring."""
    with tempfile.TemporaryDirectory() as tmp, _fake(way, send_delay) as (fake, signal_env):
        env = {
            "DATABASE_URL": f"sqlite:///{Path(tmp) / 'cercle.db'}",
            "CERCLE_DATA_KEY": generate_key(),
            "SIGNAL_NUMBER": ORG,
            **signal_env,
        }
        app = bootstrap(Settings.from_env(environ=env, dotenv_path=Path(tmp) / "none.env"))
        upgrade(app.engine)
        relay = app.relay
        relay.create_group(GroupSettings("live", lang="en", timer_seconds=86400))
        members = [_member(i) for i in range(people)]
        phones = [fake.member(number, uuid) for number, uuid in members]
        receiver = signal_receiver(app.providers, app.relay)
        assert receiver is not None and app.deliverer is not None
        figures = PathFigures(way, people, None)
        started: list[float] = []
        done: dict[int, float] = {}

        def copies(n: int) -> int:
            tag = f"#{n}#"
            return sum(1 for m in list(fake.sent) if tag in m.message)

        async def watch(stop: anyio.Event) -> None:
            while not stop.is_set():
                for n in range(len(started)):
                    if n not in done and copies(n) >= people - 1:
                        done[n] = time.monotonic()
                await anyio.sleep(0.01)

        async def run() -> None:
            stop = anyio.Event()
            assert app.deliverer is not None
            async with anyio.create_task_group() as tg:
                tg.start_soon(app.deliverer.run, stop, 0.5)
                tg.start_soon(receiver.run)
                await anyio.to_thread.run_sync(_enroll, relay, members)
                figures.joins_drained = await _drained(app.engine, join_cap)
                tg.start_soon(watch, stop)
                begin = time.monotonic()
                for n in range(int(seconds / EVERY)):
                    await anyio.sleep_until(begin + n * EVERY)
                    started.append(time.monotonic())
                    phones[n % people].says(f"said #{n}#")
                end = time.monotonic() + grace
                while len(done) < len(started) and time.monotonic() < end:
                    await anyio.sleep(0.05)
                stop.set()
                receiver.stop()
            if app.providers.signal is not None:
                await app.providers.signal.client.aclose()  # on the loop that opened it

        anyio.run(run)
        app.close()
    figures.took = [done[n] - t for n, t in enumerate(started) if n in done]
    figures.undelivered = len(started) - len(figures.took)
    return figures


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def rows(f: PathFigures) -> Row:
    """One table row."""
    label = f"live via signal {f.way}, {f.people} people (1 msg / {EVERY:g} s)"
    if f.took:
        third = max(1, len(f.took) // 3)
        latency = (
            f"p50 {statistics.median(f.took):.2f} s, p95 {_pct(f.took, 0.95):.2f} s, "
            f"worst {max(f.took):.2f} s"
        )
        trend = (
            f"first third {statistics.median(f.took[:third]):.2f} s → last "
            f"{statistics.median(f.took[-third:]):.2f} s"
        )
    else:
        latency, trend = "no message fully delivered", "-"
    if f.undelivered:
        latency += f"; {f.undelivered} not fully delivered"
    joins = "-" if f.joins_drained is None else f"{f.joins_drained:.1f} s"
    return (label, latency, f"{trend}; welcomes drained {joins}")


def signal_paths(db: Database, quick: bool, send_delay: float = 0.0) -> list[Row]:
    """12, 30 and 100 people, each on the daemon and on signal-cli-rest-api (SQLite); each
    send takes ``send_delay`` seconds at the fake."""
    del db  # each session makes its own deployment (settings, SQLite file, fake)
    seconds = 30.0 if quick else 60.0
    return [
        rows(session(way, people, seconds, join_cap=120.0, grace=30.0, send_delay=send_delay))
        for people in (12, 30, 100)
        for way in WAYS
    ]
