"""The database: engine set-up for SQLite and PostgreSQL, sessions, and migrations."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).parent.parent / "migrations"
DEFAULT_URL = "sqlite:///cercle.db"

log = logging.getLogger(__name__)


def make_engine(url: str = DEFAULT_URL, **kwargs: Any) -> Engine:
    """An engine with the settings each backend needs for a relay (WAL and FKs on SQLite)."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the web process read while the worker writes; FKs keep tombstones honest.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            # Deleted rows are overwritten with zeros, not left in free pages: a stolen file
            # (with its key) must not give back message bodies the retention jobs removed.
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def checkpoint(engine: Engine) -> None:
    """On SQLite, move the write-ahead log into the database file and empty it, so the old
    versions of pages it holds (with deleted values in them) are gone too. Nothing to do on
    PostgreSQL, whose dead rows are reclaimed by autovacuum (see docs/keys.md)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def is_postgres(engine: Engine) -> bool:
    """Whether ``engine`` talks to PostgreSQL (claims use ``FOR UPDATE SKIP LOCKED``)."""
    return engine.dialect.name == "postgresql"


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits together at the end, or not at all."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(engine: Engine) -> Config:
    """Alembic configuration bound to ``engine`` (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    command.upgrade(alembic_config(engine), revision)
    log.info("database migrated to %s", revision)


async def listen(engine: Engine, channel: str, ring: Callable[[], None], what: str) -> None:
    """On PostgreSQL, call ``ring`` on every ``NOTIFY channel`` (``LISTEN`` on one extra
    connection), and once on (re)connecting, since news may have come while not listening.
    Runs until cancelled; on an error it says so (``what`` is polled meanwhile) and retries."""
    import anyio  # noqa: PLC0415 - only the long-lived processes listen
    import psycopg  # noqa: PLC0415 - only with PostgreSQL

    url = engine.url.set(drivername="postgresql")
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(
                url.render_as_string(hide_password=False), autocommit=True
            )
            async with conn:
                await conn.execute(f"LISTEN {channel}")
                ring()
                async for _ in conn.notifies():
                    ring()
        except (psycopg.Error, OSError) as exc:
            log.warning("not listening for %s (%s); polling", what, type(exc).__name__)
            await anyio.sleep(5)
