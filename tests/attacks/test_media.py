"""Attachments as attacks: file names that walk paths or carry identities, decompression bombs,
huge files, and types whose metadata Cercle cannot strip.
"""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from relay.inbound.media import MAX_PIXELS, UnsupportedMedia, sanitize
from relay.inbound.turn import Result
from relay.messages import Attachment
from tests.room import Room

MB = 1024 * 1024


def png_bomb(width: int, height: int) -> bytes:
    """A real, decodable 1-bit PNG of ``width`` x ``height`` pixels: a few KB for megapixels."""
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, format="PNG")
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares gigantic dimensions and holds almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def small_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
def media_room(tmp_path: Path) -> Room:
    return Room(tmp_path, allow_media=True)


def names_seen(room: Room) -> list[str]:
    return [name for p in room.people for d in p.inbox for _, name, _ in d.attachments]


@pytest.mark.parametrize(
    "filename",
    [
        "../../etc/passwd.jpg",
        "..\\..\\Windows\\win.ini.jpg",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd.jpg",
        "/var/lib/cercle/cercle.db.jpg",
        "IMG_Tremblay_514-555-0101.jpg",
        "C:\\Users\\Marie Tremblay\\Pictures\\maison.jpg",
        "\u202egpj.exe",
        "photo.jpg\x00.exe",
        "",
    ],
)
def test_a_file_name_never_reaches_anyone(media_room: Room, filename: str) -> None:
    alice, bob = media_room.member("alice"), media_room.member("bob")

    alice.send(text="look", attachments=(Attachment("image/jpeg", small_jpeg(), filename),))

    assert names_seen(media_room) == ["photo-1.jpg"]
    assert bob.last == f"{alice.name}: look"
    stem = filename.rsplit(".", 1)[0]
    if stem:
        assert all(stem not in t for p in media_room.people for t in p.received)
    media_room.check_invariants()


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_decompression_bomb_is_refused_before_a_pixel_is_decoded(media_room: Room) -> None:
    alice, bob = media_room.member("alice"), media_room.member("bob")
    bomb = png_bomb(8000, 6000)  # 48 megapixels in a few kilobytes
    assert len(bomb) < 64 * 1024

    started = time.monotonic()
    result = alice.send(text="look", attachments=(Attachment("image/png", bomb, "x.png"),))

    assert time.monotonic() - started < 1.5  # decoding it takes seconds and ~700 MB
    assert result == Result.RELAYED
    assert bob.last == f"{alice.name}: look" and bob.inbox[-1].attachments == ()
    assert (
        alice.last == "One of your photos could not be read or is too large, so it was not shared."
    )


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    ("width", "height"), [(MAX_PIXELS // 5000 + 1, 5000), (20_000, 20_000), (2**31 - 1, 2**31 - 1)]
)
def test_an_image_declaring_more_pixels_than_allowed_is_refused(width: int, height: int) -> None:
    with pytest.raises(UnsupportedMedia):
        sanitize(Attachment("image/png", png_header_only(width, height), "x.png"))


def test_twenty_megabytes_of_garbage_called_a_photo_is_refused_and_the_text_goes(
    media_room: Room,
) -> None:
    alice, bob = media_room.member("alice"), media_room.member("bob")
    garbage = os.urandom(20 * MB)

    alice.send(text="look", attachments=(Attachment("image/jpeg", garbage, "big.jpg"),))

    assert bob.last == f"{alice.name}: look" and bob.inbox[-1].attachments == ()
    assert "was not shared" in alice.last


def test_a_twenty_megabyte_document_is_refused_and_its_name_reaches_no_one(
    media_room: Room,
) -> None:
    alice, bob = media_room.member("alice"), media_room.member("bob")
    document = b"%PDF-1.7\n" + os.urandom(20 * MB)

    alice.send(
        text="my complaint",
        attachments=(Attachment("application/pdf", document, "Plainte_Tremblay.pdf"),),
    )

    assert bob.inbox[-1].attachments == ()
    assert all("Tremblay" not in t for t in bob.received)
    assert "only photos" in alice.last


@pytest.mark.parametrize(
    ("ctype", "name"),
    [
        ("application/x-msdownload", "setup.exe"),
        ("text/html", "index.html"),
        ("image/svg+xml", "logo.svg"),
        ("image/heic", "IMG_0001.HEIC"),
        ("application/octet-stream", "x.bin"),
        ("", "noname"),
    ],
)
def test_types_cercle_does_not_relay_are_refused(ctype: str, name: str) -> None:
    with pytest.raises(UnsupportedMedia):
        sanitize(Attachment(ctype, b"<svg onload=alert(1)>" * 10, name))


def test_a_photo_lying_about_its_type_is_re_encoded_as_what_it_claims() -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(out, format="PNG")

    clean = sanitize(Attachment("image/jpeg", out.getvalue(), "x.jpg"))

    assert clean.data[:3] == b"\xff\xd8\xff" and clean.filename == "photo-1.jpg"


def mp4_with_location(iso6709: str) -> bytes:
    """The smallest MP4 that carries a location the way phones write it (udta/©xyz)."""

    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    location = iso6709.encode()
    xyz = box(b"\xa9xyz", struct.pack(">HH", len(location), 0x15C7) + location)
    ftyp = box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
    return ftyp + box(b"moov", box(b"udta", xyz))


@pytest.mark.parametrize("ctype", ["video/mp4", "application/pdf", "audio/aac", "image/gif"])
def test_files_whose_metadata_cannot_be_stripped_are_refused(ctype: str) -> None:
    place = "+45.5017-073.5673/"  # Montreal, as an iPhone writes it

    with pytest.raises(UnsupportedMedia):
        sanitize(Attachment(ctype, mp4_with_location(place), "IMG_0001.MP4"))


def test_a_video_is_not_relayed_and_the_sender_is_told_why(tmp_path: Path) -> None:
    room = Room(tmp_path, allow_media=True)
    alice, bob = room.member("alice"), room.member("bob")

    alice.send(
        text="look",
        attachments=(Attachment("video/mp4", mp4_with_location("+45.5"), "IMG_0001.MP4"),),
    )

    assert bob.last == f"{alice.name}: look" and bob.inbox[-1].attachments == ()
    assert "only photos" in alice.last
    room.check_invariants()
