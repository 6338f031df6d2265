"""Singleton leases on SQLite and PostgreSQL: one holder at a time, take-over on expiry."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import anyio
from sqlalchemy import Engine, update
from sqlmodel import col

from relay.delivery.lease import (
    hold_lease,
    lease_name,
    owner_id,
    reclaim_from_dead,
    renew,
    try_acquire,
)
from relay.storage.crypto import DataKeys
from relay.storage.models import SingletonLease

T0 = datetime(2026, 1, 6, 19, 0, tzinfo=UTC)


def test_a_held_lease_is_refused_to_others_until_it_expires(engine: Engine) -> None:
    assert try_acquire(engine, "signal:x", "a", 30, T0)
    assert not try_acquire(engine, "signal:x", "b", 30, T0 + timedelta(seconds=29))
    assert try_acquire(engine, "signal:x", "b", 30, T0 + timedelta(seconds=31))
    assert not renew(engine, "signal:x", "a", 30, T0 + timedelta(seconds=32))


def test_the_holder_can_renew_and_others_stay_out(engine: Engine) -> None:
    assert try_acquire(engine, "signal:x", "a", 30, T0)
    assert renew(engine, "signal:x", "a", 30, T0 + timedelta(seconds=20))
    assert not try_acquire(engine, "signal:x", "b", 30, T0 + timedelta(seconds=40))


def test_the_lease_name_does_not_contain_the_number() -> None:
    keys = DataKeys.from_master(os.urandom(32))
    name = lease_name(keys, "signal", "+15145550142")
    assert name.startswith("signal:")
    assert "5550142" not in name


def test_two_contenders_never_hold_the_lease_at_the_same_time(engine: Engine) -> None:
    spans: list[tuple[str, float, float]] = []

    async def contender(owner: str) -> None:
        for _ in range(3):
            async with hold_lease(engine, "signal:x", owner, ttl=0.4, poll=0.02):
                start = time.monotonic()
                await anyio.sleep(0.15)
                spans.append((owner, start, time.monotonic()))

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for owner in ("a", "b"):
                tg.start_soon(contender, owner)

    anyio.run(main)
    spans.sort(key=lambda s: s[1])
    assert len(spans) == 6
    for (_, _, end), (_, start, _) in itertools.pairwise(spans):
        assert start >= end, "two holders overlapped"


def test_a_holder_that_loses_its_lease_is_stopped(engine: Engine) -> None:
    stopped_early = False

    async def main() -> None:
        nonlocal stopped_early
        async with hold_lease(engine, "signal:x", "a", ttl=0.4) as lease:
            # Another process takes it (as if ours had expired while we were frozen).
            with engine.begin() as conn:
                conn.execute(
                    update(SingletonLease)
                    .where(col(SingletonLease.name) == "signal:x")
                    .values(owner="b")
                )
            await anyio.sleep(2)
        stopped_early = lease.lost

    started = time.monotonic()
    anyio.run(main)
    assert stopped_early
    assert time.monotonic() - started < 1.0
    assert try_acquire(engine, "signal:x", "c", 30, datetime.now(UTC)) is False  # b holds it


def _owner_with_pid(pid: int) -> str:
    _, host, _, token = owner_id().split(":")
    return f"p:{host}:{pid}:{token}"


def test_a_holder_killed_on_this_host_is_taken_over_at_once(engine: Engine) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert try_acquire(engine, "signal:x", _owner_with_pid(gone.pid), 30, T0)
    # Its successor (a restart) does not wait the 30 s of the lease.
    assert reclaim_from_dead(engine, "signal:x")
    assert try_acquire(engine, "signal:x", owner_id(), 30, T0 + timedelta(seconds=1))


def test_a_live_holder_or_one_on_another_host_keeps_its_lease(engine: Engine) -> None:
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert try_acquire(engine, "signal:x", _owner_with_pid(alive.pid), 30, T0)
        assert not reclaim_from_dead(engine, "signal:x")
    finally:
        alive.kill()
        alive.wait()
    assert try_acquire(engine, "signal:y", "p:0123456789ab:1:feed", 30, T0)
    assert not reclaim_from_dead(engine, "signal:y")  # another host: only expiry tells
    assert try_acquire(engine, "signal:z", _owner_with_pid(os.getpid()), 30, T0)
    assert not reclaim_from_dead(engine, "signal:z")  # our own process: alive
