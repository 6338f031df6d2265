"""Photos reach SMS members by MMS where the group allows media: the stripped photo is hosted
at an unguessable URL that Twilio fetches once, then it is gone (404) and nothing is left;
where MMS cannot go, the member gets the note instead."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from PIL import Image

from cercle.providers import relay_pending_sms
from relay.messages import Channel
from relay.service.relay import GroupSettings
from relay.storage import media_links
from relay.storage.models import Role
from tests.attacks.conftest import PUBLIC, Desk
from tests.fakes.signal_server import jpeg_with_gps
from tests.fakes.twilio_server import FakeMessage

pytestmark = pytest.mark.anyio
BOB, CAROL = "+15145550161", "+15145550162"
# Outside North America, where Twilio sends no MMS: a mobile number the Australian regulator
# reserves for fiction (0491 570 156), as 555-01xx is in North America.
ABROAD = "+61491570156"


async def photo_group(desk: Desk, *numbers: str) -> dict[str, str]:
    """Group *photos* (media allowed) with these SMS members, all agreed; their pseudonyms."""
    relay = desk.app.relay
    await anyio.to_thread.run_sync(
        lambda: relay.create_group(GroupSettings("photos", "en", 86400, allow_media=True))
    )
    names = {}
    for number in numbers:
        member = await anyio.to_thread.run_sync(
            lambda n=number: relay.enroll(n, "photos", Role.MEMBER, "en", Channel.SMS)
        )
        await desk.sms(number, "AGREE")
        names[number] = str(member.pseudonym)
    await desk.deliver()
    return names


async def bob_sends_a_photo(desk: Desk, text: str = "look") -> None:
    _, url, _ = desk.twilio.add_media("image/jpeg", jpeg_with_gps())
    await desk.sms(BOB, text, media=[(url, "image/jpeg")])
    await relay_pending_sms(desk.app.providers, desk.app.relay)
    await desk.deliver()


def mms_to(desk: Desk, number: str) -> FakeMessage:
    return next(m for m in desk.twilio.sent_to(number) if m.media_urls)


def database_files(desk: Desk) -> bytes:
    db = Path(str(desk.app.engine.url.database))
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


async def test_the_media_url_is_fetched_once_then_404_and_nothing_is_left(desk: Desk) -> None:
    names = await photo_group(desk, BOB, CAROL)

    await bob_sends_a_photo(desk)

    mms = mms_to(desk, CAROL)
    assert mms.body == f"{names[BOB]}: look"
    (url,) = mms.media_urls
    assert url.startswith(f"{PUBLIC}/twilio/media/") and len(url) > len(PUBLIC) + 50
    first = await desk.web.get(url.removeprefix(PUBLIC))
    again = await desk.web.get(url.removeprefix(PUBLIC))
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert not Image.open(io.BytesIO(first.content)).getexif()  # stripped
    assert again.status_code == 404
    media_links.purge_expired(desk.app.engine, desk.app.clock.now())  # the worker's round
    assert media_links.hosted(desk.app.engine) == 0
    assert first.content[-256:] not in database_files(desk)


async def test_a_guessed_or_malformed_media_url_is_404(desk: Desk) -> None:
    await photo_group(desk, BOB, CAROL)
    await bob_sends_a_photo(desk)

    for path in ("/twilio/media/", "/twilio/media/AAAA", "/twilio/media/" + "A" * 43):
        assert (await desk.web.get(path)).status_code == 404
    assert media_links.hosted(desk.app.engine) == 1  # Carol's photo still waits for Twilio


async def test_a_final_status_deletes_what_twilio_did_not_fetch(desk: Desk) -> None:
    await photo_group(desk, BOB, CAROL)
    await bob_sends_a_photo(desk)
    mms = mms_to(desk, CAROL)

    await desk.twilio.status_callback(mms.sid, "failed", 30003).post(desk.web)

    assert media_links.hosted(desk.app.engine) == 0
    assert (await desk.web.get(mms.media_urls[0].removeprefix(PUBLIC))).status_code == 404


async def test_an_unfetched_photo_expires(desk: Desk) -> None:
    await photo_group(desk, BOB, CAROL)
    await bob_sends_a_photo(desk)

    later = desk.app.clock.now() + media_links.TTL + timedelta(seconds=1)

    assert media_links.purge_expired(desk.app.engine, later) == 1
    assert media_links.hosted(desk.app.engine) == 0


async def test_a_failed_send_withdraws_the_photo_at_once(desk: Desk) -> None:
    await photo_group(desk, BOB, CAROL)
    desk.twilio.fail_for(CAROL, status=400, code=21211)

    await bob_sends_a_photo(desk)

    assert media_links.hosted(desk.app.engine) == 0


async def test_outside_north_america_the_note_remains(desk: Desk) -> None:
    names = await photo_group(desk, BOB, ABROAD)

    await bob_sends_a_photo(desk)

    (note,) = [m for m in desk.twilio.sent_to(ABROAD) if m.body.startswith(f"{names[BOB]}: ")]
    assert note.media_urls == [] and "photo" in note.body
    assert media_links.hosted(desk.app.engine) == 0
