"""Photos on the web door: shown to one seat only, stripped, wiped with their copy, sent from
the page to phones, and refused with a clear word when too large or not a photo."""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from PIL import Image
from sqlmodel import Session, select

from bots.web.photos import MAX_PHOTO_BYTES, photo_payload
from relay.clock import FakeClock
from relay.doors import CopyKind
from relay.messages import Attachment, InboundKind
from relay.service import groups as group_admin
from relay.service.web_seats import WebStore
from relay.storage.models import Role, WebCopy
from tests.fakes.signal_server import jpeg_with_gps
from tests.web.door import GROUP, Door, WebMember, run_door
from tests.web.test_no_script import form_key, join_without_script
from tests.web.test_store import seat_in, store

pytestmark = pytest.mark.anyio
ALICE, FAC = "+15145550121", "+15145550123"
GPS = 0x8825

__all__ = ["store"]  # the fixture


def photos_on(door: Door) -> None:
    group_admin.set_basics(door.app.relay, GROUP, group_admin.GroupBasics(allow_media=True))


async def alice_sends_a_photo(door: Door, text: str | None = "look") -> str:
    photo = Attachment("image/jpeg", jpeg_with_gps(), "IMG_0042.jpg")
    return await door.phone_says("alice", text, attachments=(photo,))  # type: ignore[arg-type]


async def waiting(member: WebMember, door: Door, with_photo: bool = True) -> dict[str, object]:
    """Read the member's stream, without acknowledging, until a copy with a photo arrives."""
    found: dict[str, object] = {}

    async def read() -> str:
        async with door.client.stream(
            "GET", "/c/events?after=0", headers=member.headers, timeout=5
        ) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    if event.get("photos") or not with_photo:
                        found.update(event)
                        return "found"
                elif line.startswith(": ping"):
                    return "not yet"
        return "closed"

    await door.until_async(lambda got: got == "found", read, timeout=10)
    return found


