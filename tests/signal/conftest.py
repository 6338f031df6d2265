"""Shared fixtures for the Signal adapter tests: the fake server, a client, a receiver."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from bots.signal.client import SignalClient
from bots.signal.daemon import DaemonClient
from bots.signal.receiver import SignalReceiver
from bots.signal.seam import SignalBackend
from bots.signal.transport import SignalTransport
from relay.messages import Inbound
from tests.fakes.signal_cli_daemon import FakeSignalCliDaemon, run_fake_signal_cli_daemon
from tests.fakes.signal_server import FakeSignalServer, run_fake_signal_server
from tests.fakes.stash import MemoryStash

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ORG = "+15145550120"
ALICE = "+15145550121"
BOB = "+15145550122"
ALICE_UUID = "7d1f6a52-0000-4000-8000-000000000021"
BOB_UUID = "7d1f6a52-0000-4000-8000-000000000022"


def fixture_frames() -> list[tuple[str, dict[str, Any]]]:
    """(comment, frame) for each line of the vendored signal-frames.jsonl."""
    frames = []
    for line in (FIXTURES / "signal-frames.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            frame = json.loads(line)
            frames.append((frame.pop("_comment"), frame))
    return frames


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# Both ways to Signal: a test or module marked with this runs on signal-cli-rest-api and on
# signal-cli's own daemon (``fake`` is then a FakeSignalServer or a FakeSignalCliDaemon).
BOTH_WAYS = pytest.mark.parametrize("fake", ["rest", "daemon"], indirect=True)


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[Any]:
    if getattr(request, "param", "rest") == "daemon":
        with run_fake_signal_cli_daemon(ORG) as daemon:
            yield daemon
            # Every call used only parameters signal-cli reads (it ignores the others).
            assert daemon.violations == []
        return
    with run_fake_signal_server(ORG) as server:
        yield server
        # Every body we sent matched the spec, with unknown fields refused.
        assert server.violations == []


def backend_for(fake: FakeSignalServer | FakeSignalCliDaemon) -> SignalBackend:
    """The client for whichever fake runs: the REST client or the daemon client."""
    if isinstance(fake, FakeSignalCliDaemon):
        return DaemonClient(fake.target, fake.number)
    return SignalClient(fake.service, fake.number)


@pytest.fixture
async def client(fake: FakeSignalServer) -> AsyncIterator[SignalBackend]:
    backend = backend_for(fake)
    try:
        yield backend
    finally:
        await backend.aclose()


@pytest.fixture
def transport(client: SignalBackend) -> SignalTransport:
    return SignalTransport(client)


class Inbox:
    """The core's accept callback, in memory: it keeps what it is given."""

    def __init__(self) -> None:
        self.items: list[Inbound] = []

    async def __call__(self, inbound: Inbound) -> None:
        self.items.append(inbound)

    async def wait_for(self, count: int, within: float = 5.0) -> list[Inbound]:
        with anyio.fail_after(within):
            while len(self.items) < count:
                await anyio.sleep(0.01)
        return self.items


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@asynccontextmanager
async def receiving(
    transport: SignalTransport, accept: Any, **options: Any
) -> AsyncIterator[SignalReceiver]:
    """Run a receiver (fast backoff for tests) for the duration of the block."""
    options = {"backoff_initial": 0.01, "backoff_max": 0.05, "retry_every": 0.05} | options
    stash = options.pop("stash", None) or MemoryStash()
    receiver = SignalReceiver(transport, accept, stash, **options)
    async with anyio.create_task_group() as tg:
        tg.start_soon(receiver.run)
        try:
            yield receiver
        finally:
            receiver.stop()


@pytest.fixture
def signal_only(
    env: dict[str, str], fake: FakeSignalServer, monkeypatch: pytest.MonkeyPatch
) -> FakeSignalServer:
    """The CLI deployment of ``env`` on Signal only, against the fake."""
    for k in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_NUMBER", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(k)
    if isinstance(fake, FakeSignalCliDaemon):
        monkeypatch.setenv("SIGNAL_CLI", fake.target)
    else:
        monkeypatch.setenv("SIGNAL_SERVICE", fake.service)
    monkeypatch.setenv("SIGNAL_NUMBER", fake.number)
    return fake
