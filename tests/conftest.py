"""Shared fixtures: a room per test, with the privacy invariants checked afterwards, and
databases on both backends (SQLite always; PostgreSQL from ``CERCLE_TEST_POSTGRES_URL``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from relay.storage.crypto import generate_key
from relay.storage.engine import make_engine, upgrade
from tests import pg
from tests.cli_support import invoke
from tests.room import Room


@pytest.fixture
def room(tmp_path: Path) -> Iterator[Room]:
    """A group called *mardi* in English with a one-day timer, on the sandbox transport."""
    r = Room(tmp_path)
    yield r
    r.check_invariants()


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio."""
    return "asyncio"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL template database for this session (skips/fails if none)."""
    admin = pg.admin_url()
    with pg.migrated_template(admin) as name:
        yield name


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """The URL of a fresh, migrated PostgreSQL database, dropped after the test."""
    with pg.fresh_database(pg.admin_url(), pg_template) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database URL on each backend in turn."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return url
    url = f"sqlite:///{tmp_path / 'cercle.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on :func:`db_url`, disposed after the test."""
    e = make_engine(db_url)
    yield e
    e.dispose()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A migrated deployment with SMS configured, for CLI tests (no request reaches Twilio)."""
    monkeypatch.chdir(tmp_path)
    values = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cercle.db'}",
        "CERCLE_DATA_KEY": generate_key(),
        "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000001",
        "TWILIO_AUTH_TOKEN": "test-token",
        "TWILIO_NUMBER": "+15145550100",
        "PUBLIC_BASE_URL": "https://relay.example.org",
    }
    for k in (
        "SIGNAL_SERVICE",
        "SIGNAL_CLI",
        "SIGNAL_NUMBER",
        "CERCLE_DATA_KEY_PREVIOUS",
        "CERCLE_TIMEZONE",
    ):
        monkeypatch.delenv(k, raising=False)
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    assert invoke("db", "upgrade")[0] == 0
    return values
