"""Hypothesis over every parser that takes outside input, and over the whole relay path.

What tests/test_parsers.py, tests/signal/test_envelope_fuzz.py and tests/sms/ already cover is
not repeated: this adds the relay as a whole under random member text, Signal frames carried
through the core, Twilio forms and signatures, the webhook route, mention offsets around
surrogate pairs, and phone numbers in the formats people type.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import anyio
import httpx
import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from bots.signal.envelope import ParsedMessage, parse_frame
from bots.sms.routes import sms_routes
from bots.sms.webhook import (
    ForbiddenWebhookError,
    FormData,
    MalformedWebhookError,
    WebhookVerifier,
    parse_form,
    parse_inbound,
    parse_status,
)
from bots.sms.webhook import (
    ParsedMessage as SmsMessage,
)
from relay.commands.table import COMMANDS
from relay.errors import CercleError
from relay.inbound.mentions import PLACEHOLDER, rewrite
from relay.inbound.turn import Result
from relay.messages import Channel, Mention, Sender
from relay.phone import mask, normalize
from relay.safety.flood import FloodLimit
from relay.storage.models import MemberState
from tests.fakes.twilio_server import ACCOUNT_SID, AUTH_TOKEN, sign
from tests.room import Person, Room
from tests.signal.conftest import ORG
from tests.signal.test_envelope_fuzz import mutated_frames

PUBLIC = "https://relay.example.org"
UUIDS = {
    "alice": "7d1f6a52-0000-4000-8000-000000000071",
    "bob": "7d1f6a52-0000-4000-8000-000000000072",
    "fac": "7d1f6a52-0000-4000-8000-000000000073",
}
SHARED = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# --- the relay as a whole ---------------------------------------------------------------------

command_words = st.sampled_from(
    [f"/{w}" for c in COMMANDS for w in c.words.values()] + ["/", "//", "/ aide", "AGREE"]
)
member_text = st.one_of(
    st.text(max_size=80),
    st.tuples(command_words, st.text(max_size=40)).map(" ".join),
    st.tuples(command_words, st.sampled_from(["Willow", "@Iris", "Iris Sage", ""]), st.text()).map(
        " ".join
    ),
)


@pytest.fixture(scope="module")
def busy_room(tmp_path_factory: pytest.TempPathFactory) -> Room:
    room = Room(tmp_path_factory.mktemp("fuzz"), allow_rename=True, allow_media=True)
    room.relay.flood_limit = FloodLimit(10**9, 60)  # random text is not a flood
    room.facilitator("fac", uuid=UUIDS["fac"])
    room.member("alice", uuid=UUIDS["alice"])
    room.member("bob", uuid=UUIDS["bob"])
    return room


def _alice(room: Room) -> Person:
    """Alice, enrolled again if a "/leave" sent twice took her out, and not paused."""
    alice = next(p for p in room.people if p.handle == "alice")
    if alice.record_or_none() is None:
        room.people.remove(alice)
        alice = room.member("alice", uuid=UUIDS["alice"])
    if alice.record().state == MemberState.PAUSED:
        alice.says("/resume")
    return alice


@SHARED
@given(text=member_text)
def test_any_text_from_a_member_is_handled_and_never_echoed_or_leaked(
    busy_room: Room, text: str
) -> None:
    room = busy_room
    alice = _alice(room)
    others = [p for p in room.people if p is not alice]
    assume(not any(s in text for p in others for s in (p.number, p.number[2:], p.uuid or "~")))
    for p in room.people:
        p.new()
    name = alice.name

    result = alice.says(text)

    assert isinstance(result, Result)
    relayed = [t for p in others for t in p.new() if t.startswith(f"{name}: ")]
    mine = alice.new()
    assert not (set(relayed) & set(mine)), "the author got their own message back"
    for t in relayed + mine:
        for p in others:
            assert p.number not in t and p.number[2:] not in t
            assert p.uuid is None or p.uuid not in t


@SHARED
@given(frame=mutated_frames())
def test_any_signal_frame_from_a_member_goes_through_the_core_without_raising(
    signal_room: Room, frame: Any
) -> None:
    parsed = parse_frame(json.dumps(frame), own_number=ORG)
    assume(isinstance(parsed, ParsedMessage))
    assert isinstance(parsed, ParsedMessage)
    alice = signal_room.people[0]
    # The frame as if Alice sent it (a frame from a stranger is dropped before anything else).
    inbound = dataclasses.replace(parsed.inbound, sender=Sender(alice.number, alice.uuid))

    result = signal_room.relay.accept(inbound)
    signal_room.deliver()

    assert isinstance(result, Result)
    for p in signal_room.people[1:]:
        assert all(alice.uuid not in t and alice.number not in t for t in p.received)


@pytest.fixture(scope="module")
def signal_room(tmp_path_factory: pytest.TempPathFactory) -> Room:
    room = Room(tmp_path_factory.mktemp("signal"), channel=Channel.SIGNAL, allow_media=True)
    room.relay.flood_limit = FloodLimit(10**9, 60)
    room.member("alice", uuid=UUIDS["alice"])
    room.member("bob", uuid=UUIDS["bob"])
    return room


# --- Twilio forms, signatures and the route -----------------------------------------------------

FIELDS = ["MessageSid", "AccountSid", "From", "To", "Body", "NumMedia", "MediaUrl0",
          "MediaContentType0", "OptOutType", "MessageStatus", "ErrorCode", "FromCity"]  # fmt: skip
field_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "+15145550121", "SM" + "a" * 32, ACCOUNT_SID, "1", "-1", "11", "STOP",
                     f"https://api.twilio.com/2010-04-01/Accounts/AC/Media/ME{'0' * 32}",
                     "delivered", "undelivered", "30003", "9" * 30]),
)  # fmt: skip
form_pairs = st.lists(
    st.tuples(st.one_of(st.sampled_from(FIELDS), st.text(max_size=12)), field_values), max_size=14
)


@settings(max_examples=200, deadline=None)
@given(pairs=form_pairs)
def test_any_twilio_form_is_parsed_or_refused_as_malformed(pairs: list[tuple[str, str]]) -> None:
    form = FormData(pairs)

    for parser in (parse_inbound, parse_status):
        try:
            result = parser(form)
        except MalformedWebhookError:
            continue
        if isinstance(result, SmsMessage):
            inbound = result.inbound
            assert inbound.channel is Channel.SMS
            assert inbound.sender.address == form["From"]
            assert phonenumbers.parse(inbound.sender.address)  # an E.164 number
            assert inbound.dedup_key == f"sms:{form['MessageSid']}"
            assert "FromCity" not in repr(result) and form["From"] not in repr(result)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300), content_type=st.one_of(st.none(), st.text(max_size=40)))
def test_any_body_is_a_form_or_refused_as_malformed(body: bytes, content_type: str | None) -> None:
    try:
        form = parse_form(body, content_type)
    except MalformedWebhookError:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k in form for v in form.getlist(k))


headers_text = st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=60)


@settings(max_examples=200, deadline=None)
@given(
    pairs=form_pairs,
    signature=st.one_of(st.none(), headers_text),
    algorithm=st.one_of(st.none(), headers_text, st.just("algorithm=HMAC_SHA256")),
    path=st.sampled_from(["/twilio/sms", "/twilio/status", "/", ""]),
    query=st.text(max_size=20),
)
def test_a_signature_check_only_ever_refuses_with_403(
    pairs: list[tuple[str, str]],
    signature: str | None,
    algorithm: str | None,
    path: str,
    query: str,
) -> None:
    verifier = WebhookVerifier(ACCOUNT_SID, AUTH_TOKEN, PUBLIC)
    headers = {}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    if algorithm is not None:
        headers["X-Twilio-Webhooks-Signature-Settings"] = algorithm

    with pytest.raises(ForbiddenWebhookError):
        verifier.verify(path, query, FormData(pairs), headers)


class _Recorder:
    def __init__(self) -> None:
        self.accepted: list[SmsMessage] = []

    async def accept(self, parsed: SmsMessage) -> None:
        self.accepted.append(parsed)

    async def on_status(self, *_: object) -> None:
        return None


@settings(max_examples=60, deadline=None)
@given(
    pairs=form_pairs, signed=st.booleans(), path=st.sampled_from(["/twilio/sms", "/twilio/status"])
)
def test_the_webhook_routes_answer_any_form_without_a_500(
    pairs: list[tuple[str, str]], signed: bool, path: str
) -> None:
    recorder = _Recorder()
    app = Starlette(
        routes=sms_routes(
            WebhookVerifier(ACCOUNT_SID, AUTH_TOKEN, PUBLIC), recorder.accept, recorder.on_status
        )
    )
    params = dict(pairs)
    hook = sign(AUTH_TOKEN if signed else "guess", f"{PUBLIC}{path}", params)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5") as c:
            return await c.post(path, content=hook.body, headers=hook.headers())

    response = anyio.run(post)

    assert response.status_code in (200, 204, 400, 403)
    if not signed:
        assert response.status_code in (400, 403) and recorder.accepted == []


# --- mentions around surrogate pairs ----------------------------------------------------------

pieces = st.sampled_from(
    ["a", " ", "é", PLACEHOLDER, "💜", "👩🏽‍🤝‍👩🏻", "🏳️‍⚧️", "\ud83d", "\ude00", "\u200d", "ש"]
)
texts_with_pairs = st.lists(st.one_of(pieces, st.text(max_size=3)), max_size=25).map("".join)


def _units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@settings(max_examples=300, deadline=None)
@given(
    text=texts_with_pairs,
    spans=st.lists(st.tuples(st.integers(-3, 60), st.integers(-1, 4)), max_size=6),
)
def test_mention_offsets_anywhere_in_surrogate_pairs_never_break_the_text(
    text: str, spans: list[tuple[int, int]]
) -> None:
    uuid = UUIDS["alice"]
    mentions = [Mention(start, length, uuid) for start, length in spans]

    out = rewrite(text, mentions, lambda _uuid: "Iris")

    out.encode("utf-8")  # nothing half of a pair, nothing undecodable
    assert PLACEHOLDER not in out
    assert uuid not in out


@settings(max_examples=200, deadline=None)
@given(before=texts_with_pairs, after=texts_with_pairs)
def test_a_mention_placed_after_emoji_is_replaced_exactly(before: str, after: str) -> None:
    assume(PLACEHOLDER not in before + after)
    assume(not any("\ud800" <= c <= "\udfff" for c in before + after))
    text = before + PLACEHOLDER + after

    out = rewrite(text, [Mention(_units(before), 1, UUIDS["bob"])], lambda _uuid: "Sage")

    assert out == before + "@Sage" + after


# --- phone numbers ------------------------------------------------------------------------------


@st.composite
def typed_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A fictional number (+1 514 555 01xx) as people type it, and its E.164 form."""
    line = draw(st.integers(100, 199))
    e164 = f"+1514555{line:04d}"
    sep = draw(st.sampled_from(["", " ", "-", ".", "\u00a0"]))
    national = f"514{sep}555{sep}{line:04d}"
    form = draw(
        st.sampled_from([e164, national, f"(514) 555-{line:04d}", f"1{sep}{national}",
                         f"+1{sep}{national}", f"  {national}  "])
    )  # fmt: skip
    return form, e164


@settings(max_examples=200, deadline=None)
@given(typed=typed_numbers())
def test_a_number_in_any_usual_format_normalizes_to_one_e164(typed: tuple[str, str]) -> None:
    form, e164 = typed

    assert normalize(form) == e164
    assert mask(e164) == "••••••••" + e164[-2:]


@settings(max_examples=200, deadline=None)
@given(raw=st.one_of(st.text(alphabet="0123456789+-() .#*x", max_size=25), st.text(max_size=25)))
def test_anything_else_is_refused_with_a_message_that_does_not_echo_it(raw: str) -> None:
    try:
        out = normalize(raw)
    except CercleError as exc:
        assert exc.safe_message in (
            "That is not a phone number.",
            "That phone number is not valid.",
        )
        return
    assert out.startswith("+") and out[1:].isdigit()
    assert phonenumbers.is_valid_number(phonenumbers.parse(out))
