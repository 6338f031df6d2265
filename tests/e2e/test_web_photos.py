"""End to end: photos between Signal, SMS and a web member in Chromium.

The fake signal-cli-rest-api checks every request against its spec; the fake Twilio takes the
MMS and fetches its photo from Cercle like Twilio does. The page's script runs in Chromium.
"""

from __future__ import annotations

import io
import json
import re
from typing import TYPE_CHECKING

import httpx
from PIL import Image
from sqlmodel import Session, select

from relay.service import groups as group_admin
from relay.service.web_seats import COPY_CONTEXT
from relay.storage.models import WebCopy
from tests.browser import assert_accessible, chromium
from tests.e2e.test_web_door import FAC, FAC_UUID, Mixed, enroll_phones, mixed, pseudonym
from tests.fakes.signal_server import jpeg_with_gps

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

__all__ = ["chromium", "mixed"]  # the fixtures
BOB = "+15145550122"
GPS = 0x8825

SHOWN = """() => {
  const img = document.querySelector("#log img");
  return img.complete && img.naturalWidth > 0 && img.src.startsWith("blob:");
}"""
FETCH_AGAIN = """async () => {
  const key = sessionStorage.getItem("cercle.seat");
  const notes = JSON.parse(sessionStorage.getItem("cercle.notes"));
  const shown = notes.find((n) => n.photos && n.photos.length);
  const r = await fetch("/c/photo/" + shown.id + "/0", {
    headers: { Authorization: "Bearer " + key }
  });
  return r.status;
}"""


def assert_stripped(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    exif = image.getexif()
    assert not exif and not exif.get_ifd(GPS)
    assert b"FakeCam" not in data and b"IMG_0042" not in data


def photos_at_rest(m: Mixed) -> int:
    """Photos still held for web members, found by opening every stored copy."""
    with Session(m.app.engine) as s:
        rows = s.exec(select(WebCopy)).all()
    return sum(
        len(json.loads(m.app.relay.keys.decrypt(r.payload_enc, COPY_CONTEXT)).get("photos", []))
        for r in rows
        if r.payload_enc is not None
    )


def carol_joins(m: Mixed, chromium: Browser, photos: list[bytes]) -> tuple[Page, list[str]]:
    m.fac_says("/invite")
    m.wait(lambda: any("/j/" in t for t in m.signal_texts(FAC)))
    link = re.search(r"(http://\S+/j/[A-Za-z0-9_-]{27,})", m.signal_texts(FAC)[-1])
    assert link is not None
    page = chromium.new_context().new_page()
    problems: list[str] = []
    # What the page is given to show: every photo answer passes through here on its way in.

    def keep(route: Route) -> None:
        answer = route.fetch()
        if answer.ok:
            photos.append(answer.body())
        route.fulfill(response=answer)

    page.route("**/c/photo/**", keep)
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.goto(link.group(1))
    page.get_by_role("button", name="I have read this and I agree").click()
    page.get_by_text(re.compile("now in the group as")).wait_for()
    return page, problems


def test_photos_reach_the_page_stripped_and_leave_from_the_page_to_every_door(
    mixed: Mixed, chromium: Browser
) -> None:
    m = mixed
    group_admin.set_basics(m.app.relay, "mardi", group_admin.GroupBasics(allow_media=True))
    enroll_phones(m)
    fetched: list[bytes] = []
    page, problems = carol_joins(m, chromium, fetched)
    carol = pseudonym([page.inner_text("#log")])

    # A Signal member sends a photo with GPS in its EXIF: the page shows it, stripped.
    m.signal.member(FAC, FAC_UUID).sends_photo("look")
    page.locator("#log img").wait_for()
    m.wait(lambda: page.evaluate(SHOWN))
    (shown,) = fetched
    assert_stripped(shown)
    assert Image.open(io.BytesIO(shown)).size == (32, 24)
    assert_accessible(page)

    # Once the browser has it, the copy is acknowledged: the photo is gone from storage and
    # its address answers 404 even to the seat that had it.
    m.wait(lambda: photos_at_rest(m) == 0)
    with Session(m.app.engine) as s:
        assert s.exec(select(WebCopy)).all() == []
    assert page.evaluate(FETCH_AGAIN) == 404

    # Carol sends a photo with GPS from the page: Signal gets a photo, SMS an MMS, both bare.
    page.set_input_files(
        "#photo",
        files=[{"name": "IMG_0042.jpg", "mimeType": "image/jpeg", "buffer": jpeg_with_gps()}],
    )
    page.fill("#text", "from the library")
    page.get_by_role("button", name="Send").click()
    said = f"{carol}: from the library"
    m.wait(lambda: any(x.files and x.message == said for x in m.signal.sent_to(FAC)))
    photo = next(x for x in m.signal.sent_to(FAC) if x.files and x.message == said).files[0]
    assert photo.content_type == "image/jpeg" and "IMG" not in photo.filename
    assert_stripped(photo.data)
    m.wait(lambda: any(x.media_urls and x.body == said for x in m.twilio.sent_to(BOB)))
    (url,) = next(x for x in m.twilio.sent_to(BOB) if x.media_urls).media_urls
    mms = httpx.get(url)
    assert mms.status_code == 200
    assert_stripped(mms.content)
    page.get_by_text("from the library\n(a photo)", exact=False).wait_for()
    assert page.input_value("#text") == ""

    # Too large (checked in the page) or not a photo (checked by the server): a clear word.
    page.set_input_files(
        "#photo",
        files=[{"name": "big.jpg", "mimeType": "image/jpeg", "buffer": b"\xff" * (9 << 20)}],
    )
    page.get_by_role("button", name="Send").click()
    page.get_by_text("This photo is too large").wait_for()
    page.set_input_files(
        "#photo", files=[{"name": "a.jpg", "mimeType": "image/jpeg", "buffer": b"#!/bin/sh\n"}]
    )
    page.get_by_role("button", name="Send").click()
    page.get_by_text("Only photos can be sent here").wait_for()

    assert not [p for p in problems if "Content Security Policy" in p]
    page.context.close()
