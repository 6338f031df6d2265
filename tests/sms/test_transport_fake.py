"""End to end against the loopback fake of Twilio: send, fail, callback, delete, media."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest

from bots.sms.client import build_rest_client
from bots.sms.errors import SendOutcomeUnknownError
from bots.sms.media import MediaFetcher, MediaFetchError
from bots.sms.transport import SmsTransport
from bots.sms.webhook import AttachmentRef, MessageStatus
from relay.errors import (
    PermanentError,
    RateLimitedError,
    Reason,
    RecipientGoneError,
    RetryableError,
)
from relay.messages import Outgoing
from tests.fakes.twilio_server import SERVICE_SID, FakeTwilio
from tests.sms.conftest import PUBLIC, Core, make_config

ALICE = "+15145550121"
BOB = "+15145550122"
CAROL = "+15145550123"


@pytest.fixture
def transport(fresh_fake: FakeTwilio) -> Iterator[SmsTransport]:
    yield SmsTransport(make_config(api_base=fresh_fake.base_url))


@pytest.mark.anyio
async def test_transcript_bob_receives_willows_message(
    fresh_fake: FakeTwilio, transport: SmsTransport
) -> None:
    receipt = await transport.send(Outgoing(address=BOB, text="Willow: Bonsoir"))
    (sent,) = fresh_fake.sent_to(BOB)
    assert sent.body == "Willow: Bonsoir"
    assert sent.sid == receipt.ref
    assert sent.sid.startswith("SM")
    assert sent.status_callback == f"{PUBLIC}/twilio/status"
    assert receipt.segments == 1
    assert fresh_fake.sent_to(CAROL) == []


@pytest.mark.anyio
async def test_messaging_service_and_validity_period(fresh_fake: FakeTwilio) -> None:
    transport = SmsTransport(
        make_config(
            api_base=fresh_fake.base_url,
            number=None,
            messaging_service_sid=SERVICE_SID,
            validity_period=120,
        )
    )
    await transport.send(Outgoing(address=BOB, text="hi"))
    (sent,) = fresh_fake.sent_to(BOB)
    assert (sent.messaging_service_sid, sent.validity_period, sent.from_) == (
        SERVICE_SID,
        120,
        None,
    )


@pytest.mark.anyio
async def test_fan_out_concurrently(fresh_fake: FakeTwilio, transport: SmsTransport) -> None:
    refs: list[str | None] = []

    async def send(to: str) -> None:
        refs.append((await transport.send(Outgoing(address=to, text="Willow: hi"))).ref)

    async with anyio.create_task_group() as tg:
        for n in range(100, 120):
            tg.start_soon(send, f"+1514555{n:04d}")
    assert len(set(refs)) == 20
    assert len(fresh_fake.messages) == 20


@pytest.mark.anyio
async def test_server_errors_then_success(fresh_fake: FakeTwilio, transport: SmsTransport) -> None:
    fresh_fake.fail_next(2, status=500)
    for _ in range(2):
        with pytest.raises(RetryableError) as caught:
            await transport.send(Outgoing(address=BOB, text="hi"))
        assert caught.value.reason is Reason.PROVIDER_DOWN
    assert fresh_fake.sent_to(BOB) == []
    await transport.send(Outgoing(address=BOB, text="hi"))
    assert len(fresh_fake.sent_to(BOB)) == 1


@pytest.mark.anyio
async def test_rate_limited(fresh_fake: FakeTwilio, transport: SmsTransport) -> None:
    fresh_fake.fail_next(status=429, code=20429)
    with pytest.raises(RateLimitedError):
        await transport.send(Outgoing(address=BOB, text="hi"))


@pytest.mark.anyio
async def test_opted_out_member_is_gone(fresh_fake: FakeTwilio, transport: SmsTransport) -> None:
    fresh_fake.fail_for(CAROL, status=400, code=21610)
    with pytest.raises(RecipientGoneError) as caught:
        await transport.send(Outgoing(address=CAROL, text="hi"))
    assert caught.value.reason is Reason.OPTED_OUT
    assert CAROL not in str(caught.value)
    await transport.send(Outgoing(address=BOB, text="hi"))  # others unaffected


@pytest.mark.anyio
async def test_invalid_number(fresh_fake: FakeTwilio, transport: SmsTransport) -> None:
    with pytest.raises(PermanentError) as caught:
        await transport.send(Outgoing(address="+12", text="hi"))
    assert caught.value.reason is Reason.INVALID_NUMBER
    fresh_fake.fail_next(status=400, code=21211)
    with pytest.raises(PermanentError) as caught:
        await transport.send(Outgoing(address=BOB, text="hi"))
    assert caught.value.reason is Reason.INVALID_NUMBER
    assert BOB not in str(caught.value)


@pytest.mark.anyio
async def test_timeout_after_twilio_took_the_message(
    fresh_fake: FakeTwilio, transport: SmsTransport
) -> None:
    # The answer is lost but the message went out: the error says the outcome is unknown,
    # and the adapter did not send it a second time by itself.
    fresh_fake.fail_next(status=201, delay=1.0, record=True)
    with pytest.raises(SendOutcomeUnknownError):
        await transport.send(Outgoing(address=BOB, text="hi"))
    with anyio.fail_after(3):  # the fake records it once its delayed answer is written
        while not fresh_fake.sent_to(BOB):
            await anyio.sleep(0.01)
    assert len(fresh_fake.sent_to(BOB)) == 1


@pytest.mark.anyio
async def test_wrong_credentials(fresh_fake: FakeTwilio) -> None:
    transport = SmsTransport(make_config(api_base=fresh_fake.base_url, auth_token="wrong"))
    with pytest.raises(RetryableError, match="20003"):
        await transport.send(Outgoing(address=BOB, text="hi"))


@pytest.mark.anyio
async def test_transcript_delivered_then_record_deleted(
    fresh_fake: FakeTwilio, transport: SmsTransport, app_client: httpx.AsyncClient, core: Core
) -> None:
    receipt = await transport.send(Outgoing(address=BOB, text="Willow: hi"))
    assert receipt.ref is not None
    # Twilio refuses to delete a message still in flight
    with pytest.raises(RetryableError):
        await transport.delete_message(receipt.ref)
    for status in ("sent", "delivered"):
        response = await fresh_fake.status_callback(receipt.ref, status).post(app_client)
        assert response.status_code == 204
    assert [s for _, s, _ in core.statuses] == [MessageStatus.SENT, MessageStatus.DELIVERED]
    await transport.delete_message(receipt.ref)
    assert fresh_fake.deleted == [receipt.ref]
    await transport.delete_message(receipt.ref)  # again: already gone is fine


@pytest.mark.anyio
async def test_undelivered_callback_carries_the_error_code(
    fresh_fake: FakeTwilio, transport: SmsTransport, app_client: httpx.AsyncClient, core: Core
) -> None:
    receipt = await transport.send(Outgoing(address=BOB, text="hi"))
    assert receipt.ref is not None
    await fresh_fake.status_callback(receipt.ref, "undelivered", 30003).post(app_client)
    assert core.statuses == [(receipt.ref, MessageStatus.UNDELIVERED, 30003)]


@pytest.mark.anyio
async def test_transcript_mms_fetched_then_deleted(
    fresh_fake: FakeTwilio, transport: SmsTransport, app_client: httpx.AsyncClient, core: Core
) -> None:
    message_sid, url, media_sid = fresh_fake.add_media("image/jpeg", b"\xff\xd8jpegdata")
    hook = fresh_fake.inbound(
        PUBLIC + "/twilio/sms", ALICE, "", media=[(url, "image/jpeg")], message_sid=message_sid
    )
    assert (await hook.post(app_client)).status_code == 200
    (parsed,) = core.inbound
    assert parsed.inbound.attachments == ()  # nothing fetched inside the webhook

    # later, in the worker:
    fetcher = MediaFetcher(make_config(api_base=fresh_fake.base_url), transport.client)
    (attachment,) = await fetcher.fetch_all_and_delete(parsed.attachments)
    await fetcher.aclose()
    assert (attachment.content_type, attachment.data) == ("image/jpeg", b"\xff\xd8jpegdata")
    assert fresh_fake.media_deleted(media_sid)
    if fresh_fake.cdn_base_url.startswith("http://127.0.0.2"):
        assert fresh_fake.cdn_saw_credentials(media_sid) is False


@pytest.mark.anyio
async def test_media_outside_our_account_is_never_fetched(fresh_fake: FakeTwilio) -> None:
    config = make_config(api_base=fresh_fake.base_url)
    fetcher = MediaFetcher(config, build_rest_client(config))
    ref = AttachmentRef(
        "https://evil.example.org/steal", "image/png", "MM" + "1" * 32, "ME" + "2" * 32
    )
    with pytest.raises(MediaFetchError):
        await fetcher.fetch(ref)
    await fetcher.aclose()


@pytest.mark.anyio
async def test_media_over_the_size_limit(fresh_fake: FakeTwilio, transport: SmsTransport) -> None:
    _, url, media_sid = fresh_fake.add_media("image/png", b"x" * 2048)
    ref = AttachmentRef(url, "image/png", "MM" + "1" * 32, media_sid)
    fetcher = MediaFetcher(
        make_config(api_base=fresh_fake.base_url, media_max_bytes=1024), transport.client
    )
    with pytest.raises(MediaFetchError):
        await fetcher.fetch_all_and_delete((ref,))
    await fetcher.aclose()
    assert not fresh_fake.media_deleted(media_sid)  # kept, so a later try can still get it
