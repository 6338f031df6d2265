"""Webhook signatures: computed by the real twilio library, checked against PUBLIC_BASE_URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from twilio.request_validator import RequestValidator

from bots.sms.webhook import (
    ForbiddenWebhookError,
    FormData,
    WebhookVerifier,
    parse_form,
    parse_inbound,
    parse_status,
)
from tests.fakes.twilio_server import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, sign
from tests.sms.conftest import INTERNAL, PUBLIC, Core

FIXTURE = Path("/work/shared/fixtures/twilio-inbound.txt")
MEMBER = "+15145550121"


def test_twilio_known_answer_vector() -> None:
    # Twilio's published vector; its numbers stay in this test only.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
        "Caller": "+14158675309",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert RequestValidator("12345").compute_signature(url, params) == (
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    )
    verifier = WebhookVerifier("AC" + "0" * 32, "12345", "https://mycompany.com")
    form = FormData(list(params.items()))
    headers = {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}
    # signature holds; the account check (no AccountSid in a voice vector) is what refuses
    with pytest.raises(ForbiddenWebhookError, match="foreign account"):
        verifier.verify("/myapp.php", "foo=1&bar=2", form, headers)
    with pytest.raises(ForbiddenWebhookError, match="bad signature"):
        verifier.verify("/myapp.php", "foo=1&bar=3", form, headers)


def _fixture_bodies() -> list[tuple[str, str]]:
    """(signed URL, body) for each payload in the shared fixture file."""
    out: list[tuple[str, str]] = []
    url = ""
    for line in FIXTURE.read_text().splitlines():
        if line.startswith("#   https://"):
            url = line[4:].strip()
        elif line and not line.startswith("#"):
            out.append((url, line))
    return out


def test_fixture_bodies_parse_after_signing() -> None:
    (inbound_url, inbound_body), (status_url, status_body) = _fixture_bodies()
    verifier = WebhookVerifier(ACCOUNT_SID, AUTH_TOKEN, PUBLIC)
    validator = RequestValidator(AUTH_TOKEN)

    form = parse_form(inbound_body.encode(), "application/x-www-form-urlencoded")
    sig = validator.compute_signature(inbound_url, dict(parse_qsl(inbound_body, True)))
    verifier.verify("/twilio/sms", "", form, {"X-Twilio-Signature": sig})
    parsed = parse_inbound(form)
    assert parsed.inbound.text == "Bonsoir tout le monde"
    assert parsed.inbound.sender.address == MEMBER
    assert parsed.inbound.dedup_key == "sms:SM0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert parsed.attachments == ()

    form = parse_form(status_body.encode(), "application/x-www-form-urlencoded")
    sig = validator.compute_signature(status_url, dict(parse_qsl(status_body, True)))
    verifier.verify("/twilio/status", "", form, {"X-Twilio-Signature": sig})
    update = parse_status(form)
    assert update is not None
    assert (update.message_sid, update.status.value, update.error_code) == (
        "SM1f2e3d4c5b6a79880716253443526170",
        "delivered",
        None,
    )


def test_blank_values_are_signed_too() -> None:
    # FromZip= and ToZip= are blank in real webhooks; dropping them breaks the signature.
    _, body = _fixture_bodies()[0]
    pairs = parse_qsl(body, keep_blank_values=True)
    assert ("FromZip", "") in pairs
    sig = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + "/twilio/sms", dict(pairs))
    form = parse_form(body.encode(), "application/x-www-form-urlencoded")
    WebhookVerifier(ACCOUNT_SID, AUTH_TOKEN, PUBLIC).verify(
        "/twilio/sms", "", form, {"X-Twilio-Signature": sig}
    )


@pytest.mark.anyio
async def test_signed_for_public_url_is_accepted_at_internal_host(
    app_client: httpx.AsyncClient, core: Core, fake: FakeTwilio
) -> None:
    assert str(app_client.base_url).startswith(INTERNAL)
    hook = fake.inbound(PUBLIC + "/twilio/sms", MEMBER, "hi")
    response = await hook.post(app_client)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.endswith("<Response />")
    assert [p.inbound.text for p in core.inbound] == ["hi"]


@pytest.mark.anyio
async def test_signature_for_the_internal_url_is_rejected(
    app_client: httpx.AsyncClient, core: Core, fake: FakeTwilio
) -> None:
    hook = fake.inbound(INTERNAL + "/twilio/sms", MEMBER, "hi")
    response = await hook.post(app_client)
    assert response.status_code == 403
    assert core.inbound == []


@pytest.mark.anyio
async def test_wrong_scheme_is_rejected(
    app_client: httpx.AsyncClient, core: Core, fake: FakeTwilio
) -> None:
    hook = fake.inbound("http://relay.example.org/twilio/sms", MEMBER, "hi")
    assert (await hook.post(app_client)).status_code == 403
    assert core.inbound == []


@pytest.mark.anyio
async def test_tampered_body_is_rejected(
    app_client: httpx.AsyncClient, core: Core, fake: FakeTwilio
) -> None:
    hook = fake.inbound(PUBLIC + "/twilio/sms", MEMBER, "hi")
    tampered = hook.body.replace(b"Body=hi", b"Body=ho")
    response = await app_client.post(hook.path_and_query, content=tampered, headers=hook.headers())
    assert response.status_code == 403
    assert core.inbound == []


@pytest.mark.anyio
async def test_missing_signature_is_rejected(
    app_client: httpx.AsyncClient, core: Core, fake: FakeTwilio
) -> None:
    hook = fake.inbound(PUBLIC + "/twilio/sms", MEMBER, "hi")
    response = await app_client.post(
        hook.path_and_query, content=hook.body, headers=hook.headers(signature=None)
    )
    assert response.status_code == 403
    assert "Traceback" not in response.text


@pytest.mark.anyio
async def test_foreign_account_is_rejected_even_if_signed_with_our_token(
    app_client: httpx.AsyncClient, core: Core, fake: FakeTwilio
) -> None:
    hook = fake.inbound(PUBLIC + "/twilio/sms", MEMBER, "hi", account_sid="AC" + "9" * 32)
    assert (await hook.post(app_client)).status_code == 403
    assert core.inbound == []


@pytest.mark.anyio
async def test_query_string_is_part_of_the_signed_url(
    app_client: httpx.AsyncClient, core: Core, fake: FakeTwilio
) -> None:
    hook = fake.inbound(PUBLIC + "/twilio/sms?group=g1", MEMBER, "hi")
    assert (await hook.post(app_client)).status_code == 200
    # the same signature posted without the query is not valid
    response = await app_client.post("/twilio/sms", content=hook.body, headers=hook.headers())
    assert response.status_code == 403


@pytest.mark.anyio
async def test_sha256_signature_settings_header(
    app_client: httpx.AsyncClient, core: Core, fake: FakeTwilio
) -> None:
    hook = fake.inbound(PUBLIC + "/twilio/sms", MEMBER, "hi")
    sig256 = RequestValidator(AUTH_TOKEN).compute_signature(hook.url, hook.params, "HMAC_SHA256")
    headers = hook.headers(signature=sig256)
    headers["X-Twilio-Webhooks-Signature-Settings"] = "key=k1,algorithm=HMAC_SHA256"
    response = await app_client.post(hook.path_and_query, content=hook.body, headers=headers)
    assert response.status_code == 200
    # claiming SHA-256 does not make a SHA-1 signature pass
    headers = hook.headers()
    headers["X-Twilio-Webhooks-Signature-Settings"] = "algorithm=HMAC_SHA256"
    response = await app_client.post(hook.path_and_query, content=hook.body, headers=headers)
    assert response.status_code == 403


@pytest.mark.anyio
async def test_status_callback_signature(app_client: httpx.AsyncClient, core: Core) -> None:
    params = {
        "MessageSid": "SM" + "a" * 32,
        "MessageStatus": "sent",
        "AccountSid": ACCOUNT_SID,
    }
    hook = sign(AUTH_TOKEN, PUBLIC + "/twilio/status", params)
    assert (await hook.post(app_client)).status_code == 204
    forged = sign("not-our-token", PUBLIC + "/twilio/status", params)
    assert (await forged.post(app_client)).status_code == 403
    assert len(core.statuses) == 1
