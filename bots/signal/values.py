"""What both ways to Signal share: the values of the seam and the checks on what comes back.

signal-cli-rest-api (:mod:`bots.signal.client`) and signal-cli's own daemon
(:mod:`bots.signal.daemon`) take and give the same things; each check lives here once.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from dataclasses import dataclass, field

from relay.errors import PermanentError, Reason

# Signal's own attachment limit is about 100 MiB; refuse anything larger from the server.
MAX_ATTACHMENT_BYTES = 100 * 1024 * 1024

_MIME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}$")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ATTACHMENT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


@dataclass(frozen=True, slots=True)
class About:
    """What ``GET /v1/about`` says about the service."""

    version: str
    mode: str
    build: int | None = None


@dataclass(frozen=True, slots=True)
class Device:
    """One device of the org's account; ``name`` is what its owner called it."""

    id: int
    name: str = field(repr=False)

    @property
    def is_primary(self) -> bool:
        """Device 1 is the one that registered the number: signal-cli itself, in Cercle."""
        return self.id == 1


@dataclass(frozen=True, slots=True)
class OutgoingFile:
    """A file to send; only its type and bytes go out, under a neutral name."""

    content_type: str
    data: bytes

    def __repr__(self) -> str:
        return f"OutgoingFile({self.content_type}, {len(self.data)} bytes)"


def neutral_filename(content_type: str, index: int) -> str:
    """A file name that says nothing about the sender: ``attachment-1.jpg``."""
    ext = mimetypes.guess_extension(content_type, strict=False) or ".bin"
    if ext == ".jpe":
        ext = ".jpg"
    return f"attachment-{index}{ext}"


def data_uri(file: OutgoingFile, index: int) -> str:
    """The ``base64_attachments`` item signal-cli-rest-api parses: data URI with a filename.

    The server splits the part before ``base64,`` on ``;``, so the type must not contain one.
    """
    mime = file.content_type if _MIME.match(file.content_type) else "application/octet-stream"
    encoded = base64.b64encode(file.data).decode("ascii")
    return f"data:{mime};filename={neutral_filename(mime, index)};base64,{encoded}"


def check_attachment_id(attachment_id: str) -> None:
    """Refuse (:class:`PermanentError`) an attachment id that could walk the service's paths:
    ids come from frames, which anyone who writes to the number shapes."""
    if not _ATTACHMENT_ID.match(attachment_id) or attachment_id in (".", ".."):
        raise PermanentError(Reason.REJECTED, "attachment: malformed id")


def account_uuid(value: object) -> str | None:
    """``value`` as an account id (a UUID, lower-case), or None when it is not one."""
    found = str(value or "")
    return found.lower() if _UUID.fullmatch(found) else None


def captcha_link(captcha: str) -> str:
    """A solved captcha as Signal wants it: ``signalcaptcha://…`` (added when missing)."""
    captcha = captcha.strip()
    return captcha if captcha.startswith("signalcaptcha://") else f"signalcaptcha://{captcha}"
