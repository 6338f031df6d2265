"""The receive loop against the fake server: it keeps receiving whatever happens."""

from __future__ import annotations

import json

import anyio
import pytest

from bots.signal.client import SignalClient
from bots.signal.daemon import DaemonClient
from bots.signal.envelope import DropReason
from bots.signal.intake import DedupWindow
from bots.signal.receiver import Backoff
from bots.signal.seam import SignalBackend
from bots.signal.transport import SignalTransport
from relay.messages import Inbound, InboundKind
from tests.fakes.signal_server import FakeSignalServer
from tests.signal.conftest import ALICE, BOB, BOTH_WAYS, ORG, Inbox, receiving

pytestmark = pytest.mark.anyio


@BOTH_WAYS
async def test_alice_says_hi_and_the_core_gets_it(
    fake: FakeSignalServer, transport: SignalTransport, inbox: Inbox
) -> None:
    async with receiving(transport, inbox):
        await fake.wait_connected()
        alice = fake.member(ALICE)
        ts = alice.says("hi")
        [inbound] = await inbox.wait_for(1)
    assert inbound.text == "hi"
    assert inbound.sender.address == ALICE
    assert inbound.ref == str(ts)


@BOTH_WAYS
async def test_every_member_action_arrives_as_its_kind(
    fake: FakeSignalServer, transport: SignalTransport, inbox: Inbox
) -> None:
    async with receiving(transport, inbox):
        await fake.wait_connected()
        alice, bob = fake.member(ALICE), fake.member(BOB)
        first = alice.says("hello group")
        bob.quotes(1767225700999, "same here", quoted_text="Willow: hello group")
        bob.mentions(alice)
        bob.reacts("❤️", 1767225700999)
        alice.edits(first, "hello group (edited)")
        alice.deletes(first)
        alice.sets_timer(0)
        alice.sends_photo("look")
        bob.changes_safety_number()
        items = await inbox.wait_for(9)
    kinds = [i.kind for i in items]
    assert kinds == [
        InboundKind.MESSAGE,
        InboundKind.MESSAGE,
        InboundKind.MESSAGE,
        InboundKind.REACTION,
        InboundKind.EDIT,
        InboundKind.DELETE,
        InboundKind.TIMER_CHANGED,
        InboundKind.MESSAGE,
        InboundKind.IDENTITY_CHANGED,
    ]
    assert items[1].quote_ref == "1767225700999"
    assert items[2].mentions[0].uuid == alice.uuid
    assert items[4].edit_ref == str(first)
    assert items[5].delete_ref == str(first)
    assert items[6].expires_in_seconds == 0
    assert items[7].attachments[0].content_type == "image/jpeg"
    if fake.kind == "rest":
        assert fake.attachments == {}  # the server copy is gone


@BOTH_WAYS
async def test_a_clean_close_1000_is_followed_by_a_reconnect(
    fake: FakeSignalServer, transport: SignalTransport, inbox: Inbox
) -> None:
    async with receiving(transport, inbox) as receiver:
        await fake.wait_connected()
        alice = fake.member(ALICE)
        fake.close_websockets(1000)
        await fake.wait_connected(opened=2)
        alice.says("still here")
        [inbound] = await inbox.wait_for(1)
    assert inbound.text == "still here"
    assert receiver.stats.connections == 2


@BOTH_WAYS
async def test_an_abrupt_close_is_followed_by_a_reconnect(
    fake: FakeSignalServer, transport: SignalTransport, inbox: Inbox
) -> None:
    async with receiving(transport, inbox):
        await fake.wait_connected()
        alice = fake.member(ALICE)
        alice.says("before")
        await inbox.wait_for(1)
        fake.abort_websockets()
        await fake.wait_connected(opened=2)
        alice.says("after")
        items = await inbox.wait_for(2)
    assert [i.text for i in items] == ["before", "after"]


@BOTH_WAYS
async def test_it_keeps_reconnecting_after_many_closes(
    fake: FakeSignalServer, transport: SignalTransport, inbox: Inbox
) -> None:
    async with receiving(transport, inbox):
        alice = fake.member(ALICE)
        for round_ in range(1, 6):
            await fake.wait_connected(opened=round_)
            alice.says(f"round {round_}")
            await inbox.wait_for(round_)
            if round_ % 2:
                fake.close_websockets(1000)
            else:
                fake.abort_websockets()
    assert [i.text for i in inbox.items] == [f"round {n}" for n in range(1, 6)]


async def test_messages_sent_while_disconnected_are_lost_by_the_server(
    fake: FakeSignalServer, transport: SignalTransport, inbox: Inbox
) -> None:
    # Why the loop must reconnect at once: the real server drops these too.
    alice = fake.member(ALICE)
    alice.says("nobody listening")
    assert fake.frames_dropped == 1
    async with receiving(transport, inbox):
        await fake.wait_connected()
        alice.says("now")
        [inbound] = await inbox.wait_for(1)
    assert inbound.text == "now"


