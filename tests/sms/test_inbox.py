"""No inbound SMS is lost between the webhook and the core: each is written (sealed) to the
inbox before Twilio gets its answer; texts go to the core in the same request, photos are
fetched, stripped and relayed by the worker; a retried webhook is relayed once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text, update
from sqlmodel import Session, SQLModel, select

from cercle.providers import relay_pending_sms
from relay.storage.models import PendingInbound
from tests.attacks.conftest import Desk
from tests.fakes.signal_server import jpeg_with_gps

pytestmark = pytest.mark.anyio
BOB, CAROL = "+15145550131", "+15145550132"


def pending(desk: Desk) -> list[PendingInbound]:
    with Session(desk.app.engine) as s:
        return list(s.exec(select(PendingInbound)).all())


def time_passes(desk: Desk) -> None:
    """Every queued row is due now (as after its backoff)."""
    past = desk.app.clock.now() - timedelta(seconds=1)
    with desk.app.engine.begin() as conn:
        conn.execute(update(PendingInbound).values(next_attempt_at=past))


async def worker_round(desk: Desk) -> int:
    claimed = await relay_pending_sms(desk.app.providers, desk.app.relay)
    await desk.deliver()
    return claimed


async def test_a_text_reaches_the_core_in_its_own_request_and_leaves_nothing_queued(
    desk: Desk,
) -> None:
    bob = await desk.enroll(BOB)
    await desk.enroll(CAROL)

    assert (await desk.sms(BOB, "Bonsoir")).status_code == 200
    await desk.deliver()

    assert f"{bob}: Bonsoir" in desk.texts(CAROL)
    assert pending(desk) == []


async def test_a_core_failure_answers_twilio_and_the_worker_relays_the_text_later(
    desk: Desk,
) -> None:
    bob = await desk.enroll(BOB)
    await desk.enroll(CAROL)
    with desk.app.engine.begin() as conn:
        conn.execute(text("DROP TABLE flood_window"))  # the core's next write fails

    assert (await desk.sms(BOB, "Bonsoir")).status_code == 200  # the message is safe
    assert len(pending(desk)) == 1
    SQLModel.metadata.tables["flood_window"].create(desk.app.engine)  # fixed
    time_passes(desk)
    assert await worker_round(desk) == 1

    assert desk.texts(CAROL).count(f"{bob}: Bonsoir") == 1
    assert pending(desk) == []


async def test_the_queued_copy_is_sealed(desk: Desk) -> None:
    await desk.enroll(BOB)
    _, url, _ = desk.twilio.add_media("image/jpeg", jpeg_with_gps())

    await desk.sms(BOB, "a secret word", media=[(url, "image/jpeg")])

    (row,) = pending(desk)
    assert row.payload_enc is not None
    for clear in (b"a secret word", BOB.encode(), BOB[1:].encode(), url.encode()):
        assert clear not in row.payload_enc


async def test_a_photo_is_fetched_and_relayed_by_the_worker_not_the_webhook(desk: Desk) -> None:
    bob = await desk.enroll(BOB)
    await desk.enroll(CAROL)
    message_sid, url, media_sid = desk.twilio.add_media("image/jpeg", jpeg_with_gps())
    before = len(desk.texts(CAROL))

    answer = await desk.sms(BOB, "look", media=[(url, "image/jpeg")], message_sid=message_sid)
    await desk.deliver()

    assert answer.status_code == 200
    assert desk.twilio.cdn_saw_credentials(media_sid) is None  # not fetched in the request
    assert len(desk.texts(CAROL)) == before
    assert await worker_round(desk) == 1
    assert [t for t in desk.texts(CAROL) if t.startswith(f"{bob}: look")] != []
    assert desk.twilio.media_deleted(media_sid)
    assert pending(desk) == []


async def test_a_retried_webhook_is_queued_and_relayed_once(desk: Desk) -> None:
    bob = await desk.enroll(BOB)
    await desk.enroll(CAROL)
    message_sid, url, _ = desk.twilio.add_media("image/jpeg", jpeg_with_gps())
    hook = desk.twilio.inbound(
        "https://relay.example.org/twilio/sms",
        BOB,
        "look",
        media=[(url, "image/jpeg")],
        message_sid=message_sid,
    )

    assert (await hook.post(desk.web)).status_code == 200
    assert (await hook.post(desk.web)).status_code == 200
    assert len(pending(desk)) == 1
    await worker_round(desk)
    assert (await hook.post(desk.web)).status_code == 200  # after it was relayed
    assert pending(desk) == []  # not queued again: the core has it
    await worker_round(desk)

    assert len([t for t in desk.texts(CAROL) if t.startswith(f"{bob}: look")]) == 1


async def test_a_photo_that_cannot_be_fetched_is_retried_then_its_text_goes_alone(
    desk: Desk,
) -> None:
    bob = await desk.enroll(BOB)
    await desk.enroll(CAROL)
    missing = (
        f"https://api.twilio.com/2010-04-01/Accounts/{desk.twilio.account_sid}"
        "/Messages/MM00000000000000000000000000000009/Media/ME00000000000000000000000000000009"
    )

    await desk.sms(BOB, "look", media=[(missing, "image/jpeg")])
    await worker_round(desk)
    assert pending(desk) != []  # kept for another try
    for _ in range(2):
        time_passes(desk)
        await worker_round(desk)

    assert f"{bob}: look" in desk.texts(CAROL)
    assert pending(desk) == []
