"""Worker processes for tests: the real worker loop (``tests.delivery.worker_main``) on one
database, delivering to one fake provider."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import Engine

from relay.clock import SystemClock
from relay.delivery.sender import pending_count
from relay.storage.crypto import DataKeys
from tests.delivery.fake_provider import FakeProvider
from tests.delivery.seed import World

ROOT = Path(__file__).resolve().parent.parent.parent


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


def world_of(engine: Engine, key: str) -> World:
    """A world on ``engine`` with the workers' key and the real clock."""
    return World.on(engine, clock=SystemClock(), keys=DataKeys.from_text(key))


def wait_drained(engine: Engine, timeout: float) -> None:
    """Wait until no row is open, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while pending_count(engine) > 0:
        assert time.monotonic() < deadline, f"{pending_count(engine)} rows still open"
        time.sleep(0.1)


def by_address(log: list[tuple[str, str]]) -> dict[str, list[str]]:
    """The provider's log as texts per address, in arrival order."""
    got: dict[str, list[str]] = defaultdict(list)
    for to, text in log:
        got[to].append(text)
    return got