@BOTH_WAYS
async def test_garbage_error_and_unknown_frames_are_skipped(
    fake: FakeSignalServer, transport: SignalTransport, inbox: Inbox
) -> None:
    async with receiving(transport, inbox) as receiver:
        await fake.wait_connected()
        fake.push("this is not json")
        fake.push("[]")
        fake.error_frame()
        fake.push({"exception": {"type": "InvalidMessageException", "message": "bad"}})
        fake.push({"envelope": {"sourceUuid": "u", "timestamp": 1, "storyMessage": {}}})
        fake.member(ALICE).cannot_be_decrypted()
        fake.member(ALICE).types()
        fake.member(ALICE).says("real")
        [inbound] = await inbox.wait_for(1)
    assert inbound.text == "real"
    # signal-cli-rest-api hands a garbled frame to the parser and has an error frame of its
    # own; signal-cli's socket reader skips a garbled line, and its daemon reports a message
    # it failed on as an exception beside the envelope.
    garbled_and_errors = {
        "rest": {
            DropReason.UNPARSEABLE: 2,
            DropReason.ERROR_FRAME: 1,
            DropReason.EXCEPTION_FRAME: 2,
        },
        "daemon": {DropReason.UNPARSEABLE: 1, DropReason.EXCEPTION_FRAME: 3},
    }[fake.kind]
    assert receiver.stats.dropped == garbled_and_errors | {
        DropReason.STORY: 1,
        DropReason.TYPING: 1,
    }


@BOTH_WAYS
async def test_the_same_message_twice_is_accepted_once(
    fake: FakeSignalServer, transport: SignalTransport, inbox: Inbox
) -> None:
    frame = {
        "envelope": {
            "sourceNumber": ALICE,
            "sourceUuid": "u-1",
            "timestamp": 7,
            "dataMessage": {"timestamp": 7, "message": "once"},
        },
        "account": fake.number,
    }
    async with receiving(transport, inbox) as receiver:
        await fake.wait_connected()
        fake.push(frame)
        fake.push(json.dumps(frame))
        fake.member(ALICE).says("next")
        await inbox.wait_for(2)
    assert [i.text for i in inbox.items] == ["once", "next"]
    assert receiver.stats.duplicates == 1


@BOTH_WAYS
async def test_a_failing_accept_is_logged_with_a_reference_and_the_loop_goes_on(
    fake: FakeSignalServer, transport: SignalTransport, caplog: pytest.LogCaptureFixture
) -> None:
    received: list[Inbound] = []

    async def accept(inbound: Inbound) -> None:
        if inbound.text == "boom":
            raise KeyError(f"member {ALICE} not found")
        received.append(inbound)

    async with receiving(transport, accept) as receiver:
        await fake.wait_connected()
        alice = fake.member(ALICE)
        alice.says("boom")
        alice.says("fine")
        await fake.wait_until(lambda: len(received) == 1)
    assert received[0].text == "fine"
    assert receiver.stats.failures == 1
    [record] = [r for r in caplog.records if "handling failed" in r.getMessage()]
    assert "KeyError" in record.getMessage()
    assert "reference" in record.getMessage()
    assert ALICE not in record.getMessage()
    assert record.exc_info is None  # no traceback, which could show the exception's text


@BOTH_WAYS
async def test_stop_ends_the_loop(fake: FakeSignalServer, transport: SignalTransport) -> None:
    inbox = Inbox()
    with anyio.fail_after(3):
        async with receiving(transport, inbox) as receiver:
            await fake.wait_connected()
            # The server side sees the websocket a moment before the client side has it.
            await fake.wait_until(lambda: receiver.stats.connections == 1)
            receiver.stop()
    # run() returned (the block ended within the deadline) and the websocket is closed.
    await fake.wait_until(lambda: fake.connected == 0)
    assert receiver.stats.connections == 1


@pytest.mark.parametrize("way", ["rest", "daemon"])
async def test_it_keeps_trying_while_the_service_is_down(inbox: Inbox, way: str) -> None:
    # Nobody listens on port 9: the loop must keep trying, never raise.
    dead: SignalBackend = (
        DaemonClient("tcp://127.0.0.1:9", ORG)
        if way == "daemon"
        else SignalClient("127.0.0.1:9", ORG)
    )
    try:
        async with receiving(SignalTransport(dead), inbox) as receiver:
            await anyio.sleep(0.3)
        assert receiver.stats.connections == 0
    finally:
        await dead.aclose()


def test_backoff_grows_to_its_cap_and_resets() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0)
    delays = [backoff.next() for _ in range(8)]
    assert delays[0] <= 0.1
    assert max(delays) <= 1.0
    assert delays[-1] >= 0.5
    backoff.reset()
    assert backoff.next() <= 0.1


def test_the_dedup_window_is_bounded() -> None:
    window = DedupWindow(size=2)
    assert not window.seen("a")
    assert not window.seen("b")
    assert window.seen("a")
    assert not window.seen("c")  # evicts "b", the least recently seen
    assert not window.seen("b")
