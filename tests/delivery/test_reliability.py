"""Reliability with real worker processes against a loopback HTTP provider.

Slow-marked (real processes, a few seconds each) but part of the default run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from relay.clock import SystemClock
from relay.delivery.sender import pending_count
from relay.storage.crypto import DataKeys, generate_key
from relay.storage.engine import make_engine, upgrade
from tests.delivery.fake_provider import FakeProvider, Script
from tests.delivery.seed import World, add_group, address, queue

ROOT = Path(__file__).resolve().parent.parent.parent
TEXTS = [f"m{i:02d}" for i in range(10)]


class Fleet:
    """Worker processes on one database, delivering to one fake provider."""

    def __init__(self, url: str, key: str, provider: FakeProvider, **env: str) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "CERCLE_DATA_KEY": key,
            "FAKE_PROVIDER_URL": provider.url,
            "PYTHONPATH": str(ROOT),
            **env,
        }
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.delivery.worker_main"], env=self.env, cwd=ROOT
        )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


def _world(engine: Engine, key: str) -> World:
    return World.on(engine, clock=SystemClock(), keys=DataKeys.from_text(key))


def _wait_drained(engine: Engine, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pending_count(engine) > 0:
        assert time.monotonic() < deadline, f"{pending_count(engine)} rows still open"
        time.sleep(0.1)


def _by_address(log: list[tuple[str, str]]) -> dict[str, list[str]]:
    got: dict[str, list[str]] = defaultdict(list)
    for to, text in log:
        got[to].append(text)
    return got


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path / 'cercle.db'}"
    engine = make_engine(url)
    upgrade(engine)
    yield url, engine
    engine.dispose()


@pytest.mark.slow
def test_killing_a_worker_mid_fan_out_loses_nothing(sqlite_engine: tuple[str, Engine]) -> None:
    url, engine = sqlite_engine
    key = generate_key()
    world = _world(engine, key)
    ids = add_group(world, "g", 30)
    assert queue(world, ids, TEXTS) == 300
    provider = FakeProvider(Script(latency=0.002)).start()
    fleet = Fleet(url, key, provider, CERCLE_TEST_LEASE="1.0")
    rng = random.Random(os.environ.get("CERCLE_TEST_SEED", "5"))
    kill_points = sorted(rng.sample(range(20, 260), 3))
    try:
        for point in kill_points:
            proc = fleet.spawn()
            while len(provider.log) < point and proc.poll() is None:
                time.sleep(0.002)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        fleet.spawn()
        _wait_drained(engine, 30)
    finally:
        fleet.stop()
        provider.stop()
    got = _by_address(provider.log)
    for member_id in ids:
        texts = got[address(member_id, world)]
        assert sorted(set(texts)) == TEXTS, "a message was lost"
        assert texts == sorted(texts), "out of order"
    duplicates = len(provider.log) - 300
    print(f"\nkilled at deliveries {kill_points}; duplicates after lease expiry: {duplicates}")
    assert duplicates <= len(kill_points) * 20  # at most one unrecorded batch per kill


@pytest.mark.slow
@pytest.mark.postgres
def test_four_workers_on_postgresql_send_everything_exactly_once(pg_url: str) -> None:
    engine = make_engine(pg_url)
    key = generate_key()
    world = _world(engine, key)
    ids = add_group(world, "g", 40)
    assert queue(world, ids, TEXTS) == 400
    provider = FakeProvider(Script(latency=0.002)).start()
    fleet = Fleet(pg_url, key, provider, CERCLE_TEST_LEASE="30", CERCLE_TEST_BATCH="10")
    try:
        for _ in range(4):
            fleet.spawn()
        _wait_drained(engine, 30)
    finally:
        fleet.stop()
        provider.stop()
        engine.dispose()
    assert len(provider.log) == 400, "something was sent twice"
    got = _by_address(provider.log)
    for member_id in ids:
        assert got[address(member_id, world)] == TEXTS


@pytest.mark.slow
def test_a_provider_outage_delays_but_loses_nothing_and_refusals_are_reported(
    sqlite_engine: tuple[str, Engine],
) -> None:
    url, engine = sqlite_engine
    key = generate_key()
    world = _world(engine, key)
    ids = add_group(world, "g", 20, staff=1)
    staff, refused = address(ids[0], world), address(ids[5], world)
    texts = TEXTS[:5]
    queue(world, ids, texts)
    # The bad spell starts with the first request, however long the worker takes to start.
    script = Script(latency=0.001, fail_for=2.5, permanent={refused})
    provider = FakeProvider(script).start()
    fleet = Fleet(url, key, provider, CERCLE_TEST_LEASE="5")
    try:
        fleet.spawn()
        _wait_drained(engine, 30)
    finally:
        fleet.stop()
        provider.stop()
    got = _by_address(provider.log)
    for member_id in ids[1:]:
        where = address(member_id, world)
        assert got[where] == ([] if where == refused else texts)
    reports = [t for t in got[staff] if t.startswith("A message could not reach")]
    assert reports == ["A message could not reach P5: the provider refused it."]
    print(f"\nprovider refusals by status during the outage: {provider.refusals}")
    assert {503, 429, 599} <= set(provider.refusals)
