"""What every benchmark shares: a fresh database per measurement, the fake provider in its
own process, and a statement counter."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, event

from relay.storage.engine import make_engine, upgrade

ROOT = Path(__file__).resolve().parent.parent
Row = tuple[str, str, str]


class Database:
    """A fresh migrated database per measurement (SQLite file, or the URL given)."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.tmp = tempfile.TemporaryDirectory()
        self.n = 0

    def fresh(self) -> Engine:
        self.n += 1
        if self.url:
            from sqlalchemy.engine import make_url

            from tests import pg

            admin = make_url(self.url)
            ctx = pg.fresh_database(admin)
            url = ctx.__enter__()
            engine = make_engine(url)
            self._ctxs = [*getattr(self, "_ctxs", []), (ctx, engine)]
        else:
            engine = make_engine(f"sqlite:///{self.tmp.name}/bench{self.n}.db")
        upgrade(engine)
        return engine

    def close(self) -> None:
        for ctx, engine in getattr(self, "_ctxs", []):
            engine.dispose()
            ctx.__exit__(None, None, None)
        self.tmp.cleanup()


class Provider:
    """The fake provider in its own process (so it does not share our GIL)."""

    def __init__(
        self,
        latency: float = 0.0,
        rate: float | None = None,
        pair: tuple[int, float] | None = None,
    ) -> None:
        args = [sys.executable, "-m", "tests.delivery.fake_provider", str(latency)]
        args.append("-" if rate is None else str(rate))
        if pair is not None:  # Signal's per-pair limit: a bucket of pair[0], pair[1] per second
            args += [str(pair[0]), str(pair[1])]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, cwd=ROOT)
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}"

    def stats(self) -> dict[str, Any]:
        got: dict[str, Any] = httpx.get(self.url + "/log", timeout=30).json()
        return got

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def count_statements(engine: Engine) -> Callable[[], int]:
    """Count SQL statements executed on ``engine`` from now on."""
    box = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args: object) -> None:
        box[0] += 1

    return lambda: box[0]
