"""Inbound webhooks: parsing, carrier keywords, media refs, refusals, privacy of logs."""

from __future__ import annotations

import logging

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bots.sms.webhook import (
    CarrierKeyword,
    FormData,
    MalformedWebhookError,
    carrier_keyword,
    is_carrier_keyword,
    parse_form,
    parse_inbound,
)
from relay.messages import Channel, InboundKind
from tests.fakes.twilio_server import ACCOUNT_SID, FakeTwilio
from tests.sms.conftest import PUBLIC, Core

MEMBER = "+15145550121"
SID = "SM" + "0123456789abcdef" * 2
GEO = ("FromCity", "FromState", "FromZip", "FromCountry", "ToCity", "ToState", "ToZip")


def form(**fields: str) -> FormData:
    base = {"MessageSid": SID, "AccountSid": ACCOUNT_SID, "From": MEMBER, "Body": "hi"}
    base.update(fields)
    return FormData(list(base.items()))


def test_plain_sms_becomes_one_inbound() -> None:
    parsed = parse_inbound(form(Body="Bonsoir", FromCity="MONTREAL", FromZip=""))
    inbound = parsed.inbound
    assert inbound.channel is Channel.SMS
    assert inbound.kind is InboundKind.MESSAGE
    assert inbound.sender.address == MEMBER
    assert inbound.dedup_key == f"sms:{SID}"
    assert inbound.text == "Bonsoir"
    assert parsed.message_sid == SID
    assert parsed.keyword is None


def test_nothing_of_the_geo_fields_or_number_in_reprs() -> None:
    parsed = parse_inbound(form(Body="Bonsoir", FromCity="MONTREAL", FromState="QC"))
    shown = repr(parsed) + repr(parsed.inbound) + repr(parsed.inbound.sender)
    for secret in ("MONTREAL", "QC", MEMBER, "Bonsoir"):
        assert secret not in shown


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        " Stop \n",
        "STOPALL",
        "unsubscribe",
        "CANCEL",
        "End",
        "QUIT",
        "REVOKE",
        "optout",
    ],
)
def test_opt_out_words(body: str) -> None:
    parsed = parse_inbound(form(Body=body))
    assert parsed.inbound.kind is InboundKind.OPTED_OUT
    assert parsed.inbound.text is None  # never anything to rebroadcast
    assert parsed.keyword is CarrierKeyword.STOP


@pytest.mark.parametrize("body", ["START", "unstop", " Start "])
def test_opt_in_words(body: str) -> None:
    parsed = parse_inbound(form(Body=body))
    assert parsed.inbound.kind is InboundKind.OPTED_IN
    assert parsed.inbound.text is None


@pytest.mark.parametrize("body", ["HELP", "info", " Help "])
def test_help_words_stay_messages_but_are_flagged(body: str) -> None:
    parsed = parse_inbound(form(Body=body))
    assert parsed.inbound.kind is InboundKind.MESSAGE
    assert parsed.inbound.text == body
    assert parsed.keyword is CarrierKeyword.HELP
    assert is_carrier_keyword(parsed.inbound.text)


@pytest.mark.parametrize(
    "body", ["please stop", "STOP.", "stop it", "I want to end this", "starting", "helpful"]
)
def test_words_inside_sentences_are_not_keywords(body: str) -> None:
    parsed = parse_inbound(form(Body=body))
    assert parsed.inbound.kind is InboundKind.MESSAGE
    assert parsed.inbound.text == body
    assert not is_carrier_keyword(body)


def test_opt_out_type_wins_over_the_body() -> None:
    # Advanced Opt-Out with a custom French keyword: the body alone would not match.
    parsed = parse_inbound(form(Body="ARRET", OptOutType="STOP"))
    assert parsed.inbound.kind is InboundKind.OPTED_OUT
    parsed = parse_inbound(form(Body="STOP", OptOutType="START"))
    assert parsed.inbound.kind is InboundKind.OPTED_IN
    parsed = parse_inbound(form(Body="AIDE", OptOutType="help"))
    assert parsed.inbound.kind is InboundKind.MESSAGE
    assert parsed.keyword is CarrierKeyword.HELP


def test_unknown_opt_out_type_falls_back_to_the_body() -> None:
    assert parse_inbound(form(Body="hello", OptOutType="WHATEVER")).keyword is None


@given(st.text(max_size=40))
def test_keyword_matching_never_crashes_and_is_whole_body(text: str) -> None:
    kw = carrier_keyword(text)
    if kw is not None:
        assert text.strip().upper().isalpha()


