"""Fixtures for the attack tests: the real app behind its web routes, fast-paced.

``desk`` is the web app and the relay with SMS only (no background loops: tests post webhooks
and drain deliveries themselves), for quick, deterministic attacks on the HTTP surface.
``world`` is the full mixed Signal/SMS deployment of ``tests/e2e`` (real worker loops between
the fake providers), with pacing lifted so that a whole conversation takes a second or two.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import Engine, func, inspect
from sqlmodel import Session, SQLModel, select

from cercle.bootstrap import App, bootstrap
from cercle.logs import QUIET, configure_logging
from cercle.settings import Settings
from cercle.web import create_app
from relay.messages import Channel
from relay.service.relay import GroupSettings
from relay.storage.crypto import generate_key
from relay.storage.engine import upgrade
from relay.storage.models import Role

# signal and world: the end-to-end deployment (fake Signal, fake Twilio, real worker and web
# app), shared with tests/e2e so both suites drive the same thing.
from tests.e2e.test_mixed_group import ORG, PUBLIC, signal, world  # noqa: F401
from tests.fakes.twilio_server import FakeTwilio

FAST = {
    "CERCLE_SIGNAL_RATE": "500",
    "CERCLE_SIGNAL_BURST": "500",
    "CERCLE_SMS_RATE": "500",
    "CERCLE_SMS_BURST": "500",
    "CERCLE_FLOOD_LIMIT": "1000",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def twilio_server() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def twilio(twilio_server: FakeTwilio) -> FakeTwilio:
    twilio_server.reset()
    return twilio_server


def row_counts(engine: Engine) -> dict[str, int]:
    """How many rows each table holds: an attack that changes nothing leaves these alone."""
    counts: dict[str, int] = {}
    with Session(engine) as s:
        for table in SQLModel.metadata.sorted_tables:
            if inspect(engine).has_table(table.name):
                counts[table.name] = s.exec(select(func.count()).select_from(table)).one()
    return counts


@dataclass
class Desk:
    """The web app and relay of an SMS-only deployment, reached at a proxy's address."""

    app: App
    twilio: FakeTwilio
    web: httpx.AsyncClient

    async def sms(self, from_: str, body: str, **kw: object) -> httpx.Response:
        """A correctly signed inbound SMS from ``from_``."""
        hook = self.twilio.inbound(f"{PUBLIC}/twilio/sms", from_, body, **kw)  # type: ignore[arg-type]
        return await hook.post(self.web)

    async def deliver(self) -> None:
        """Send everything that is due."""
        assert self.app.deliverer is not None
        await self.app.deliverer.drain()

    async def enroll(self, number: str, role: Role = Role.MEMBER, lang: str = "en") -> str:
        """Enroll ``number`` on SMS, have them agree, and return their pseudonym."""
        member = await anyio.to_thread.run_sync(
            lambda: self.app.relay.enroll(number, "mardi", role, lang, Channel.SMS)
        )
        await self.sms(number, "AGREE")
        await self.deliver()
        assert member.pseudonym
        return member.pseudonym

    def texts(self, number: str) -> list[str]:
        """What ``number`` received by SMS."""
        return [m.body for m in self.twilio.sent_to(number)]

    def counts(self) -> dict[str, int]:
        return row_counts(self.app.engine)


def settings_for(tmp_path: Path, **extra: str) -> Settings:
    environ = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cercle.db'}",
        "CERCLE_DATA_KEY": generate_key(),
        "CERCLE_ORG_NAME": "Maison Exemple",
        **FAST,
        **extra,
    }
    return Settings.from_env(environ=environ, dotenv_path=tmp_path / "none.env")


def twilio_env(twilio: FakeTwilio) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_NUMBER": ORG,
        "TWILIO_API_BASE": twilio.base_url,
        "PUBLIC_BASE_URL": PUBLIC,
    }


@pytest.fixture
async def desk(tmp_path: Path, twilio: FakeTwilio) -> AsyncIterator[Desk]:
    app = bootstrap(settings_for(tmp_path, **twilio_env(twilio)))
    upgrade(app.engine)
    app.relay.create_group(GroupSettings("mardi", lang="en", timer_seconds=86400))
    web_app = create_app(app)
    async with web_app.router.lifespan_context(web_app):
        # raise_app_exceptions=False: what a real server would answer, not the exception.
        transport = httpx.ASGITransport(app=web_app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as web:
            yield Desk(app, twilio, web)
    app.close()


# The end-to-end deployment (fake Signal, fake Twilio, real worker and web app), shared with
# tests/e2e so both suites drive the same thing.

# --- logging as a process configures it ------------------------------------------------------


@dataclass
class Captured:
    """What the configured handler wrote, and the raw records before the filter saw them."""

    out: io.StringIO
    raw: list[tuple[str, str]] = field(default_factory=list)  # (logger, message + traceback)

    @property
    def written(self) -> str:
        return self.out.getvalue()


class _Raw(logging.Handler):
    def __init__(self, sink: list[tuple[str, str]]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.sink.append((record.name, text))


@pytest.fixture
def configured() -> Iterator[Captured]:
    """``configure_logging(DEBUG)`` as a process would, undone afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in QUIET}
    captured = Captured(io.StringIO())
    configure_logging(logging.DEBUG, stream=captured.out)
    root.handlers.insert(0, _Raw(captured.raw))  # sees each record before the filter does
    yield captured
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)
