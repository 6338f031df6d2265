"""SignalTransport against the fake server: what each Outgoing becomes on the wire."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bots.signal.envelope import ParsedMessage, parse_frame
from bots.signal.transport import SignalTransport
from relay.errors import PermanentError, RateLimitedError, Reason, RecipientGoneError
from relay.messages import Attachment, Outgoing, QuoteOut, Reaction
from relay.transport import Transport
from tests.fakes.signal_server import FakeSignalServer, jpeg_with_gps
from tests.signal.conftest import ALICE, BOB, BOTH_WAYS, ORG

pytestmark = [pytest.mark.anyio, BOTH_WAYS]


async def test_signal_transport_is_a_transport(transport: SignalTransport) -> None:
    assert isinstance(transport, Transport)
    assert transport.supports_timers
    assert transport.supports_media


async def test_bob_receives_willows_words(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    receipt = await transport.send(Outgoing(address=BOB, text="Willow: hello group"))
    [sent] = fake.sent_to(BOB)
    assert sent.message == "Willow: hello group"
    assert receipt.ref == str(sent.timestamp)


async def test_the_0_100_answer_shape_gives_the_same_receipt(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    fake.legacy_send_response = True
    receipt = await transport.send(Outgoing(address=BOB, text="hi"))
    assert receipt.ref == str(fake.sent_to(BOB)[0].timestamp)


async def test_a_quote_of_the_bots_copy_is_authored_by_the_org(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    quote = QuoteOut(target_ref="1767225700005", by_recipient=False, text="Willow: hello")
    await transport.send(Outgoing(address=BOB, text="Ash: same here", quote=quote))
    [sent] = fake.sent_to(BOB)
    assert sent.quote_author == ORG
    assert sent.quote_timestamp == 1767225700005
    assert sent.body["quote_message"] == "Willow: hello"


async def test_a_quote_of_the_recipients_own_message_is_authored_by_them(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    quote = QuoteOut(target_ref="1767225600000", by_recipient=True)
    await transport.send(Outgoing(address=BOB, text="Ash: yes", quote=quote))
    [sent] = fake.sent_to(BOB)
    assert sent.quote_author == BOB
    assert "quote_message" not in sent.body


async def test_an_edit_replaces_the_recipients_copy(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    edit = Outgoing(address=BOB, text="Willow: hi (edited)", edit_ref="1767225700001")
    await transport.send(edit)
    assert fake.sent_to(BOB)[0].edit_timestamp == 1767225700001


async def test_a_delete_removes_the_recipients_copy(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    receipt = await transport.send(Outgoing(address=BOB, text="", delete_ref="1767225700001"))
    assert fake.remote_deletes == [{"recipient": BOB, "timestamp": 1767225700001}]
    assert receipt.ref is not None
    assert fake.sent == []


@pytest.mark.parametrize(("by_recipient", "author"), [(False, ORG), (True, BOB)])
async def test_a_reaction_targets_the_org_or_the_recipient_only(
    fake: FakeSignalServer, transport: SignalTransport, by_recipient: bool, author: str
) -> None:
    reaction = Reaction(emoji="❤️", target_ref="1767225700003")
    await transport.send(
        Outgoing(address=BOB, text="", reaction=reaction, reaction_by_recipient=by_recipient)
    )
    [sent] = fake.reactions
    assert sent["target_author"] == author
    assert sent["timestamp"] == 1767225700003
    assert sent["recipient"] == BOB


async def test_removing_a_reaction(fake: FakeSignalServer, transport: SignalTransport) -> None:
    reaction = Reaction(emoji="❤️", target_ref="1767225700003", remove=True)
    await transport.send(Outgoing(address=BOB, text="", reaction=reaction))
    assert fake.reactions[0]["remove"] is True


async def test_attachments_arrive_under_a_neutral_name(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    photo = Attachment(content_type="image/jpeg", data=b"\xff\xd8\xff", filename="alice_home.jpg")
    await transport.send(Outgoing(address=BOB, text="Willow: look", attachments=(photo,)))
    [sent] = fake.sent_to(BOB)
    assert [(f.content_type, f.filename, f.data) for f in sent.files] == [
        ("image/jpeg", "attachment-1.jpg", b"\xff\xd8\xff")
    ]


async def test_view_once_goes_with_an_attachment(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    photo = Attachment(content_type="image/jpeg", data=b"\xff\xd8\xff")
    await transport.send(Outgoing(address=BOB, text="", attachments=(photo,), view_once=True))
    assert fake.sent_to(BOB)[0].body["view_once"] is True


async def test_the_timer_is_set_per_conversation(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    await transport.set_timer(BOB, 86400)
    assert fake.timers == {BOB: 86400}


async def test_a_malformed_ref_is_never_sent(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    with pytest.raises(PermanentError):
        await transport.send(Outgoing(address=BOB, text="x", edit_ref="12; DROP"))
    assert fake.send_attempts == []


async def test_an_unregistered_recipient_is_gone(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    fake.fail_recipient(BOB, "UNREGISTERED_FAILURE")
    with pytest.raises(RecipientGoneError):
        await transport.send(Outgoing(address=BOB, text="hi"))


async def test_a_captcha_is_asked_then_solved(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    fake.require_captcha("tok-1")
    with pytest.raises(RateLimitedError) as caught:
        await transport.send(Outgoing(address=BOB, text="hi"))
    assert caught.value.reason is Reason.CAPTCHA_REQUIRED
    assert caught.value.challenge == "tok-1"
    await transport.client.submit_rate_limit_challenge("tok-1", "signal-hcaptcha.abc")
    await transport.send(Outgoing(address=BOB, text="hi"))
    assert len(fake.sent_to(BOB)) == 1


async def test_to_inbound_fetches_the_photo_and_deletes_the_server_copy(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    data = jpeg_with_gps()
    fake.store_attachment("a1b2c3.jpg", "image/jpeg", data)
    frame = {
        "envelope": {
            "sourceNumber": ALICE,
            "sourceUuid": "u-1",
            "timestamp": 5,
            "dataMessage": {
                "timestamp": 5,
                "attachments": [
                    {"id": "a1b2c3.jpg", "contentType": "image/jpeg", "filename": "home.jpg"}
                ],
            },
        }
    }
    parsed = parse_frame(frame)
    assert isinstance(parsed, ParsedMessage)
    inbound = await transport.to_inbound(parsed)
    [attachment] = inbound.attachments
    assert attachment.data == data
    assert attachment.content_type == "image/jpeg"
    assert attachment.filename == ""  # the sender's name for the file goes no further
    if fake.kind == "rest":
        assert fake.deleted_attachments == ["a1b2c3.jpg"]
    else:
        # signal-cli's daemon has no delete method: the file stays in its data directory,
        # for the operator's clean-up (docs/signal.md).
        assert fake.attachments == ["a1b2c3.jpg"]
    # The bytes are the member's original, GPS and all: the core strips them before relaying.
    assert Image.open(io.BytesIO(attachment.data)).getexif().get_ifd(0x8825)


async def test_an_attachment_gone_from_the_server_is_left_out(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    frame = {
        "envelope": {
            "sourceUuid": "u-1",
            "timestamp": 5,
            "dataMessage": {"message": "look", "attachments": [{"id": "gone.jpg"}]},
        }
    }
    parsed = parse_frame(frame)
    assert isinstance(parsed, ParsedMessage)
    inbound = await transport.to_inbound(parsed)
    assert inbound.text == "look"
    assert inbound.attachments == ()


async def test_a_new_safety_number_is_trusted_only_when_asked(
    fake: FakeSignalServer, transport: SignalTransport
) -> None:
    await transport.client.trust_identity(BOB, "05123 45678 90123")
    assert fake.trusted == [(BOB, {"verified_safety_number": "051234567890123"})]
