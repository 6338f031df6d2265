"""Photos on the web door: shown to one seat only, sent from the page, wiped with their copy.

A photo for a web member travels inside its copy's sealed payload (``web_copy.payload_enc``),
already stripped by the core (:mod:`relay.inbound.media`); the core hands it out
(:meth:`relay.doors.WebSeats.hand_out`). So it is encrypted at rest like the
copy's text and leaves with it: when the browser acknowledges the copy, when the group's timer
passes, when the seat is forgotten, when a ``/delete`` wipes the copy.

``GET /c/photo/<copy>/<n>`` hands it out to the seat the copy belongs to, and to nobody else:
any other seat, an unknown key, a wiped copy or a photo already taken all get the same 404.
With script on, the page fetches it with the seat's ``Authorization: Bearer`` header, shows it
from a ``blob:`` address and only then acknowledges the copy. Without script, the page links
to it and the cookie opens it once: the photo is taken out of the copy as it is handed out.

A photo sent from the page comes in a ``multipart/form-data`` post to ``/c/send``. The size is
refused from ``Content-Length`` before a byte of the body is read, and again while reading (a
body without a length). Only JPEG, PNG and WebP are taken; each is decoded and re-encoded from
its pixels by Pillow (no EXIF, GPS, XMP, comments or file name survive) before the core sees
it; the core strips it once more like every relayed photo.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import anyio
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from relay.doors import CleanPhoto
from relay.language.i18n import T
from relay.messages import Attachment

log = logging.getLogger(__name__)

MAX_PHOTO_BYTES = 8 * 1024 * 1024  # one phone photo, comfortably; the page says so
MAX_UPLOAD = MAX_PHOTO_BYTES + 64 * 1024  # the photo, the text and the form's own fields
UPLOADS_AT_ONCE = 4  # per web process; more wait their turn before a byte is read
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")
_SNIFF = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}

WORDS: dict[str, T] = {
    "add_photo": T("Add a photo (optional)"),
    "photo": T("Photo"),
    "open_photo": T("Open the photo (works once)"),
    "photo_gone": T("(This photo was opened already, or has left the page.)"),
    "sent_photo": T("(a photo)"),
    "too_big": T("This photo is too large: {mb} MB at most. Nothing was sent."),
    "not_photo": T("Only photos can be sent here (JPEG, PNG or WebP). Nothing was sent."),
    "back": T("Back to the messages"),
}


def photo_words(lang: str) -> dict[str, str]:
    """The photo texts of the page in ``lang``."""
    mb = MAX_PHOTO_BYTES // (1024 * 1024)
    return {key: T(text.msgid, mb=mb).render(lang) for key, text in WORDS.items()}


class UploadError(Exception):
    """A send form the door refuses: ``status`` and the ``WORDS`` key telling the member why
    (``None``: a plain status, nothing to say)."""

    def __init__(self, status: int, key: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.key = key


@dataclass(frozen=True)
class SendForm:
    """A posted send form: its fields, and the photo if one was attached (already stripped)."""

    fields: dict[str, str]
    photo: Attachment | None


class _InMemoryParser(MultiPartParser):
    """Starlette's parser, keeping the file in memory: by default it spills files over 1 MB to
    a temporary file, which would put a photo, GPS and all, on the disk in clear."""

    spool_max_size = MAX_UPLOAD + 1


def upload_limit(scope: Scope) -> int | None:
    """For the app's size guard: the body limit of a photo post to ``/c/send`` (which checks
    the declared size itself, to say why in the member's language), ``None`` for any other
    request (the guard's own small limit applies)."""
    if scope.get("method") != "POST" or scope.get("path") != "/c/send":
        return None
    ctype = dict(scope.get("headers", [])).get(b"content-type", b"")
    if ctype.split(b";")[0].strip().lower() != b"multipart/form-data":
        return None
    return MAX_UPLOAD


def is_multipart(request: Request) -> bool:
    """Whether the post is a ``multipart/form-data`` form (the chat form with its file box)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return ctype == "multipart/form-data"


async def read_multipart(request: Request, clean: CleanPhoto) -> SendForm:
    """The chat form as posted with its file box, or :class:`UploadError` (413 too large,
    415 not a photo, 400 malformed). The photo is stripped (``clean``, the core's) before
    this returns."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_UPLOAD):
        raise UploadError(413, "too_big")

    async def capped() -> AsyncGenerator[bytes, None]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > MAX_UPLOAD:
                raise UploadError(413, "too_big")
            yield chunk

    parser = _InMemoryParser(
        request.headers, capped(), max_files=1, max_fields=8, max_part_size=MAX_UPLOAD
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise UploadError(400) from exc
    fields: dict[str, str] = {}
    upload: UploadFile | None = None
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(key, value)
        elif key == "photo" and upload is None:
            upload = value
    try:
        data = await upload.read() if upload is not None else b""
    finally:
        await form.close()
    if not data:
        return SendForm(fields, None)  # an empty file box: a text-only post
    if len(data) > MAX_PHOTO_BYTES:
        raise UploadError(413, "too_big")
    declared_type = (upload.content_type or "").split(";")[0].strip().lower() if upload else ""
    ctype = _photo_type(data, declared_type)
    if ctype is None:
        raise UploadError(415, "not_photo")
    try:
        cleaned = await anyio.to_thread.run_sync(lambda: clean(Attachment(ctype, data)))
    except ValueError as exc:  # the core's cleaner refuses what it cannot read as a photo
        raise UploadError(415, "not_photo") from exc
    return SendForm(fields, cleaned)


def _photo_type(data: bytes, declared: str) -> str | None:
    """The image type of ``data`` by its first bytes (never by the name or the declared type
    alone: a browser's guess is not a promise)."""
    for magic, ctype in _SNIFF.items():
        if data.startswith(magic):
            return ctype
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    del declared
    return None


def refused(error: UploadError, lang: str, headers: dict[str, str]) -> Response:
    """What the page's script gets for a refused send: the status and, when there is one, the
    reason in the member's language (``{"error": …}``)."""
    message = photo_words(lang)[error.key] if error.key else str(error.status)
    return JSONResponse({"error": message}, error.status, headers=headers)


# --- photos inside copies -------------------------------------------------------------------


def photo_payload(attachments: tuple[Attachment, ...]) -> list[dict[str, str]]:
    """The photos of an outgoing message as a copy's payload keeps them (sealed with it)."""
    return [
        {"type": a.content_type, "data": base64.b64encode(a.data).decode("ascii")}
        for a in attachments
        if a.content_type in PHOTO_TYPES
    ]


def can_show(attachments: tuple[Attachment, ...]) -> bool:
    """Whether every attachment is a photo the page can show (else the core's note goes)."""
    return all(a.content_type in PHOTO_TYPES for a in attachments)


def photo_response(photo: tuple[str, bytes], headers: dict[str, str]) -> Response:
    """A photo, as the page asks for it: its real type only, never sniffed, never cached."""
    ctype, data = photo
    ext = ctype.split("/")[1].replace("jpeg", "jpg")
    return Response(
        data,
        200,
        media_type=ctype,
        headers={
            **headers,
            "x-content-type-options": "nosniff",
            "content-disposition": f'inline; filename="photo.{ext}"',
            "cross-origin-resource-policy": "same-origin",
        },
    )


__all__ = [
    "MAX_PHOTO_BYTES",
    "UPLOADS_AT_ONCE",
    "SendForm",
    "UploadError",
    "can_show",
    "is_multipart",
    "photo_payload",
    "photo_response",
    "photo_words",
    "read_multipart",
    "refused",
    "upload_limit",
]
