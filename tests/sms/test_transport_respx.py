"""SmsTransport against respx: request shape, base URL, and every error mapping."""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from bots.sms.client import HttpxTwilioClient
from bots.sms.errors import SendOutcomeUnknownError
from bots.sms.transport import SmsTransport
from relay.errors import (
    PermanentError,
    RateLimitedError,
    Reason,
    RecipientGoneError,
    RetryableError,
)
from relay.messages import Attachment, Channel, Outgoing
from relay.transport import Transport
from tests.fakes.twilio_server import ACCOUNT_SID, AUTH_TOKEN, ORG_NUMBER, SERVICE_SID
from tests.sms.conftest import PUBLIC, make_config

EGRESS = "https://egress.example.org"
TO = "+15145550122"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
SID = "SM" + "c" * 32


def ok_json(num_segments: str = "1") -> dict[str, object]:
    return {"sid": SID, "status": "queued", "num_segments": num_segments, "to": TO, "body": "x"}


def error_json(status: int, code: int) -> dict[str, object]:
    # Twilio's messages quote the number; nothing may copy them.
    return {"code": code, "message": f"The 'To' number {TO} is bad", "status": status}


@pytest.fixture
def transport() -> SmsTransport:
    return SmsTransport(make_config(api_base=EGRESS))


