"""Fixtures for the SMS adapter tests: a config, the loopback fake, and an app client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.applications import Starlette

from bots.sms.config import SmsConfig
from bots.sms.routes import sms_routes
from bots.sms.webhook import MessageStatus, ParsedMessage, WebhookVerifier

# The SMS-only deployment behind its web routes (tests/attacks), for the inbox tests.
from tests.attacks.conftest import desk, twilio, twilio_server  # noqa: F401
from tests.fakes.twilio_server import ACCOUNT_SID, AUTH_TOKEN, ORG_NUMBER, SERVICE_SID, FakeTwilio

PUBLIC = "https://relay.example.org"
INTERNAL = "http://10.0.0.5:8000"  # where the proxy forwards to: not what Twilio signed


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeTwilio]:
    """One running fake for the session (fast); tests reset what they touch."""
    with FakeTwilio() as server:
        yield server


@pytest.fixture
def fresh_fake(fake: FakeTwilio) -> FakeTwilio:
    fake.reset()
    return fake


def make_config(api_base: str = "https://api.twilio.com", **overrides: object) -> SmsConfig:
    values: dict[str, object] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "public_base_url": PUBLIC,
        "number": ORG_NUMBER,
        "api_base": api_base,
        "read_timeout": 0.5,
        "connect_timeout": 0.5,
    }
    values.update(overrides)
    return SmsConfig(**values)  # type: ignore[arg-type]


@dataclass
class Core:
    """Stands in for the core: records what the routes hand it."""

    inbound: list[ParsedMessage] = field(default_factory=list)
    statuses: list[tuple[str, MessageStatus, int | None]] = field(default_factory=list)
    explode: bool = False

    async def accept(self, parsed: ParsedMessage) -> None:
        if self.explode:
            raise RuntimeError("core failed while holding Bonsoir +15145550121")
        self.inbound.append(parsed)

    async def on_status(self, sid: str, status: MessageStatus, code: int | None) -> None:
        self.statuses.append((sid, status, code))


@pytest.fixture
def core() -> Core:
    return Core()


@pytest.fixture
async def app_client(core: Core) -> AsyncIterator[httpx.AsyncClient]:
    """The webhook routes, reached at the internal address a proxy would use."""
    verifier = WebhookVerifier(ACCOUNT_SID, AUTH_TOKEN, PUBLIC)
    app = Starlette(routes=sms_routes(verifier, core.accept, core.on_status))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=INTERNAL) as client:
        yield client


__all__ = ["INTERNAL", "PUBLIC", "SERVICE_SID", "Core", "make_config"]