def test_media_refs_are_kept_apart_from_the_inbound() -> None:
    url = (
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"
        f"/Messages/MM{'1' * 32}/Media/ME{'2' * 32}"
    )
    parsed = parse_inbound(
        form(Body="", NumMedia="1", MediaUrl0=url, MediaContentType0="image/jpeg")
    )
    assert parsed.inbound.text is None
    assert parsed.inbound.attachments == ()
    (ref,) = parsed.attachments
    assert (ref.content_type, ref.media_sid) == ("image/jpeg", "ME" + "2" * 32)
    assert url not in repr(parsed) + repr(ref)


@pytest.mark.parametrize(
    "fields",
    [
        {"MessageSid": ""},
        {"MessageSid": "not-a-sid"},
        {"From": ""},
        {"From": "12345"},  # a short code cannot be a member
        {"NumMedia": "x"},
        {"NumMedia": "11"},
        {"NumMedia": "1"},  # no MediaUrl0
        {"NumMedia": "1", "MediaUrl0": "http://example.org/x"},
    ],
)
def test_malformed_inbound(fields: dict[str, str]) -> None:
    with pytest.raises(MalformedWebhookError):
        parse_inbound(form(**fields))


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"a=1", "application/json"),
        (b"a=1", None),
        (b"\xff\xfe=1", "application/x-www-form-urlencoded"),
        (b"a=%ff", "application/x-www-form-urlencoded"),
        (b"x" * 70000, "application/x-www-form-urlencoded"),
    ],
)
def test_malformed_forms(body: bytes, content_type: str | None) -> None:
    with pytest.raises(MalformedWebhookError):
        parse_form(body, content_type)


# --- through the routes ---


@pytest.mark.anyio
async def test_transcript_member_texts_the_group(
    app_client: httpx.AsyncClient, core: Core, fake: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = fake.inbound(PUBLIC + "/twilio/sms", MEMBER, "Bonsoir tout le monde")
    response = await hook.post(app_client)
    assert response.status_code == 200
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    (parsed,) = core.inbound
    assert parsed.inbound.text == "Bonsoir tout le monde"
    logged = caplog.text
    for secret in (MEMBER, "Bonsoir", "MONTREAL", hook.params["MessageSid"]):
        assert secret not in logged


@pytest.mark.anyio
async def test_transcript_member_texts_stop(
    app_client: httpx.AsyncClient, core: Core, fake: FakeTwilio
) -> None:
    await fake.inbound(PUBLIC + "/twilio/sms", MEMBER, "stop").post(app_client)
    assert [p.inbound.kind for p in core.inbound] == [InboundKind.OPTED_OUT]


@pytest.mark.anyio
async def test_replay_is_passed_with_the_same_dedup_key(
    app_client: httpx.AsyncClient, core: Core, fake: FakeTwilio
) -> None:
    # Dedup is the core's (it stores a keyed hash); the adapter must give the same key.
    hook = fake.inbound(PUBLIC + "/twilio/sms", MEMBER, "hi")
    await hook.post(app_client)
    await hook.post(app_client)
    assert len({p.inbound.dedup_key for p in core.inbound}) == 1


@pytest.mark.anyio
async def test_signed_but_malformed_is_400(
    app_client: httpx.AsyncClient, core: Core, fake: FakeTwilio
) -> None:
    hook = fake.inbound(PUBLIC + "/twilio/sms", "not-a-number", "hi")
    response = await hook.post(app_client)
    assert response.status_code == 400
    assert core.inbound == []


@pytest.mark.anyio
async def test_not_a_form_is_400(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post("/twilio/sms", json={"Body": "hi"})
    assert response.status_code == 400


@pytest.mark.anyio
async def test_huge_body_is_refused_before_parsing(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post(
        "/twilio/sms",
        content=b"Body=" + b"a" * 100_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


@pytest.mark.anyio
async def test_core_failure_is_500_with_a_reference_and_no_trace(
    app_client: httpx.AsyncClient, core: Core, fake: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    core.explode = True
    response = await fake.inbound(PUBLIC + "/twilio/sms", MEMBER, "Bonsoir").post(app_client)
    assert response.status_code == 500
    assert response.text.startswith("error ")
    assert "Traceback" not in response.text
    assert "RuntimeError" in caplog.text
    assert MEMBER not in caplog.text
    assert "Bonsoir" not in caplog.text


@pytest.mark.anyio
async def test_get_is_not_allowed(app_client: httpx.AsyncClient) -> None:
    assert (await app_client.get("/twilio/sms")).status_code == 405