def form_of(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


def test_is_a_transport(transport: SmsTransport) -> None:
    assert isinstance(transport, Transport)
    assert transport.channel is Channel.SMS
    assert transport.supports_timers is False
    assert transport.supports_media is False


@pytest.mark.anyio
@respx.mock(base_url=EGRESS, assert_all_called=True)
async def test_send_from_number_goes_to_the_api_base(
    respx_mock: respx.MockRouter, transport: SmsTransport
) -> None:
    route = respx_mock.post(MESSAGES).respond(201, json=ok_json())
    receipt = await transport.send(Outgoing(address=TO, text="Willow: hi"))
    assert (receipt.ref, receipt.segments) == (SID, 1)
    request = route.calls.last.request
    assert form_of(request) == {
        "To": [TO],
        "From": [ORG_NUMBER],
        "Body": ["Willow: hi"],
        "StatusCallback": [f"{PUBLIC}/twilio/status"],
    }
    creds = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {creds}"


@pytest.mark.anyio
@respx.mock(base_url="https://api.twilio.com", assert_all_called=True)
async def test_default_base_is_api_twilio_com(respx_mock: respx.MockRouter) -> None:
    respx_mock.post(MESSAGES).respond(201, json=ok_json())
    transport = SmsTransport(make_config())
    assert (await transport.send(Outgoing(address=TO, text="hi"))).ref == SID


@pytest.mark.anyio
@respx.mock(base_url=EGRESS)
async def test_messaging_service_sends_validity_period(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(MESSAGES).respond(201, json=ok_json(num_segments="0"))
    transport = SmsTransport(
        make_config(api_base=EGRESS, number=None, messaging_service_sid=SERVICE_SID)
    )
    text = "Willow: " + "ç" * 100  # UCS-2, 2 segments; Twilio answers 0 through a service
    receipt = await transport.send(Outgoing(address=TO, text=text))
    assert receipt.segments == 2
    sent = form_of(route.calls.last.request)
    assert sent["MessagingServiceSid"] == [SERVICE_SID]
    assert sent["ValidityPeriod"] == ["600"]
    assert "From" not in sent


@pytest.mark.anyio
@respx.mock(base_url=EGRESS)
async def test_no_validity_period_with_a_bare_number(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    route = respx_mock.post(MESSAGES).respond(201, json=ok_json())
    transport = SmsTransport(make_config(api_base=EGRESS, validity_period=300))
    await transport.send(Outgoing(address=TO, text="hi"))
    assert "ValidityPeriod" not in form_of(route.calls.last.request)
    assert "validity period not applied" in caplog.text


@pytest.mark.anyio
@respx.mock(base_url=EGRESS)
async def test_api_key_authenticates_rest_calls(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(MESSAGES).respond(201, json=ok_json())
    key = "SK" + "1" * 32
    transport = SmsTransport(make_config(api_base=EGRESS, api_key=key, api_secret="s3cret"))
    await transport.send(Outgoing(address=TO, text="hi"))
    creds = base64.b64encode(f"{key}:s3cret".encode()).decode()
    assert route.calls.last.request.headers["Authorization"] == f"Basic {creds}"


@pytest.mark.parametrize(
    ("status", "code", "cls", "reason"),
    [
        (400, 21610, RecipientGoneError, Reason.OPTED_OUT),
        (429, 20429, RateLimitedError, Reason.RATE_LIMITED),
        (429, None, RateLimitedError, Reason.RATE_LIMITED),
        (500, None, RetryableError, Reason.PROVIDER_DOWN),
        (503, 20500, RetryableError, Reason.PROVIDER_DOWN),
        (400, 21211, PermanentError, Reason.INVALID_NUMBER),
        (400, 21614, PermanentError, Reason.INVALID_NUMBER),
        (400, 21612, PermanentError, Reason.UNREACHABLE),
        (400, 21408, PermanentError, Reason.UNREACHABLE),
        (400, 21999, PermanentError, Reason.REJECTED),
        (401, 20003, RetryableError, Reason.PROVIDER_DOWN),
    ],
)
@pytest.mark.anyio
async def test_error_mapping(
    status: int,
    code: int | None,
    cls: type[Exception],
    reason: Reason,
    transport: SmsTransport,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with respx.mock(base_url=EGRESS) as mock:
        body = error_json(status, code) if code else None
        route = (
            mock.post(MESSAGES).respond(status, json=body)
            if body
            else mock.post(MESSAGES).respond(status, text="upstream error")
        )
        with pytest.raises(cls) as caught:
            await transport.send(Outgoing(address=TO, text="Willow: Bonsoir"))
    error = caught.value
    assert error.reason is reason  # type: ignore[attr-defined]
    assert route.call_count == 1  # never retried underneath the delivery engine
    shown = str(error) + repr(error) + str(error.__cause__) + str(error.__context__) + caplog.text
    assert TO not in shown
    assert "Bonsoir" not in shown
    assert error.__cause__ is None
    assert error.__context__ is None
    if code == 21610:
        assert not isinstance(error, RetryableError)


@pytest.mark.anyio
@respx.mock(base_url=EGRESS)
async def test_connect_error_is_retryable_and_sent_once(
    respx_mock: respx.MockRouter, transport: SmsTransport
) -> None:
    route = respx_mock.post(MESSAGES).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(RetryableError) as caught:
        await transport.send(Outgoing(address=TO, text="hi"))
    assert not isinstance(caught.value, SendOutcomeUnknownError)
    assert caught.value.reason is Reason.NETWORK
    assert route.call_count == 1


@pytest.mark.anyio
@respx.mock(base_url=EGRESS)
async def test_read_timeout_means_outcome_unknown(
    respx_mock: respx.MockRouter, transport: SmsTransport
) -> None:
    route = respx_mock.post(MESSAGES).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(SendOutcomeUnknownError):
        await transport.send(Outgoing(address=TO, text="hi"))
    assert route.call_count == 1


@pytest.mark.anyio
@respx.mock(base_url=EGRESS)
async def test_garbled_success_answer_is_outcome_unknown(
    respx_mock: respx.MockRouter, transport: SmsTransport
) -> None:
    respx_mock.post(MESSAGES).respond(201, text="<html>proxy page</html>")
    with pytest.raises(SendOutcomeUnknownError):
        await transport.send(Outgoing(address=TO, text="hi"))


@pytest.mark.anyio
async def test_refused_before_any_request(transport: SmsTransport) -> None:
    with respx.mock(base_url=EGRESS, assert_all_called=False) as mock:
        route = mock.post(MESSAGES).respond(201, json=ok_json())
        with pytest.raises(PermanentError):
            await transport.send(Outgoing(address=TO, text="", delete_ref="123"))
        with pytest.raises(PermanentError):
            await transport.send(Outgoing(address=TO, text=""))
        with pytest.raises(PermanentError):
            pic = Attachment(content_type="image/jpeg", data=b"\xff\xd8")
            await transport.send(Outgoing(address=TO, text="hi", attachments=(pic,)))
        assert route.call_count == 0


@pytest.mark.anyio
async def test_a_long_text_goes_as_numbered_parts_none_over_1600(transport: SmsTransport) -> None:
    words = " ".join(f"mot{i}" for i in range(700))
    with respx.mock(base_url=EGRESS) as mock:
        route = mock.post(MESSAGES).respond(201, json=ok_json())
        receipt = await transport.send(Outgoing(address=TO, text=f"Iris: {words}"))
    bodies = [parse_qs(call.request.content.decode())["Body"][0] for call in route.calls]
    n = len(bodies)
    assert n >= 3
    assert all(len(b) <= 1600 for b in bodies)
    assert [b.rsplit(" ", 1)[-1] for b in bodies] == [f"({i}/{n})" for i in range(1, n + 1)]
    assert " ".join(b.rsplit(" ", 1)[0] for b in bodies) == f"Iris: {words}"
    assert receipt.segments >= n


@dataclass
class Host:
    """An in-memory media host: what was published, bound to a message, withdrawn."""

    published: list[Attachment] = field(default_factory=list)
    bound: list[tuple[list[str], str]] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)

    async def publish(self, attachment: Attachment) -> str:
        self.published.append(attachment)
        return f"https://relay.example.org/twilio/media/tmp-{len(self.published)}"

    async def withdraw(self, urls: Sequence[str]) -> None:
        self.withdrawn.extend(urls)

    async def bind(self, urls: Sequence[str], message_sid: str) -> None:
        self.bound.append((list(urls), message_sid))


@pytest.mark.anyio
async def test_media_is_sent_through_the_host_and_bound_to_its_message() -> None:
    host = Host()
    transport = SmsTransport(make_config(api_base=EGRESS, supports_media=True), media_host=host)
    assert transport.supports_media
    with respx.mock(base_url=EGRESS) as mock:
        route = mock.post(MESSAGES).respond(201, json=ok_json())
        pic = Attachment(content_type="image/jpeg", data=b"\xff\xd8")
        receipt = await transport.send(Outgoing(address=TO, text="", attachments=(pic,)))
    url = "https://relay.example.org/twilio/media/tmp-1"
    assert form_of(route.calls.last.request)["MediaUrl"] == [url]
    assert host.published == [pic]
    assert host.bound == [([url], receipt.ref)]


@pytest.mark.anyio
async def test_a_refused_mms_withdraws_its_media() -> None:
    host = Host()
    transport = SmsTransport(make_config(api_base=EGRESS, supports_media=True), media_host=host)
    with respx.mock(base_url=EGRESS) as mock:
        mock.post(MESSAGES).respond(400, json=error_json(400, 21211))
        pic = Attachment(content_type="image/jpeg", data=b"\xff\xd8")
        with pytest.raises(PermanentError):
            await transport.send(Outgoing(address=TO, text="hi", attachments=(pic,)))
    assert host.withdrawn == ["https://relay.example.org/twilio/media/tmp-1"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [(204, None, None), (404, 20404, None), (409, 20009, RetryableError)],
)
async def test_delete_message(
    status: int, code: int | None, outcome: type[Exception] | None, transport: SmsTransport
) -> None:
    with respx.mock(base_url=EGRESS) as mock:
        route = mock.delete(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{SID}.json")
        route.respond(status, json=error_json(status, code) if code else None)
        if outcome is None:
            await transport.delete_message(SID)
        else:
            with pytest.raises(outcome):
                await transport.delete_message(SID)
        assert route.call_count == 1


@pytest.mark.anyio
async def test_delete_refuses_what_is_not_a_sid(transport: SmsTransport) -> None:
    with pytest.raises(ValueError, match="SID"):
        await transport.delete_message("../Accounts")


@pytest.mark.anyio
async def test_set_timer_is_a_no_op(transport: SmsTransport) -> None:
    await transport.set_timer(TO, 3600)


def test_http_client_keeps_no_body_or_number() -> None:
    http = HttpxTwilioClient(read_timeout=1.0)
    with respx.mock(base_url=EGRESS) as mock:
        mock.post("/x").respond(201, json={"to": TO})
        response = http.request(
            "post",
            EGRESS + "/x",
            data={"To": TO, "Body": "secret"},
            headers={"Authorization": "Basic abc"},
        )
    assert response.status_code == 201
    assert TO in response.text  # the caller gets the real answer
    assert http.last_request is not None
    assert http.last_request.method == "POST"
    assert TO not in str(http.last_request.data)
    assert "Authorization" not in (http.last_request.headers or {})
    assert http.last_response is not None
    assert TO not in http.last_response.text
    assert http.last_response.status_code == 201


def test_http_client_rejects_a_non_positive_timeout() -> None:
    http = HttpxTwilioClient()
    with pytest.raises(ValueError):
        http.request("GET", EGRESS, timeout=0)
