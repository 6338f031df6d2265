"""Malformed Signal frames and Twilio forms: never a crash of the receive loop or the web route,
and never the loss of a good message around them.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from relay.inbound.turn import Result
from relay.messages import Channel, Inbound, InboundKind, Mention, Sender
from tests.attacks.conftest import Desk
from tests.e2e.test_mixed_group import (
    ALICE,
    ALICE_UUID,
    BOB,
    FAC,
    ORG,
    PUBLIC,
    World,
    enroll_everyone,
)
from tests.fakes.twilio_server import sign
from tests.room import Room


def envelope(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"sourceNumber": ALICE, "sourceUuid": ALICE_UUID, "timestamp": 7}
    return {"envelope": base | fields, "account": ORG}


BAD_FRAMES: list[object] = [
    "",
    "{",
    "null",
    "[]",
    '"just a string"',
    "[" * 50_000 + "]" * 50_000,  # deeper than the JSON parser recurses
    "x" * (2 * 1024 * 1024),  # bigger than the receiver accepts
    {"envelope": None},
    {"envelope": []},
    {"envelope": {"dataMessage": {"message": "no sender"}}},
    envelope(dataMessage=None, editMessage=None, syncMessage=None),
    envelope(timestamp=-1, dataMessage={"message": "negative time"}),
    envelope(timestamp="soon", dataMessage={"message": "text time", "timestamp": "soon"}),
    envelope(timestamp=10**30, dataMessage={"message": "far future", "timestamp": 10**30}),
    envelope(dataMessage={"message": ["not", "a", "string"], "timestamp": 8}),
    envelope(dataMessage={"message": "m", "timestamp": 9, "mentions": [{"start": "x"}, None]}),
    envelope(dataMessage={"message": "q", "timestamp": 10, "quote": {"id": "../../x"}}),
    envelope(dataMessage={"reaction": {"emoji": None, "targetSentTimestamp": None}}),
    envelope(dataMessage={"remoteDelete": {"timestamp": "all"}, "timestamp": 11}),
    envelope(editMessage={"targetSentTimestamp": None, "dataMessage": None}),
    envelope(dataMessage={"attachments": [{"id": "../../../etc/passwd"}], "timestamp": 12}),
    envelope(dataMessage={"attachments": "everything", "timestamp": 13, "message": None}),
    envelope(dataMessage={"expiresInSeconds": -5, "isExpirationUpdate": "yes", "timestamp": 14}),
    {"exception": {"type": "UntrustedIdentityException"}, "envelope": None},
    {"error": None},
]


@pytest.mark.anyio
async def test_good_messages_around_garbage_frames_all_arrive(world: World) -> None:
    w = world
    await enroll_everyone(w)
    alice = w.signal.member(ALICE, ALICE_UUID)
    name = w.name(ALICE)

    alice.says("before the garbage")
    for frame in BAD_FRAMES:
        w.signal.push(frame if isinstance(frame, str) else json.dumps(frame))
    alice.says("after the garbage")

    await w.until(lambda: f"{name}: after the garbage" in w.signal_texts(FAC), "after arrived")
    texts = w.signal_texts(FAC)
    assert texts.index(f"{name}: before the garbage") < texts.index(f"{name}: after the garbage")
    # SMS is paced separately from Signal: wait for Bob's copy rather than race it.
    await w.until(lambda: f"{name}: after the garbage" in w.sms_texts(BOB), "after reached bob")
    assert not any("no sender" in t or "negative time" in t for t in texts)


@pytest.mark.anyio
async def test_a_lone_surrogate_from_signal_is_relayed_as_a_replacement_character(
    world: World,
) -> None:
    # JSON may escape half of an emoji ("\\ud83d"); UTF-8 cannot carry it. It used to make the
    # relay raise, so the message was lost with only a log line.
    w = world
    await enroll_everyone(w)
    name = w.name(ALICE)
    frame = envelope(timestamp=21, dataMessage={"message": "half \ud83d an emoji", "timestamp": 21})

    w.signal.push(json.dumps(frame))

    await w.until(lambda: f"{name}: half \ufffd an emoji" in w.signal_texts(FAC), "relayed")


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("half \ud83d an emoji", ()),
        ("/staff half \udc00 an emoji", ()),
        ("\ufffc and \ud83d", (Mention(0, 1, ALICE_UUID),)),
        ("\ud83d\ufffc", (Mention(1, 1, ALICE_UUID),)),
    ],
)
def test_lone_surrogates_never_make_the_relay_raise(
    room: Room, text: str, mentions: tuple[Mention, ...]
) -> None:
    fac = room.facilitator("fac")
    alice = room.member("alice", uuid=ALICE_UUID)
    bob = room.member("bob")

    result = alice.send(text=text, mentions=mentions)

    assert result in (Result.RELAYED, Result.COMMAND)
    got = (bob.new() or fac.new())[-1]
    assert "\ufffd" in got
    got.encode("utf-8")


SMS, STATUS = "/twilio/sms", "/twilio/status"


def unsigned(path: str, body: bytes, content_type: str = "application/x-www-form-urlencoded"):  # type: ignore[no-untyped-def]
    return path, {"content": body, "headers": {"Content-Type": content_type}}


def signed(desk: Desk, path: str, params: dict[str, str]):  # type: ignore[no-untyped-def]
    hook = sign(desk.twilio.auth_token, f"{PUBLIC}{path}", params)
    return path, {"content": hook.body, "headers": hook.headers()}


def malformed_requests(desk: Desk, member: str) -> list:  # type: ignore[type-arg]
    sid, account = "SM" + "c" * 32, desk.twilio.account_sid
    base = {"MessageSid": sid, "AccountSid": account, "From": member, "Body": "x"}
    status = {"MessageSid": sid, "AccountSid": account}
    return [
        unsigned(SMS, b""),
        unsigned(SMS, b"\xff\xfe\x00garbage"),
        unsigned(SMS, b"Body=%ff%fe"),
        unsigned(SMS, b"a=1&&&&=&b"),
        unsigned(SMS, urlencode([("k", "v")] * 500).encode()),
        unsigned(SMS, b'{"Body": "json"}', "application/json"),
        unsigned(SMS, b"Body=hi", "multipart/form-data; boundary=x"),
        unsigned(STATUS, b"MessageStatus=delivered", ""),
        signed(desk, SMS, base | {"From": ""}),
        signed(desk, SMS, base | {"From": "+1"}),
        signed(desk, SMS, base | {"From": f"{member}\n+15145550199"}),
        signed(desk, SMS, base | {"MessageSid": "SM../../x"}),
        signed(desk, SMS, base | {"NumMedia": "-1"}),
        signed(desk, SMS, base | {"NumMedia": "99999999999999999999"}),
        signed(desk, SMS, base | {"NumMedia": "1", "MediaUrl0": "file:///etc/passwd"}),
        signed(desk, SMS, base | {"NumMedia": "1", "MediaUrl0": "https://evil.example.org/x"}),
        signed(desk, STATUS, status),
        signed(desk, STATUS, status | {"MessageStatus": "sent", "ErrorCode": "9" * 5000}),
        signed(desk, STATUS, status | {"MessageStatus": "x" * 5000}),  # unknown: ignored, 204
    ]


@pytest.mark.anyio
async def test_good_sms_around_malformed_forms_all_arrive(desk: Desk) -> None:
    alice, bob = "+15145550181", "+15145550182"
    name = await desk.enroll(alice)
    await desk.enroll(bob)

    first = await desk.sms(alice, "before the garbage")
    statuses = [
        (await desk.web.post(path, **request)).status_code
        for path, request in malformed_requests(desk, alice)
    ]
    last = await desk.sms(alice, "after the garbage")
    await desk.deliver()

    assert first.status_code == last.status_code == 200
    unsigned_ones, signed_ones = statuses[:8], statuses[8:-1]
    assert set(unsigned_ones) <= {400, 403}  # refused as malformed, or before, as unsigned
    assert set(signed_ones) == {400} and statuses[-1] == 204  # an unknown status is ignored
    assert desk.texts(bob)[-2:] == [f"{name}: before the garbage", f"{name}: after the garbage"]


@pytest.mark.anyio
async def test_a_signed_form_with_a_field_repeated_is_read_by_its_first_value(
    desk: Desk,
) -> None:
    alice, bob = "+15145550183", "+15145550184"
    name = await desk.enroll(alice)
    await desk.enroll(bob)
    params = [("MessageSid", "SM" + "d" * 32), ("AccountSid", desk.twilio.account_sid),
              ("From", alice), ("From", bob), ("Body", "one"), ("Body", "two")]  # fmt: skip
    from twilio.request_validator import RequestValidator

    from bots.sms.webhook import FormData

    signature = RequestValidator(desk.twilio.auth_token).compute_signature(
        f"{PUBLIC}/twilio/sms", FormData(params)
    )

    response = await desk.web.post(
        "/twilio/sms",
        content=urlencode(params).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "X-Twilio-Signature": signature},
    )  # fmt: skip
    await desk.deliver()

    assert response.status_code == 200
    assert desk.texts(bob)[-1] == f"{name}: one"


def test_an_inbound_on_another_channel_than_the_members_is_a_strangers(room: Room) -> None:
    alice = room.member("alice")
    inbound = Inbound(
        channel=Channel.SMS,  # the room only has the sandbox
        sender=Sender(address=alice.number),
        dedup_key="sms:SM" + "e" * 32,
        kind=InboundKind.MESSAGE,
        text="hello",
    )

    assert room.relay.accept(inbound) == Result.UNKNOWN_SENDER