def assert_stripped(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    exif = image.getexif()
    assert not exif and not exif.get_ifd(GPS)
    assert b"FakeCam" not in data and b"IMG_0042" not in data


def copies_left(door: Door) -> int:
    with Session(door.app.engine) as s:
        return len(s.exec(select(WebCopy)).all())


@pytest.fixture
async def served(db_url: str, tmp_path: Path) -> AsyncIterator[Door]:
    """The web door on each backend in turn."""
    async for door in run_door(tmp_path, db_url):
        yield door


async def test_a_photo_from_a_phone_is_shown_to_its_seat_only_stripped(served: Door) -> None:
    door = served
    photos_on(door)
    await door.phone("alice", ALICE)
    web, other = await door.join(read=False), await door.join(read=False)

    await alice_sends_a_photo(door)
    event = await waiting(web, door)

    assert str(event["text"]).endswith(": look") and event["photos"] == [0]
    url = f"/c/photo/{event['id']}/0"
    shown = await door.client.get(url, headers=web.headers)
    assert shown.status_code == 200
    assert shown.headers["content-type"] == "image/jpeg"
    assert shown.headers["x-content-type-options"] == "nosniff"
    assert shown.headers["cache-control"] == "no-store"
    assert shown.headers["referrer-policy"] == "no-referrer"
    assert_stripped(shown.content)
    # Another seat, a stranger with a made-up key, and no key at all: the same 404.
    for headers in (other.headers, {"Authorization": "Bearer " + "x" * 43}, {}):
        assert (await door.client.get(url, headers=headers)).status_code == 404

    # The browser has it: acknowledging wipes the copy, and the photo with it.
    await door.client.post("/c/ack", data={"upto": str(event["id"])}, headers=web.headers)
    assert (await door.client.get(url, headers=web.headers)).status_code == 404


async def test_the_page_asks_for_images_from_itself_or_its_own_blobs_only(door: Door) -> None:
    page = await door.client.get("/c")

    csp = page.headers["content-security-policy"]
    assert "img-src 'self' blob:;" in csp and "data:" not in csp
    assert 'type="file"' in page.text and 'accept="image/jpeg,image/png,image/webp"' in page.text


async def test_without_script_a_photo_is_a_link_that_works_once(served: Door) -> None:
    door = served
    photos_on(door)
    await door.phone("alice", ALICE)
    browser = await join_without_script(door)
    await door.until(lambda: any("has joined" in t for t in door.texts_of("alice")))

    await alice_sends_a_photo(door)

    async def page() -> str:
        return (await browser.get("/c")).text

    text = await door.until_async(lambda t: "/c/photo/" in t, page)
    link = re.search(r'href="(/c/photo/\d+/0)"', text)
    assert link is not None and "Open the photo (works once)" in text
    first = await browser.get(link.group(1))
    assert first.status_code == 200 and first.headers["x-content-type-options"] == "nosniff"
    assert_stripped(first.content)
    assert (await browser.get(link.group(1))).status_code == 404
    after = await page()
    assert "/c/photo/" not in after and "This photo was opened already" in after
    assert ">look<" in after  # the words stay until the timer
    await browser.aclose()


async def test_a_deleted_photo_leaves_before_it_is_seen(door: Door) -> None:
    photos_on(door)
    await door.phone("alice", ALICE)
    web = await door.join(read=False)
    ref = await alice_sends_a_photo(door)
    event = await waiting(web, door)

    await door.phone_says("alice", None, InboundKind.DELETE, delete_ref=ref)

    url = f"/c/photo/{event['id']}/0"
    await door.until_async(
        lambda status: status == "404",
        lambda: _status(door.client.get(url, headers=web.headers)),
    )


async def _status(response: object) -> str:
    r = await response  # type: ignore[misc]
    return str(r.status_code)


def photo_file(data: bytes, name: str = "IMG_0042.jpg", ctype: str = "image/jpeg") -> dict:  # type: ignore[type-arg]
    return {"photo": (name, data, ctype)}


async def test_a_photo_from_the_page_reaches_phones_and_other_pages_stripped(door: Door) -> None:
    photos_on(door)
    await door.phone("alice", ALICE)
    web, other = await door.join(), await door.join(read=False)
    name = await door.welcomed(web)

    sent = await door.client.post(
        "/c/send",
        data={"text": "from the library", "nonce": "photo0001"},
        files=photo_file(jpeg_with_gps()),
        headers=web.headers,
    )

    assert sent.status_code == 204
    await door.until(lambda: any(d.attachments for d in door.loop.inbox[ALICE]))
    got = next(d for d in door.loop.inbox[ALICE] if d.attachments)
    assert got.text == f"{name}: from the library"
    ((ctype, filename, data),) = got.attachments
    assert ctype == "image/jpeg" and filename == "photo-1.jpg"
    assert_stripped(data)
    event = await waiting(other, door)
    shown = await door.client.get(f"/c/photo/{event['id']}/0", headers=other.headers)
    assert_stripped(shown.content)
    # The sender's own page notes the photo (it is not kept for them).
    await door.until(lambda: any(t == "from the library\n(a photo)" for t in web.texts))


async def test_a_photo_alone_goes_without_words(door: Door) -> None:
    photos_on(door)
    await door.phone("alice", ALICE)
    web = await door.join()
    name = await door.welcomed(web)

    sent = await door.client.post(
        "/c/send",
        data={"nonce": "photo0002"},
        files=photo_file(jpeg_with_gps()),
        headers=web.headers,
    )

    assert sent.status_code == 204
    await door.until(lambda: any(d.attachments for d in door.loop.inbox[ALICE]))
    assert next(d for d in door.loop.inbox[ALICE] if d.attachments).text == f"{name} sent:"


async def test_too_large_or_not_a_photo_is_refused_with_a_clear_word(door: Door) -> None:
    photos_on(door)
    await door.phone("alice", ALICE)
    web = await door.join()
    await door.welcomed(web)
    before = len(door.texts_of("alice"))

    big = await door.client.post(
        "/c/send",
        data={"text": "big"},
        files=photo_file(b"\xff\xd8\xff" + b"0" * MAX_PHOTO_BYTES),
        headers=web.headers,
    )
    fake = await door.client.post(
        "/c/send",
        data={"text": "fake"},
        files=photo_file(b"#!/bin/sh\necho not a photo\n", "IMG_1.jpg"),
        headers=web.headers,
    )
    broken = await door.client.post(
        "/c/send",
        data={"text": "broken"},
        files=photo_file(b"\xff\xd8\xff\xe0" + b"\x00" * 64),
        headers=web.headers,
    )

    assert big.status_code == 413 and "too large: 8 MB at most" in big.json()["error"]
    for refused in (fake, broken):
        assert refused.status_code == 415 and "Only photos" in refused.json()["error"]
    assert len(door.texts_of("alice")) == before  # nothing went out
    assert not any(t in " ".join(web.texts) for t in ("big", "fake", "broken"))


async def test_a_declared_oversize_body_is_refused_before_it_is_read(door: Door) -> None:
    web = await door.join(read=False)
    port = int(door.base.rsplit(":", 1)[1])
    head = (
        f"POST /c/send HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {web.token}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {50 * 1024 * 1024}\r\n\r\n--x\r\n"
    )

    # Only the headers and a few bytes are sent: the answer comes without waiting for 50 MB.
    async with await anyio.connect_tcp("127.0.0.1", port) as conn:
        await conn.send(head.encode())
        with anyio.fail_after(5):
            answer = await conn.receive()

    assert answer.startswith(b"HTTP/1.1 413")
    assert b"too large: 8 MB at most" in answer


async def test_without_script_a_refused_photo_says_why_on_a_page(door: Door) -> None:
    photos_on(door)
    browser = await join_without_script(door)
    key = form_key((await browser.get("/c")).text)

    r = await browser.post(
        "/c/send",
        data={"text": "hi", "form_key": key},
        files=photo_file(b"not a photo at all", "notes.txt", "text/plain"),
    )

    assert r.status_code == 415
    assert "Only photos can be sent here" in r.text and 'href="/c"' in r.text
    assert r.headers["cache-control"] == "no-store"
    await browser.aclose()


async def test_without_script_a_photo_post_needs_the_form_key(door: Door) -> None:
    photos_on(door)
    await door.phone("alice", ALICE)
    browser = await join_without_script(door)

    forged = await browser.post("/c/send", data={"text": "x"}, files=photo_file(jpeg_with_gps()))

    assert forged.status_code == 403
    assert not any(d.attachments for d in door.loop.inbox[ALICE])
    await browser.aclose()


async def test_where_the_group_keeps_photos_out_the_web_sender_is_told(door: Door) -> None:
    await door.phone("alice", ALICE)
    web = await door.join()
    await door.welcomed(web)

    await door.client.post(
        "/c/send",
        data={"text": "words only", "nonce": "photo0003"},
        files=photo_file(jpeg_with_gps()),
        headers=web.headers,
    )

    await door.until(lambda: any("Photos and files are not shared" in t for t in web.texts))
    await door.until(lambda: any(t.endswith(": words only") for t in door.texts_of("alice")))
    assert not any(d.attachments for d in door.loop.inbox[ALICE])


def test_a_photo_is_sealed_at_rest_and_leaves_with_the_timer(store: WebStore) -> None:
    token, address = seat_in(store, timer=600)
    stripped = Attachment("image/jpeg", jpeg_with_gps(), "photo-1.jpg")
    store.put(address, CopyKind.MESSAGE, "Willow sent:", photos=photo_payload((stripped,)))
    seat = store.authenticate(token)
    assert seat is not None
    (copy,) = store.fetch(seat.seat_hash)
    assert copy.photos == (True,)
    assert store.hand_out(seat.seat_hash, copy.id, 0, once=False) is not None
    database = Path(str(store.engine.url.database))
    on_disk = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert stripped.data[-64:] not in on_disk  # sealed, not in clear
    assert isinstance(store.clock, FakeClock)

    store.clock.advance(seconds=601)

    assert store.hand_out(seat.seat_hash, copy.id, 0, once=False) is None
    assert store.purge() == 1
    with Session(store.engine) as s:
        assert s.exec(select(WebCopy)).all() == []


async def test_a_removed_member_s_photos_go_with_their_seat(door: Door) -> None:
    photos_on(door)
    await door.phone("alice", ALICE)
    await door.phone("fac", FAC, Role.FACILITATOR)
    browser = await join_without_script(door)

    async def page() -> str:
        return (await browser.get("/c")).text

    name = door.name_in([await door.until_async(lambda t: "now in the group as" in t, page)])
    await alice_sends_a_photo(door)
    text = await door.until_async(lambda t: "/c/photo/" in t, page)
    link = re.search(r'href="(/c/photo/\d+/0)"', text)
    assert link is not None

    await door.phone_says("fac", f"/remove {name}")
    await door.until_async(lambda t: "no longer in the group" in t, page)  # read once, then gone

    assert (await browser.get(link.group(1))).status_code == 404
    assert copies_left(door) == 0
    await browser.aclose()


async def test_the_quick_exit_without_script_wipes_what_waited(door: Door) -> None:
    photos_on(door)
    await door.phone("alice", ALICE)
    browser = await join_without_script(door)
    await door.until(lambda: any("has joined" in t for t in door.texts_of("alice")))
    await alice_sends_a_photo(door)

    async def page() -> str:
        return (await browser.get("/c")).text

    text = await door.until_async(lambda t: "/c/photo/" in t, page)
    link = re.search(r'href="(/c/photo/\d+/0)"', text)
    assert link is not None
    cookie = browser.cookies["n"]

    assert (await browser.post("/c/exit")).status_code == 303

    assert copies_left(door) == 0
    # Whoever kept a copy of the cookie finds the seat, but neither the photo nor the words.
    seat_page = (await door.client.get("/c", cookies={"n": cookie})).text
    assert 'name="form_key"' in seat_page and ">look<" not in seat_page
    assert (await door.client.get(link.group(1), cookies={"n": cookie})).status_code == 404
    await browser.aclose()


async def test_an_uploaded_photo_never_touches_the_disk_in_clear(
    door: Door, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos_on(door)
    web = await door.join()
    await door.welcomed(web)
    noise = Image.frombytes("RGB", (800, 600), os.urandom(800 * 600 * 3))
    out = io.BytesIO()
    noise.save(out, format="PNG")  # over a megabyte: past what Starlette keeps in memory
    assert out.tell() > 1024 * 1024
    to_disk: list[object] = []
    real = tempfile.TemporaryFile

    def counted(*args: object, **kwargs: object) -> object:
        to_disk.append(args)
        return real(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(tempfile, "TemporaryFile", counted)  # the standard library's

    sent = await door.client.post(
        "/c/send", files=photo_file(out.getvalue(), "IMG_1.png", "image/png"), headers=web.headers
    )

    assert sent.status_code == 204
    assert to_disk == []


async def test_without_script_the_form_with_an_empty_photo_box_sends_the_words(
    door: Door,
) -> None:
    await door.phone("alice", ALICE)
    browser = await join_without_script(door)
    key = form_key((await browser.get("/c")).text)

    # What a browser posts when the photo box was left empty: a part with no name and no bytes.
    r = await browser.post(
        "/c/send",
        data={"text": "just words", "form_key": key, "nonce": "words0001"},
        files={"photo": ("", b"", "application/octet-stream")},
    )
    empty = await browser.post(
        "/c/send", data={"text": "  ", "form_key": key}, files={"photo": ("", b"", "")}
    )

    assert r.status_code == 303 and r.headers["location"] == "/c"
    await door.until(lambda: any(t.endswith(": just words") for t in door.texts_of("alice")))
    assert empty.status_code == 303  # nothing to send: back to the page
    await browser.aclose()
