"""The REST client at the HTTP level (respx): every endpoint and every error shape."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx

from bots.signal.client import SignalClient
from bots.signal.errors import SignalServiceError
from bots.signal.values import OutgoingFile
from relay.errors import (
    DeliveryError,
    IdentityChangedError,
    PermanentError,
    RateLimitedError,
    Reason,
    RecipientGoneError,
    RetryableError,
)
from tests.signal.conftest import ALICE, ORG

BASE = "http://signal-api:8080"
TOKEN = "5fad97ac-7d06-4e44-b18a-b950b20148ff"
ALICE_UUID = "7d1f6a52-0000-4000-8000-000000000021"

pytestmark = pytest.mark.anyio


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def client() -> AsyncIterator[SignalClient]:
    async with SignalClient("signal-api:8080", ORG) as signal_client:
        yield signal_client


def body_of(route: respx.Route) -> object:
    return json.loads(route.calls.last.request.content)


def assert_no_identifiers(error: BaseException) -> None:
    text = f"{error} {getattr(error, 'detail', '')}"
    for secret in (ALICE, ORG, ALICE_UUID, "15145550", "hello"):
        assert secret not in text


# --- about ---------------------------------------------------------------------------------


async def test_about_in_json_rpc_mode_reports_the_version(
    api: respx.MockRouter, client: SignalClient
) -> None:
    api.get("/v1/about").respond(
        200,
        json={"versions": ["v1", "v2"], "build": 2, "mode": "json-rpc", "version": "0.101"},
    )
    about = await client.check()
    assert (about.mode, about.version, about.build) == ("json-rpc", "0.101", 2)


async def test_about_in_normal_mode_says_to_set_mode_json_rpc(
    api: respx.MockRouter, client: SignalClient
) -> None:
    api.get("/v1/about").respond(200, json={"mode": "normal", "version": "0.101"})
    with pytest.raises(SignalServiceError, match=r"MODE=json-rpc") as caught:
        await client.check()
    assert "'normal'" in str(caught.value)


async def test_an_unreachable_service_names_signal_service(
    api: respx.MockRouter, client: SignalClient
) -> None:
    api.get("/v1/about").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(SignalServiceError, match="SIGNAL_SERVICE"):
        await client.check()


async def test_something_else_at_the_address_is_named(
    api: respx.MockRouter, client: SignalClient
) -> None:
    api.get("/v1/about").respond(200, text="<html>router login</html>")
    with pytest.raises(SignalServiceError, match="does not look like signal-cli-rest-api"):
        await client.check()


# --- send ------------------------------------------------------------------------------------


async def test_send_accepts_the_201_array_of_newer_builds(
    api: respx.MockRouter, client: SignalClient
) -> None:
    route = api.post("/v2/send").respond(201, json=[{"timestamp": "1767225700001"}])
    assert await client.send(ALICE, "Willow: hello") == "1767225700001"
    assert body_of(route) == {
        "number": ORG,
        "recipients": [ALICE],
        "message": "Willow: hello",
        "text_mode": "normal",
    }


async def test_send_accepts_the_single_object_of_0_100(
    api: respx.MockRouter, client: SignalClient
) -> None:
    api.post("/v2/send").respond(201, json={"timestamp": "1767225700002"})
    assert await client.send(ALICE, "hi") == "1767225700002"


async def test_send_with_an_unreadable_201_still_counts_as_sent(
    api: respx.MockRouter, client: SignalClient
) -> None:
    api.post("/v2/send").respond(201, text="")
    assert await client.send(ALICE, "hi") is None


async def test_send_quote_edit_and_view_once_fields(
    api: respx.MockRouter, client: SignalClient
) -> None:
    route = api.post("/v2/send").respond(201, json=[{"timestamp": "3"}])
    await client.send(
        ALICE,
        "reply",
        attachments=[OutgoingFile("image/jpeg", b"\xff\xd8jpeg")],
        quote_timestamp=1767225600100,
        quote_author=ORG,
        quote_message="Willow: hello group",
        edit_timestamp=1767225600200,
        view_once=True,
    )
    body = body_of(route)
    assert isinstance(body, dict)
    assert body["quote_timestamp"] == 1767225600100
    assert body["quote_author"] == ORG
    assert body["quote_message"] == "Willow: hello group"
    assert body["edit_timestamp"] == 1767225600200
    assert body["view_once"] is True
    assert "mentions" not in body


async def test_attachments_go_as_data_uris_with_a_neutral_filename(
    api: respx.MockRouter, client: SignalClient
) -> None:
    route = api.post("/v2/send").respond(201, json=[{"timestamp": "3"}])
    await client.send(
        ALICE,
        "",
        attachments=[
            OutgoingFile("image/jpeg", b"\xff\xd8jpeg"),
            OutgoingFile("application/pdf;name=secret.pdf", b"%PDF"),
        ],
    )
    body = body_of(route)
    assert isinstance(body, dict)
    first, second = body["base64_attachments"]
    assert first == "data:image/jpeg;filename=attachment-1.jpg;base64," + base64.b64encode(
        b"\xff\xd8jpeg"
    ).decode("ascii")
    # A type that would break the server's parsing (or smuggle a name) becomes neutral.
    assert second.startswith("data:application/octet-stream;filename=attachment-2.bin;base64,")


async def test_view_once_without_an_attachment_is_not_sent(
    api: respx.MockRouter, client: SignalClient
) -> None:
    route = api.post("/v2/send").respond(201, json=[{"timestamp": "3"}])
    await client.send(ALICE, "hi", view_once=True)
    body = body_of(route)
    assert isinstance(body, dict)
    assert "view_once" not in body


# --- send errors ---------------------------------------------------------------------------


async def test_429_with_challenge_tokens_keeps_the_token(
    api: respx.MockRouter, client: SignalClient
) -> None:
    api.post("/v2/send").respond(
        429,
        json={
            "error": f"Failed to send message to {ALICE} due to rate limiting",
            "challenge_tokens": [TOKEN],
            "account": ORG,
        },
    )
    with pytest.raises(RateLimitedError) as caught:
        await client.send(ALICE, "hello")
    assert caught.value.reason is Reason.CAPTCHA_REQUIRED
    assert caught.value.challenge == TOKEN
    assert_no_identifiers(caught.value)


async def test_429_without_tokens_is_a_plain_rate_limit_with_retry_after(
    api: respx.MockRouter, client: SignalClient
) -> None:
    api.post("/v2/send").respond(429, headers={"Retry-After": "12"}, json={"error": "slow"})
    with pytest.raises(RateLimitedError) as caught:
        await client.send(ALICE, "hello")
    assert caught.value.reason is Reason.RATE_LIMITED
    assert caught.value.challenge is None
    assert caught.value.retry_after == 12.0


async def test_400_413_rate_limit_exceeded_is_a_rate_limit(
    api: respx.MockRouter, client: SignalClient
) -> None:
    api.post("/v2/send").respond(
        400, json={"error": f"Failed to send message to {ALICE}: [413] Rate limit exceeded: 413"}
    )
    with pytest.raises(RateLimitedError) as caught:
        await client.send(ALICE, "hello")
    assert caught.value.reason is Reason.RATE_LIMITED
    assert_no_identifiers(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "Unable to complete request due to untrusted recipient keys",
        f"Untrusted Identity for {ALICE}",
    ],
)
async def test_400_untrusted_identity_is_identity_changed(
    api: respx.MockRouter, client: SignalClient, text: str
) -> None:
    api.post("/v2/send").respond(400, json={"error": text})
    with pytest.raises(IdentityChangedError) as caught:
        await client.send(ALICE, "hello")
    assert caught.value.reason is Reason.IDENTITY_CHANGED
    assert_no_identifiers(caught.value)


@pytest.mark.parametrize(
    ("reason", "error", "code"),
    [
        ("RATE_LIMIT_FAILURE", RateLimitedError, Reason.RATE_LIMITED),
        ("PROOF_REQUIRED_FAILURE", RateLimitedError, Reason.CAPTCHA_REQUIRED),
        ("IDENTITY_FAILURE", IdentityChangedError, Reason.IDENTITY_CHANGED),
        ("UNREGISTERED_FAILURE", RecipientGoneError, Reason.UNREGISTERED),
        ("NETWORK_FAILURE", RetryableError, Reason.NETWORK),
        ("SOMETHING_NEW", RetryableError, Reason.NETWORK),
    ],
)
async def test_per_recipient_failures_in_a_201_are_raised(
    api: respx.MockRouter,
    client: SignalClient,
    reason: str,
    error: type[DeliveryError],
    code: Reason,
) -> None:
    failure = {"number": ALICE, "uuid": ALICE_UUID, "reason": reason}
    api.post("/v2/send").respond(
        201, json=[{"timestamp": "9", "errors": {"recipients": [failure]}}]
    )
    with pytest.raises(error) as caught:
        await client.send(ALICE, "hello")
    assert caught.value.reason is code
    assert_no_identifiers(caught.value)


async def test_per_recipient_failure_in_the_0_100_object_is_raised(
    api: respx.MockRouter, client: SignalClient
) -> None:
    failure = {"number": ALICE, "reason": "UNREGISTERED_FAILURE"}
    api.post("/v2/send").respond(201, json={"timestamp": "9", "errors": {"recipients": [failure]}})
    with pytest.raises(RecipientGoneError):
        await client.send(ALICE, "hello")


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_retryable_provider_down(
    api: respx.MockRouter, client: SignalClient, status: int
) -> None:
    api.post("/v2/send").respond(status, text=f"upstream {ALICE} failed")
    with pytest.raises(RetryableError) as caught:
        await client.send(ALICE, "hello")
    assert caught.value.reason is Reason.PROVIDER_DOWN
    assert not isinstance(caught.value, PermanentError)
    assert_no_identifiers(caught.value)


@pytest.mark.parametrize(
    ("exception", "code"),
    [
        (httpx.ReadTimeout("timed out"), Reason.NETWORK),
        (httpx.ConnectTimeout("timed out"), Reason.NETWORK),
        (httpx.ConnectError("refused"), Reason.PROVIDER_DOWN),
        (httpx.RemoteProtocolError("reset"), Reason.NETWORK),
    ],
)
async def test_no_answer_is_retryable(
    api: respx.MockRouter, client: SignalClient, exception: Exception, code: Reason
) -> None:
    api.post("/v2/send").mock(side_effect=exception)
    with pytest.raises(RetryableError) as caught:
        await client.send(ALICE, "hello")
    assert caught.value.reason is code


async def test_other_4xx_is_permanent_and_copies_nothing(
    api: respx.MockRouter, client: SignalClient
) -> None:
    api.post("/v2/send").respond(
        400, json={"error": f"Invalid recipient {ALICE} for message 'hello'"}
    )
    with pytest.raises(PermanentError) as caught:
        await client.send(ALICE, "hello")
    assert caught.value.reason is Reason.REJECTED
    assert not isinstance(caught.value, RecipientGoneError)
    assert_no_identifiers(caught.value)


async def test_a_400_for_an_unregistered_user_is_recipient_gone(
    api: respx.MockRouter, client: SignalClient
) -> None:
    api.post("/v2/send").respond(400, json={"error": f"User {ALICE} is not registered."})
    with pytest.raises(RecipientGoneError) as caught:
        await client.send(ALICE, "hello")
    assert_no_identifiers(caught.value)


# --- reactions, deletes, timers ------------------------------------------------------------


async def test_react_posts_to_reactions(api: respx.MockRouter, client: SignalClient) -> None:
    route = api.post(f"/v1/reactions/{ORG}").respond(204)
    await client.react(ALICE, "❤️", target_author=ORG, target_timestamp=1767225600100)
    assert body_of(route) == {
        "recipient": ALICE,
        "reaction": "❤️",
        "target_author": ORG,
        "timestamp": 1767225600100,
    }


async def test_removing_a_reaction_deletes_it(api: respx.MockRouter, client: SignalClient) -> None:
    route = api.delete(f"/v1/reactions/{ORG}").respond(204)
    await client.react(ALICE, "❤️", target_author=ORG, target_timestamp=5, remove=True)
    assert route.called


async def test_a_failed_reaction_is_mapped(api: respx.MockRouter, client: SignalClient) -> None:
    api.post(f"/v1/reactions/{ORG}").respond(400, json={"error": "[413] Rate limit exceeded"})
    with pytest.raises(RateLimitedError):
        await client.react(ALICE, "❤️", target_author=ORG, target_timestamp=5)


async def test_remote_delete(api: respx.MockRouter, client: SignalClient) -> None:
    route = api.delete(f"/v1/remote-delete/{ORG}").respond(201, json={"timestamp": "77"})
    assert await client.remote_delete(ALICE, 1767225600100) == "77"
    assert body_of(route) == {"recipient": ALICE, "timestamp": 1767225600100}


async def test_set_expiration_puts_the_contact(api: respx.MockRouter, client: SignalClient) -> None:
    route = api.put(f"/v1/contacts/{ORG}").respond(204)
    await client.set_expiration(ALICE, 86400)
    assert body_of(route) == {"recipient": ALICE, "expiration_in_seconds": 86400}


# --- attachments ----------------------------------------------------------------------------


async def test_get_and_delete_an_attachment(api: respx.MockRouter, client: SignalClient) -> None:
    api.get("/v1/attachments/3nQkq1nR0bJfEoXy2Z9L.jpg").respond(200, content=b"\xff\xd8data")
    deleted = api.delete("/v1/attachments/3nQkq1nR0bJfEoXy2Z9L.jpg").respond(204)
    assert await client.get_attachment("3nQkq1nR0bJfEoXy2Z9L.jpg") == b"\xff\xd8data"
    await client.delete_attachment("3nQkq1nR0bJfEoXy2Z9L.jpg")
    assert deleted.called


async def test_a_missing_attachment_is_permanent(
    api: respx.MockRouter, client: SignalClient
) -> None:
    api.get("/v1/attachments/gone.jpg").respond(404, json={"error": "file does not exist"})
    with pytest.raises(PermanentError):
        await client.get_attachment("gone.jpg")


async def test_an_oversized_attachment_is_refused(
    api: respx.MockRouter, client: SignalClient
) -> None:
    api.get("/v1/attachments/big.bin").respond(200, content=b"x" * 2048)
    with pytest.raises(PermanentError, match="too large"):
        await client.get_attachment("big.bin", max_bytes=1024)


@pytest.mark.parametrize("attachment_id", ["../../etc/passwd", "..", "a/b", ""])
async def test_an_attachment_id_that_walks_paths_is_refused(
    api: respx.MockRouter, client: SignalClient, attachment_id: str
) -> None:
    with pytest.raises(PermanentError):
        await client.get_attachment(attachment_id)
    assert not api.calls


# --- account -----------------------------------------------------------------------------------


async def test_rate_limit_challenge_submits_token_and_captcha(
    api: respx.MockRouter, client: SignalClient
) -> None:
    route = api.post(f"/v1/accounts/{ORG}/rate-limit-challenge").respond(204)
    await client.submit_rate_limit_challenge(TOKEN, "signal-hcaptcha.5fad97ac.challenge.P1_eyJ")
    assert body_of(route) == {
        "challenge_token": TOKEN,
        "captcha": "signalcaptcha://signal-hcaptcha.5fad97ac.challenge.P1_eyJ",
    }


async def test_search_says_which_numbers_are_on_signal(
    api: respx.MockRouter, client: SignalClient
) -> None:
    route = api.get(f"/v1/search/{ORG}").respond(
        200,
        json=[
            {"number": ALICE, "registered": True},
            {"number": "+15145550123", "registered": False},
        ],
    )
    found = await client.registered([ALICE, "+15145550123", "+15145550124"])
    assert found == {ALICE: True, "+15145550123": False, "+15145550124": False}
    assert route.calls.last.request.url.params.get_list("numbers") == [
        ALICE,
        "+15145550123",
        "+15145550124",
    ]
    assert await client.is_registered(ALICE)
