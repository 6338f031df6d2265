"""One test per fault found in signalbot 2.2.1, proving our adapter does not have it.

See docs/decisions/0001-own-signal-adapter-not-signalbot.md for where each fault lives.
"""

from __future__ import annotations

import json
import logging

import pytest

from bots.signal.envelope import ParsedMessage, parse_frame
from bots.signal.transport import SignalTransport
from relay.errors import RateLimitedError, Reason, RecipientGoneError
from relay.messages import Outgoing, QuoteOut
from tests.fakes.signal_server import FakeSignalServer, jpeg_with_gps
from tests.signal.conftest import (
    ALICE,
    ALICE_UUID,
    BOB,
    BOB_UUID,
    ORG,
    Inbox,
    fixture_frames,
    receiving,
)

pytestmark = pytest.mark.anyio


async def test_a_clean_websocket_close_does_not_end_receiving(
    fake: FakeSignalServer, transport: SignalTransport, inbox: Inbox
) -> None:
    # signalbot: the receive generator returns on a clean close and its restart helper
    # treats a return as "done", so the bot stops receiving for good.
    async with receiving(transport, inbox):
        await fake.wait_connected()
        alice = fake.member(ALICE)
        for round_ in range(1, 4):
            fake.close_websockets(1000)
            await fake.wait_connected(opened=round_ + 1)
            alice.says(f"after clean close {round_}")
            await inbox.wait_for(round_)
    assert [i.text for i in inbox.items] == [f"after clean close {n}" for n in (1, 2, 3)]


async def test_a_linked_device_message_is_never_presented_as_a_members(
    fake: FakeSignalServer, transport: SignalTransport, inbox: Inbox
) -> None:
    # signalbot: a sync message's source is set to its *destination*, so what the operator
    # typed on a linked desktop reads as the member's own message.
    async with receiving(transport, inbox) as receiver:
        await fake.wait_connected()
        fake.linked_device_says("typed on a linked desktop", to=ALICE)
        fake.member(ALICE).says("alice's own words")
        await inbox.wait_for(1)
    assert [i.text for i in inbox.items] == ["alice's own words"]
    assert receiver.stats.dropped == {"sync": 1}


async def test_a_quote_never_carries_the_quoted_authors_number(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    # signalbot: to_send_message() copies quote.author (a third member's number) into the
    # message it relays. Here the quote a member sent keeps no author at all ...
    frame = dict(fixture_frames())["quote of a message the bot sent to this member"]
    frame["envelope"]["dataMessage"]["quote"]["author"] = BOB
    frame["envelope"]["dataMessage"]["quote"]["authorNumber"] = BOB
    frame["envelope"]["dataMessage"]["quote"]["authorUuid"] = BOB_UUID
    frame["envelope"]["sourceNumber"] = ALICE
    frame["envelope"]["sourceUuid"] = ALICE_UUID
    parsed = parse_frame(json.dumps(frame))
    assert isinstance(parsed, ParsedMessage)
    inbound = parsed.inbound
    carried = repr([getattr(inbound, name) for name in inbound.__dataclass_fields__])
    assert BOB not in carried
    assert BOB_UUID not in carried
    # ... and a quote we send is authored by the org or by the recipient, nobody else.
    for by_recipient in (False, True):
        quote = QuoteOut(target_ref="1767225700001", by_recipient=by_recipient)
        await transport.send(Outgoing(address=ALICE, text="Ash: me too", quote=quote))
    authors = [m.quote_author for m in fake.sent_to(ALICE)]
    assert authors == [ORG, ALICE]


async def test_rate_limit_challenge_tokens_are_kept(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    # signalbot: raise_for_status() turns the 429 into a bare HTTP error; the body with
    # challenge_tokens is never read, so nobody can lift the limit.
    fake.require_captcha("5fad97ac-7d06-4e44-b18a-b950b20148ff")
    with pytest.raises(RateLimitedError) as caught:
        await transport.send(Outgoing(address=ALICE, text="Willow: hi"))
    assert caught.value.reason is Reason.CAPTCHA_REQUIRED
    assert caught.value.challenge == "5fad97ac-7d06-4e44-b18a-b950b20148ff"


async def test_a_per_recipient_failure_is_raised_not_just_logged(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    # signalbot: per-recipient failures in a 201 are logged (with the number) and the send
    # counts as delivered.
    fake.fail_recipient(ALICE, "UNREGISTERED_FAILURE")
    with pytest.raises(RecipientGoneError):
        await transport.send(Outgoing(address=ALICE, text="Willow: hi"))


SECRETS = (
    ORG,
    ALICE,
    BOB,
    "15145550",
    ALICE_UUID,
    BOB_UUID,
    "7d1f6a52",
    "Profile Name",
    "hello group",
    "no number here",
    "same here",
    "thanks",
    "typed on a linked desktop",
    "IMG_0042",
    "Willow",
)


async def test_nothing_logs_raw_envelopes_or_identifiers(
    fake: FakeSignalServer, transport: SignalTransport, caplog: pytest.LogCaptureFixture
) -> None:
    # signalbot: every raw frame is logged at INFO ("[Raw Message] %s"), and every sent text.
    caplog.set_level(logging.DEBUG)
    fake.store_attachment("3nQkq1nR0bJfEoXy2Z9L.jpg", "image/jpeg", jpeg_with_gps())
    frames = [frame for _, frame in fixture_frames()]
    inbox = Inbox()

    async def failing_once(inbound: object) -> None:
        await inbox(inbound)  # type: ignore[arg-type]
        if len(inbox.items) == 1:
            raise ValueError(f"no member {ALICE} with text hello group")

    async with receiving(transport, failing_once):
        await fake.wait_connected()
        for frame in frames:
            fake.push(frame)
        fake.push(frames[0])  # a duplicate
        fake.push("garbage hello group")
        await inbox.wait_for(10)
        fake.close_websockets(1000)
        await fake.wait_connected(opened=2)
    await transport.send(Outgoing(address=ALICE, text="Willow: hello group"))
    await transport.set_timer(ALICE, 604800)
    fake.fail_next_send(400, {"error": f"Untrusted identity for {ALICE}: hello group"})
    with pytest.raises(Exception, match="identity"):
        await transport.send(Outgoing(address=ALICE, text="Willow: hello group"))
    await transport.client.is_registered(BOB)

    ours = [r for r in caplog.records if not r.name.startswith("uvicorn")]
    assert ours, "the session logged nothing at all"
    for record in ours:
        text = f"{record.getMessage()} {record.exc_text or ''}"
        for secret in SECRETS:
            assert secret not in text, (record.name, record.levelname, secret)
