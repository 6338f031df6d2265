"""Forged and replayed Twilio webhooks against the real app and relay: a replay changes nothing
(MessageSid de-duplication), a forgery is refused with 403 and changes nothing.
"""

from __future__ import annotations

import pytest

from relay.storage.models import MemberState, Role
from tests.attacks.conftest import Desk
from tests.e2e.test_mixed_group import PUBLIC
from tests.fakes.twilio_server import sign

pytestmark = pytest.mark.anyio

ALICE, BOB = "+15145550111", "+15145550112"
FAC = ALICE  # two people keep these tests quick: Alice facilitates, Bob is a member


@pytest.fixture
async def group(desk: Desk) -> Desk:
    """Alice, a facilitator, and Bob, a member, both on SMS, both agreed."""
    await desk.enroll(ALICE, Role.FACILITATOR)
    await desk.enroll(BOB)
    return desk


async def test_a_replayed_webhook_is_answered_but_relayed_once(group: Desk) -> None:
    hook = group.twilio.inbound(f"{PUBLIC}/twilio/sms", ALICE, "only once please")
    assert (await hook.post(group.web)).status_code == 200
    await group.deliver()
    after_first = group.counts()

    replies = [await hook.post(group.web) for _ in range(5)]
    await group.deliver()

    assert {r.status_code for r in replies} == {200}  # Twilio stops retrying on 200
    assert group.counts() == after_first
    assert sum("only once please" in t for t in group.texts(BOB)) == 1


async def test_a_replayed_stop_tells_staff_once(group: Desk) -> None:
    hook = group.twilio.inbound(f"{PUBLIC}/twilio/sms", BOB, "STOP")

    for _ in range(3):
        await hook.post(group.web)
    await group.deliver()

    assert sum("texted STOP" in t for t in group.texts(FAC)) == 1


async def test_forged_signatures_are_refused_and_change_nothing(group: Desk) -> None:
    hook = group.twilio.inbound(f"{PUBLIC}/twilio/sms", ALICE, "forged words")
    before = group.counts()
    forgeries: list[bytes | None] = [
        None,  # no signature at all
        b"",
        b"Zm9yZ2Vk",
        b"=" * 28,
        b"A" * 10_000,
        "é-not-base64".encode(),
        b"RSOYDt4T1cUTdK1PDd93/VVr8B8=",  # Twilio's published example, for another request
    ]

    for signature in forgeries:
        headers: dict[str, str | bytes] = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        response = await group.web.post(hook.path_and_query, content=hook.body, headers=headers)
        assert response.status_code == 403, signature
    await group.deliver()

    assert group.counts() == before
    assert all("forged words" not in t for t in group.texts(BOB))


async def test_a_webhook_signed_for_another_url_is_refused(group: Desk) -> None:
    before = group.counts()

    for signed_for in (
        "https://evil.example.org/twilio/sms",  # another site's webhook, replayed here
        "http://relay.example.org/twilio/sms",  # the right host over http
        "http://10.0.0.5:8000/twilio/sms",  # the address behind the proxy
        f"{PUBLIC}/twilio/status",  # our other route
        f"{PUBLIC}/twilio/sms/",
        f"{PUBLIC}/twilio/sms?x=1",
    ):
        hook = group.twilio.inbound(signed_for, ALICE, "signed elsewhere")
        response = await group.web.post("/twilio/sms", content=hook.body, headers=hook.headers())
        assert response.status_code == 403, signed_for

    assert group.counts() == before


async def test_a_webhook_of_another_account_is_refused_even_with_our_token(group: Desk) -> None:
    hook = group.twilio.inbound(
        f"{PUBLIC}/twilio/sms", ALICE, "from a subaccount", account_sid="AC" + "9" * 32
    )
    before = group.counts()

    assert (await hook.post(group.web)).status_code == 403
    assert group.counts() == before


async def test_a_tampered_body_under_a_good_signature_is_refused(group: Desk) -> None:
    hook = group.twilio.inbound(f"{PUBLIC}/twilio/sms", ALICE, "hello")
    before = group.counts()

    for tampered in (
        hook.body.replace(b"Body=hello", b"Body=STOP"),
        hook.body.replace(ALICE[1:].encode(), BOB[1:].encode()),
        hook.body + b"&OptOutType=STOP",
        hook.body.replace(b"&FromZip=", b""),  # a blank field dropped
    ):
        response = await group.web.post("/twilio/sms", content=tampered, headers=hook.headers())
        assert response.status_code == 403
    await group.deliver()

    assert group.counts() == before
    assert all(m.state == MemberState.ACTIVE for m in group.app.relay.roster("mardi"))


async def test_a_forged_opt_out_does_not_silence_a_member(group: Desk) -> None:
    forged = sign("guessed-token", f"{PUBLIC}/twilio/sms", {
        "MessageSid": "SM" + "f" * 32, "AccountSid": group.twilio.account_sid,
        "From": BOB, "Body": "STOP", "OptOutType": "STOP",
    })  # fmt: skip

    assert (await forged.post(group.web)).status_code == 403
    await group.sms(ALICE, "still reaching bob")
    await group.deliver()

    assert group.texts(BOB)[-1].endswith("still reaching bob")


async def test_a_forged_status_callback_reports_nothing_to_staff(group: Desk) -> None:
    sid = group.twilio.sent_to(BOB)[-1].sid
    params = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003",
              "AccountSid": group.twilio.account_sid}  # fmt: skip
    forged = sign("guessed-token", f"{PUBLIC}/twilio/status", params)
    before_fac = len(group.texts(FAC))

    assert (await forged.post(group.web)).status_code == 403
    await group.deliver()

    assert len(group.texts(FAC)) == before_fac
