"""Signal members enrolled by number are reached by their account id from the very first
message (the welcome), so a number that changes hands never receives the group."""

from __future__ import annotations

import anyio
import pytest
from sqlmodel import Session, select

from cercle.bootstrap import bootstrap
from cercle.providers import learn_signal_accounts
from cercle.settings import Settings
from relay.messages import Channel
from relay.storage.models import Member, Role
from tests.cli_support import invoke
from tests.fakes.signal_server import FakeSignalServer
from tests.signal.conftest import BOTH_WAYS

ALICE, ALICE_UUID = "+15145550151", "7d1f6a52-0000-4000-8000-000000000151"
BOB, BOB_UUID = "+15145550152", "7d1f6a52-0000-4000-8000-000000000152"
NOT_ON_SIGNAL = "+15145550153"
NEW_OWNER_UUID = "7d1f6a52-0000-4000-8000-000000000159"


@pytest.fixture
def signal_env(signal_only: FakeSignalServer) -> FakeSignalServer:
    """A deployment on Signal only, with group *mardi*, against the fake."""
    assert invoke("group", "create", "mardi", "--lang", "en")[0] == 0
    return signal_only


def deliver_everything() -> None:
    app = bootstrap(Settings.from_env())
    assert app.deliverer is not None

    async def drain() -> None:
        assert app.deliverer is not None and app.providers.signal is not None
        await app.deliverer.drain()
        await app.providers.signal.client.aclose()

    anyio.run(drain)
    app.close()


@BOTH_WAYS
def test_the_welcome_goes_to_the_account_not_the_number(signal_env: FakeSignalServer) -> None:
    signal_env.member(ALICE, ALICE_UUID)  # Alice's phone is on Signal

    assert invoke("member", "add", ALICE, "-g", "mardi", "--lang", "en")[0] == 0
    deliver_everything()

    to_alice = signal_env.sent_to(ALICE)
    assert to_alice and {m.recipient for m in to_alice} == {ALICE_UUID}
    assert all(call["recipient"] == ALICE_UUID for call in signal_env.timer_calls)


@BOTH_WAYS
def test_a_number_recycled_before_the_first_message_never_gets_the_group(
    signal_env: FakeSignalServer,
) -> None:
    signal_env.member(ALICE, ALICE_UUID)
    assert invoke("member", "add", ALICE, "-g", "mardi", "--lang", "en")[0] == 0
    # Before anything is delivered, Signal gives Alice's number to someone else.
    signal_env.member(ALICE, NEW_OWNER_UUID)

    deliver_everything()

    assert signal_env.sent
    assert all(m.recipient == ALICE_UUID for m in signal_env.sent)


def test_a_number_signal_cannot_resolve_is_enrolled_with_a_warning(
    signal_env: FakeSignalServer,
) -> None:
    signal_env.registered.add(NOT_ON_SIGNAL)  # registered, but signal-cli knows no account

    code, output = invoke("member", "add", NOT_ON_SIGNAL, "-g", "mardi", "--via", "signal")

    assert code == 0
    assert "account id" in output and NOT_ON_SIGNAL not in output


@BOTH_WAYS
def test_the_worker_learns_the_account_of_members_enrolled_without_one(
    signal_env: FakeSignalServer,
) -> None:
    app = bootstrap(Settings.from_env())
    for number in (ALICE, BOB, NOT_ON_SIGNAL):
        app.relay.enroll(number, "mardi", Role.MEMBER, "en", Channel.SIGNAL)
    signal_env.member(ALICE, ALICE_UUID)
    signal_env.member(BOB, BOB_UUID)

    async def learn() -> int:
        assert app.providers.signal is not None
        try:
            return await learn_signal_accounts(app.providers, app.relay)
        finally:
            await app.providers.signal.client.aclose()

    learned = anyio.run(learn)
    with Session(app.engine) as s:
        hashes = {m.uuid_hash for m in s.exec(select(Member)).all()}
    expected = {app.relay.uuid_hash(ALICE_UUID), app.relay.uuid_hash(BOB_UUID), None}
    app.close()

    assert learned == 2
    assert hashes == expected
