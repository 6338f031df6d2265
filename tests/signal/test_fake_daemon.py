"""The fake signal-cli daemon speaks the protocol of signal-cli's man page and source, and
keeps messages at Signal exactly as long as signal-cli does; Cercle's receive loop on it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from bots.signal.daemon import DaemonClient
from bots.signal.transport import SignalTransport
from relay.errors import (
    IdentityChangedError,
    RateLimitedError,
    Reason,
    RecipientGoneError,
    RetryableError,
)
from relay.messages import Outgoing
from tests.fakes.signal_cli_daemon import FakeSignalCliDaemon, run_fake_signal_cli_daemon
from tests.signal.conftest import ALICE, BOB, ORG, Inbox, receiving

pytestmark = pytest.mark.anyio


class Line:
    """A raw client: one JSON object per line, as in signal-cli-jsonrpc(5)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, text: str) -> None:
        self.writer.write(text.encode() + b"\n")
        await self.writer.drain()

    async def read(self) -> Any:
        async with asyncio.timeout(5):
            return json.loads(await self.reader.readline())

    async def call(self, method: str, params: Any = None, rid: int = 1) -> Any:
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": rid}
        if params is not None:
            request["params"] = params
        await self.send(json.dumps(request))
        return await self.read()


@asynccontextmanager
async def line_to(fake: FakeSignalCliDaemon) -> AsyncIterator[Line]:
    host, port = fake.target.removeprefix("tcp://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        yield Line(reader, writer)
    finally:
        writer.close()


@pytest.fixture
def daemon() -> Any:
    with run_fake_signal_cli_daemon(ORG) as fake:
        yield fake


async def test_the_man_pages_examples(daemon: FakeSignalCliDaemon) -> None:
    async with line_to(daemon) as line:
        answer = await line.call("send", {"recipient": [BOB], "message": "MESSAGE"}, rid=4)
        assert answer["id"] == 4
        assert isinstance(answer["result"]["timestamp"], int)
        [result] = answer["result"]["results"]
        assert result["type"] == "SUCCESS"
        assert result["recipientAddress"]["number"] == BOB
        await line.send('{"jsonrpc":"2.0"}')
        assert await line.read() == {
            "jsonrpc": "2.0",
            "error": {"code": -32600, "message": "method field must be set", "data": None},
            "id": None,
        }


async def test_protocol_errors_have_their_codes(daemon: FakeSignalCliDaemon) -> None:
    async with line_to(daemon) as line:
        await line.send("{not json")
        parse = await line.read()
        assert parse["error"]["code"] == -32700 and parse["id"] is None
        assert (await line.call("noSuchMethod"))["error"]["code"] == -32601
        # Registration needs the multi-account daemon: not there for one number.
        assert (await line.call("register", {"captcha": "x"}))["error"]["code"] == -32601
        positional = await line.call("send", [BOB, "hi"])
        assert positional["error"]["code"] == -32600
        await line.send('{"jsonrpc":"1.0","method":"version","id":7}')
        assert (await line.read())["error"]["code"] == -32600
        empty = await line.call("send", {"recipient": BOB})
        assert empty["error"]["code"] == -1  # an empty message is a user error
        assert (await line.call("version"))["result"] == {"version": daemon.version}
    daemon.violations.clear()


async def test_a_list_param_takes_one_value_or_an_array(daemon: FakeSignalCliDaemon) -> None:
    async with line_to(daemon) as line:
        await line.call("send", {"recipient": BOB, "message": "one"})
        await line.call("send", {"recipients": [BOB, ALICE], "message": "two"}, rid=2)
    assert [m.message for m in daemon.sent_to(BOB)] == ["one", "two"]
    assert [m.message for m in daemon.sent_to(ALICE)] == ["two"]


async def test_an_unknown_param_is_ignored_as_signal_cli_does_but_recorded(
    daemon: FakeSignalCliDaemon,
) -> None:
    async with line_to(daemon) as line:
        answer = await line.call("send", {"recipient": BOB, "message": "hi", "quoteAutor": ORG})
    assert "result" in answer
    assert daemon.violations == ["send: unknown param quoteAutor"]
    daemon.violations.clear()


async def test_a_rate_limit_is_minus_5_with_each_recipients_result(
    daemon: FakeSignalCliDaemon,
) -> None:
    async with line_to(daemon) as line:
        for n in range(60):
            assert "result" in await line.call("send", {"recipient": BOB, "message": "x"}, n)
        limited = await line.call("send", {"recipient": BOB, "message": "x"}, rid=99)
    error = limited["error"]
    assert error["code"] == -5
    [result] = error["data"]["response"]["results"]
    assert result["type"] == "RATE_LIMIT_FAILURE"
    assert result["retryAfterSeconds"] >= 1


async def test_the_daemon_client_maps_signal_cli_errors(daemon: FakeSignalCliDaemon) -> None:
    transport = SignalTransport(DaemonClient(daemon.target, daemon.number))
    daemon.pair_burst = 1
    await transport.send(Outgoing(address=BOB, text="one"))
    with pytest.raises(RateLimitedError) as limited:
        await transport.send(Outgoing(address=BOB, text="two"))
    assert limited.value.reason is Reason.RATE_LIMITED and limited.value.retry_after
    daemon.change_identity(ALICE)
    with pytest.raises(IdentityChangedError):
        await transport.send(Outgoing(address=ALICE, text="hi"))
    await transport.trust(ALICE)
    await transport.send(Outgoing(address=ALICE, text="hi"))
    daemon.unregistered.add("+15145550133")
    with pytest.raises(RecipientGoneError):
        await transport.send(Outgoing(address="+15145550133", text="hi"))
    await transport.client.aclose()


async def test_messages_wait_at_signal_while_nobody_subscribes(
    daemon: FakeSignalCliDaemon, inbox: Inbox
) -> None:
    alice = daemon.member(ALICE)
    transport = SignalTransport(DaemonClient(daemon.target, daemon.number))
    sent = [alice.says(f"while away {n}") for n in range(3)]
    assert daemon.queued == 3
    async with receiving(transport, inbox):
        items = await inbox.wait_for(3)
    assert [i.ref for i in items] == [str(ts) for ts in sent]
    # The receive connection closed with the block: signal-cli stops reading at once.
    await daemon.wait_until(lambda: daemon.subscribed == 0)
    alice.says("after")
    assert daemon.queued == 1


async def test_a_message_handed_to_a_dying_connection_is_lost(
    daemon: FakeSignalCliDaemon, inbox: Inbox
) -> None:
    # signal-cli acknowledges to Signal before handing over: this is the window.
    alice = daemon.member(ALICE)
    transport = SignalTransport(DaemonClient(daemon.target, daemon.number))
    async with receiving(transport, inbox):
        await daemon.wait_connected()
        daemon.cut_during_next_handover()
        alice.says("lost in the window")
        await daemon.wait_connected(opened=2)
        alice.says("next")
        [item] = await inbox.wait_for(1)
    assert item.text == "next"
    assert daemon.frames_lost == 1


async def test_on_start_drops_what_arrives_while_nobody_is_connected() -> None:
    with run_fake_signal_cli_daemon(ORG, receive_mode="on-start") as daemon:
        daemon.member(ALICE).says("nobody")
        assert daemon.queued == 0 and daemon.frames_dropped == 1


async def test_on_connection_pushes_without_a_subscription_id() -> None:
    with run_fake_signal_cli_daemon(ORG, receive_mode="on-connection") as daemon:
        async with line_to(daemon) as line:
            await daemon.wait_until(lambda: daemon.subscribed == 1)
            daemon.member(ALICE).says("hi")
            note = await line.read()
    assert note["method"] == "receive"
    assert "subscription" not in note["params"]
    assert note["params"]["envelope"]["dataMessage"]["message"] == "hi"


async def test_manual_mode_over_a_unix_socket(tmp_path: Path, inbox: Inbox) -> None:
    with run_fake_signal_cli_daemon(ORG, socket_path=tmp_path / "signal-cli.sock") as daemon:
        transport = SignalTransport(DaemonClient(daemon.target, daemon.number))
        async with receiving(transport, inbox):
            await daemon.wait_connected()
            daemon.member(ALICE).says("over the socket")
            [item] = await inbox.wait_for(1)
        await transport.client.aclose()
    assert item.text == "over the socket"
    assert daemon.target.startswith("unix:")


async def test_subscribe_answers_an_integer_and_notifications_carry_it(
    daemon: FakeSignalCliDaemon,
) -> None:
    async with line_to(daemon) as line:
        sub = (await line.call("subscribeReceive"))["result"]
        assert isinstance(sub, int)
        daemon.member(ALICE).says("hello")
        note = await line.read()
        assert note["params"]["subscription"] == sub
        assert note["params"]["result"]["account"] == ORG
        assert (await line.call("unsubscribeReceive", {"subscription": sub}, 2))["result"] == {}
        unknown = await line.call("unsubscribeReceive", {"subscription": sub}, 3)
        assert unknown["error"]["code"] == -1


async def test_sends_share_one_connection_many_in_flight(daemon: FakeSignalCliDaemon) -> None:
    client = DaemonClient(daemon.target, daemon.number)
    receipts: list[str | None] = []

    async def send(n: int) -> None:
        receipts.append(await client.send(BOB, f"copy {n}"))

    async with anyio.create_task_group() as tg:
        for n in range(8):
            tg.start_soon(send, n)
    await client.aclose()
    assert len({r for r in receipts if r}) == 8
    assert sorted(m.message for m in daemon.sent_to(BOB)) == [f"copy {n}" for n in range(8)]
    assert daemon.connections_opened == 1


async def test_a_dropped_connection_is_reopened_and_a_hung_call_times_out(
    daemon: FakeSignalCliDaemon,
) -> None:
    client = DaemonClient(daemon.target, daemon.number, timeout=0.3, send_timeout=0.3)
    await client.send(BOB, "one")
    daemon.abort_websockets()
    await anyio.sleep(0.05)  # the client's reader sees the end (else: one retryable failure)
    await client.send(BOB, "two")
    assert daemon.connections_opened == 2
    daemon.stalled.add("send")
    with pytest.raises(RetryableError):
        await client.send(BOB, "three")
    await client.aclose()


async def test_the_receive_loop_waits_out_a_daemon_that_is_down(
    tmp_path: Path, inbox: Inbox
) -> None:
    transport = SignalTransport(DaemonClient(f"unix:{tmp_path / 'nobody.sock'}", ORG))
    async with receiving(transport, inbox) as receiver:
        await anyio.sleep(0.3)
    assert receiver.stats.connections == 0
    assert inbox.items == []


@pytest.mark.parametrize("mode", ["on-start", "on-connection"])
async def test_calls_never_take_messages_in_the_modes_that_push_to_everyone(
    mode: str, inbox: Inbox
) -> None:
    with run_fake_signal_cli_daemon(ORG, receive_mode=mode) as daemon:
        transport = SignalTransport(DaemonClient(daemon.target, daemon.number))
        assert await transport.client.receive_mode_is_manual() is False  # type: ignore[attr-defined]
        await transport.send(Outgoing(address=BOB, text="hi"))
        # The call connection ended the subscription it was given on connecting.
        await daemon.wait_until(lambda: daemon.subscribed == 0)
        async with receiving(transport, inbox):
            await daemon.wait_connected()
            daemon.member(ALICE).says("once")
            [item] = await inbox.wait_for(1)
            await anyio.sleep(0.1)
        await transport.client.aclose()
    assert item.text == "once" and len(inbox.items) == 1


async def test_the_probe_says_manual_without_taking_anything(daemon: FakeSignalCliDaemon) -> None:
    client = DaemonClient(daemon.target, daemon.number)
    daemon.member(ALICE).says("waiting")
    assert await client.receive_mode_is_manual() is True
    assert daemon.queued == 1
    await client.aclose()


async def test_a_daemon_that_stops_answering_is_left_for_a_new_connection(
    daemon: FakeSignalCliDaemon, inbox: Inbox
) -> None:
    transport = SignalTransport(DaemonClient(daemon.target, daemon.number))
    async with receiving(transport, inbox, keepalive_interval=0.2):
        await daemon.wait_connected()
        daemon.stalled.add("version")  # the connection looks open but nothing comes back
        await daemon.wait_until(lambda: daemon.subscriptions_opened >= 2)
        daemon.stalled.clear()
        await daemon.wait_connected(opened=2)
        daemon.member(ALICE).says("still received")
        items = await inbox.wait_for(1)
    assert [i.text for i in items] == ["still received"]


async def test_a_read_receipt_has_the_send_results(daemon: FakeSignalCliDaemon) -> None:
    async with line_to(daemon) as line:
        answer = await line.call(
            "sendReceipt", {"recipient": ALICE, "targetTimestamp": [1767225700001]}
        )
        wrong = await line.call(
            "sendReceipt", {"recipient": ALICE, "targetTimestamp": 1, "type": "x"}, 2
        )
    assert answer["result"]["results"][0]["type"] == "SUCCESS"
    assert wrong["error"]["code"] == -1
