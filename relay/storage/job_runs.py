"""When each periodic job of the worker last finished a round, and whether it succeeded.

Written after every round (one row per job, overwritten with an upsert, so several workers
running the same job never collide); read by the ``jobs`` health check. Times and flags only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from relay.storage.engine import is_postgres, transaction
from relay.storage.models import JobRun


def record(engine: Engine, job: str, now: datetime, *, ok: bool, every: float) -> None:
    """Note that ``job`` (period ``every`` seconds) finished a round at ``now``."""
    values = {"job": job, "finished_at": now, "ok": ok, "every_seconds": max(1, round(every))}
    insert: Any = pg_insert if is_postgres(engine) else sqlite_insert
    stmt = insert(JobRun).values(**values)
    stmt = stmt.on_conflict_do_update(index_elements=["job"], set_=values)
    with transaction(engine) as s:
        s.execute(stmt)


def last_runs(engine: Engine) -> Sequence[JobRun]:
    """Every job's last round, by job name."""
    with Session(engine) as s:
        return s.exec(select(JobRun).order_by(col(JobRun.job))).all()
