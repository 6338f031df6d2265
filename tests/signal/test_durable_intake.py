"""A message off the Signal connection is stashed, sealed, before anything else: a worker that
dies between the stash and the core's commit loses nothing, and nothing is relayed twice.

The real core, database and durable inbox, on both ways to Signal; the only thing made
up is the moment of death: a core that dies (the process ends) the first time it is handed a
message, before its transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlmodel import Session, func, select

from bots.signal.receiver import SignalReceiver
from cercle.bootstrap import App, bootstrap
from cercle.providers import SIGNAL_HOLD, core_accept, signal_receiver
from cercle.settings import Settings
from relay.doors import Result
from relay.messages import Channel, Inbound, Sender
from relay.service.inbox import ChannelInbox
from relay.service.relay import GroupSettings
from relay.storage.crypto import generate_key
from relay.storage.engine import upgrade
from relay.storage.models import PendingInbound, Role
from tests.fakes.signal_cli_daemon import FakeSignalCliDaemon, run_fake_signal_cli_daemon
from tests.fakes.signal_server import FakeMember, run_fake_signal_server
from tests.signal.conftest import ALICE, ALICE_UUID, BOB, BOB_UUID, ORG

pytestmark = pytest.mark.anyio


class ProcessDied(BaseException):
    """The worker process ending at this point (a SIGKILL, a power cut): nothing after it runs."""


class DyingCore:
    """The core's accept, except that the process dies the first time, before it commits."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.died = False

    async def __call__(self, inbound: Inbound) -> Result:
        if not self.died:
            self.died = True
            raise ProcessDied
        return await core_accept(self.app.relay)(inbound)


@dataclass
class Deployment:
    app: App
    signal: Any  # FakeSignalServer or FakeSignalCliDaemon: the same test API
    alice: FakeMember
    bob: FakeMember

    def stashed(self) -> int:
        with Session(self.app.engine) as s:
            return int(s.exec(select(func.count()).select_from(PendingInbound)).one())

    def bob_got(self, text: str) -> int:
        return sum(1 for m in self.signal.sent_to(BOB) if m.message.endswith(f": {text}"))

    async def deliver(self) -> None:
        assert self.app.deliverer is not None
        await self.app.deliverer.drain()

    async def until(self, condition: object, within: float = 10.0) -> None:
        with anyio.fail_after(within):
            while not condition():  # type: ignore[operator]
                await anyio.sleep(0.02)


@pytest.fixture(params=["rest", "daemon"])
def signal(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Either way to Signal: signal-cli-rest-api's fake or signal-cli's own daemon's."""
    if request.param == "daemon":
        with run_fake_signal_cli_daemon(ORG, receive_mode="manual") as daemon:
            yield daemon
            assert daemon.violations == []
        return
    with run_fake_signal_server(ORG) as fake:
        yield fake
        assert fake.violations == []


def way_in(signal: Any) -> dict[str, str]:
    """The variable that points Cercle at the fake."""
    if isinstance(signal, FakeSignalCliDaemon):
        return {"SIGNAL_CLI": signal.target}
    return {"SIGNAL_SERVICE": signal.service}


@pytest.fixture
async def deployment(tmp_path: Path, signal: Any) -> AsyncIterator[Deployment]:
    settings = Settings.from_env(
        environ={
            "DATABASE_URL": f"sqlite:///{tmp_path / 'cercle.db'}",
            "CERCLE_DATA_KEY": generate_key(),
            **way_in(signal),
            "SIGNAL_NUMBER": ORG,
            "CERCLE_SIGNAL_RATE": "200",
            "CERCLE_SIGNAL_BURST": "50",
        },
        dotenv_path=tmp_path / "none.env",
    )
    app = bootstrap(settings)
    upgrade(app.engine)
    relay = app.relay
    relay.create_group(GroupSettings("mardi", lang="en", timer_seconds=86400))
    for number, uuid in ((ALICE, ALICE_UUID), (BOB, BOB_UUID)):
        relay.enroll(number, "mardi", Role.MEMBER, "en", Channel.SIGNAL, uuid=uuid)
        relay.accept(
            Inbound(Channel.SIGNAL, Sender(number, uuid), f"setup:{number}", text="AGREE", ref="1")
        )
    d = Deployment(app, signal, signal.member(ALICE, ALICE_UUID), signal.member(BOB, BOB_UUID))
    await d.deliver()
    signal.sent.clear()
    yield d
    if app.providers.signal is not None:
        await app.providers.signal.client.aclose()
    app.close()


async def run_until_dead(receiver: SignalReceiver) -> None:
    try:
        await receiver.run()
    except* ProcessDied:
        pass


async def test_a_worker_dying_between_stash_and_accept_loses_nothing(
    deployment: Deployment,
) -> None:
    d = deployment
    core = DyingCore(d.app)
    assert d.app.providers.signal is not None
    first = SignalReceiver(
        d.app.providers.signal,
        core,
        ChannelInbox(d.app.relay, Channel.SIGNAL, hold=SIGNAL_HOLD, batch=100),
        backoff_max=0.05,
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_until_dead, first)
        await d.signal.wait_connected()
        d.alice.says("is anyone there?")
    # The worker is gone; signal-cli had handed the message over, and it is stashed.
    assert core.died
    assert d.stashed() == 1
    await d.deliver()
    assert d.bob_got("is anyone there?") == 0

    # The next worker takes it back before it receives anything new.
    second = signal_receiver(d.app.providers, d.app.relay)
    assert second is not None
    async with anyio.create_task_group() as tg:
        tg.start_soon(second.run)
        await d.until(lambda: d.stashed() == 0)
        await d.signal.wait_connected(opened=2)
        d.alice.says("hello again")
        await d.until(lambda: second.stats.accepted == 2)
        second.stop()
    await d.deliver()
    assert d.bob_got("is anyone there?") == 1
    assert d.bob_got("hello again") == 1
    relayed = [m.message for m in d.signal.sent_to(BOB) if m.message.endswith(("?", "again"))]
    assert [text.split(": ", 1)[1] for text in relayed] == ["is anyone there?", "hello again"]
    assert second.stats.taken_over == 1


async def test_a_message_handed_over_twice_is_relayed_once(deployment: Deployment) -> None:
    d = deployment
    receiver = signal_receiver(d.app.providers, d.app.relay)
    assert receiver is not None
    frame = d.alice.frame("only once")
    async with anyio.create_task_group() as tg:
        tg.start_soon(receiver.run)
        await d.signal.wait_connected()
        d.signal.push(frame)
        await d.until(lambda: receiver.stats.accepted == 1)
        # Again on the same connection, and again after a reconnect (a new receiver's memory
        # is empty: the durable records must catch it).
        d.signal.push(frame)
        await d.until(lambda: receiver.stats.duplicates == 1)
        receiver.stop()
    again = signal_receiver(d.app.providers, d.app.relay)
    assert again is not None
    async with anyio.create_task_group() as tg:
        tg.start_soon(again.run)
        await d.signal.wait_connected(opened=2)
        d.signal.push(frame)
        await d.until(lambda: again.stats.duplicates == 1)
        again.stop()
    await d.deliver()
    assert d.bob_got("only once") == 1
    assert again.stats.accepted == 0
    assert d.stashed() == 0
