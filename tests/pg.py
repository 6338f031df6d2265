"""PostgreSQL for tests: a fresh, uniquely named database per test, dropped afterwards.

``CERCLE_TEST_POSTGRES_URL`` points at a server (any database on it, usually ``postgres``),
e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``. Unset, PostgreSQL tests are
skipped with a reason; under CI (``CI=true``) they fail instead, so a misconfigured pipeline
never passes by silently skipping the backend that production runs on.

Migrations run once per session into a template database; each test's database is a copy of
it (``CREATE DATABASE … TEMPLATE``), which is much faster than migrating every time.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from relay.storage.engine import make_engine, upgrade

ENV = "CERCLE_TEST_POSTGRES_URL"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def admin_url() -> URL:
    """The server to create test databases on, or skip (fail under CI) with the reason."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        _unavailable(f"set {ENV}, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    url = make_url(raw)
    try:
        probe = create_engine(url)
        with probe.connect() as conn:
            conn.execute(text("select 1"))
        probe.dispose()
    except OperationalError as exc:
        _unavailable(f"{ENV} is not reachable ({type(exc).__name__})")
    return url


def _admin_exec(url: URL, *statements: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


@contextmanager
def migrated_template(admin: URL) -> Iterator[str]:
    """A database migrated to head, used as the template of every test database."""
    name = f"cercle_tpl_{secrets.token_hex(4)}"
    _admin_exec(admin, f'CREATE DATABASE "{name}"')
    try:
        engine = make_engine(admin.set(database=name).render_as_string(hide_password=False))
        upgrade(engine)
        engine.dispose()  # a template must have no connections when it is copied
        yield name
    finally:
        _admin_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(admin: URL, template: str | None = None) -> Iterator[str]:
    """Create a uniquely named database (a copy of ``template`` if given); drop it after."""
    name = f"cercle_test_{secrets.token_hex(6)}"
    suffix = f' TEMPLATE "{template}"' if template else ""
    _admin_exec(admin, f'CREATE DATABASE "{name}"{suffix}')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        _admin_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
