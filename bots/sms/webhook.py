"""Authenticating and parsing what Twilio posts to us: inbound messages and status callbacks.

Order matters and is fixed by :func:`bots.sms.routes.sms_routes`: size check, form parsing
(blank values kept, since they are signed too), signature against the URL rebuilt from
``PUBLIC_BASE_URL``, AccountSid, and only then parsing into values for the core.

Never log a number, a body, a media URL or a geo field (FromCity, FromState, FromZip,
FromCountry, ToCity, …). The geo fields are read by nobody: parsing copies only what the core
needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from bots.sms.config import SmsConfig
from relay.messages import Channel, Inbound, InboundKind, Sender

# Twilio bodies are ≤1600 characters plus at most 10 media URLs; anything much larger is not
# from Twilio and is refused before it is parsed.
MAX_FORM_BYTES = 64 * 1024
MAX_MEDIA = 10

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")


class WebhookError(Exception):
    """A webhook we refuse. ``status_code`` is what we answer; the message names no one."""

    status_code = 400


class MalformedWebhookError(WebhookError):
    """Not a well-formed Twilio form (400)."""

    status_code = 400


class ForbiddenWebhookError(WebhookError):
    """Missing or wrong signature, or another account's webhook (403)."""

    status_code = 403


class FormData(Mapping[str, str]):
    """An urlencoded form: ``form[key]`` is the first value; ``getlist`` gives all of them.

    ``RequestValidator`` signs every value of a repeated key, and uses ``getlist`` to find
    them.
    """

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> str:
        return self._values[key][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def getlist(self, key: str) -> list[str]:
        """Every value of ``key``, in order."""
        return list(self._values.get(key, []))

    def __repr__(self) -> str:  # values include numbers and bodies
        return f"FormData({len(self)} fields)"


def parse_form(body: bytes, content_type: str | None) -> FormData:
    """Parse an ``application/x-www-form-urlencoded`` body, keeping blank values."""
    if len(body) > MAX_FORM_BYTES:
        raise MalformedWebhookError("form too large")
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise MalformedWebhookError("not a form")
    try:
        text = body.decode("ascii")  # urlencoded bodies are ASCII; UTF-8 lives in %-escapes
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            encoding="utf-8",
            errors="strict",
            max_num_fields=200,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedWebhookError("unparseable form") from exc
    return FormData(pairs)


@dataclass(frozen=True, slots=True)
class WebhookVerifier:
    """Checks ``X-Twilio-Signature`` and ``AccountSid`` of a webhook.

    The signed URL is rebuilt as ``public_base_url + path + ?query``: never from the Host
    header or scheme the request arrived with, which behind a TLS-terminating proxy are the
    proxy's (``http://10.0.0.5:8000``) and not what Twilio signed.
    """

    account_sid: str
    auth_token: str = field(repr=False)
    public_base_url: str

    @classmethod
    def from_config(cls, config: SmsConfig) -> WebhookVerifier:
        """The verifier for the account and public URL in ``config``."""
        return cls(config.account_sid, config.auth_token, config.base_url)

    def url_for(self, path: str, query: str = "") -> str:
        """The URL Twilio signed for a request to ``path`` with raw query string ``query``."""
        base = self.public_base_url.rstrip("/")
        return f"{base}{path}?{query}" if query else f"{base}{path}"

    def verify(self, path: str, query: str, form: FormData, headers: Mapping[str, str]) -> None:
        """Raise :class:`ForbiddenWebhookError` unless Twilio signed this form for our account.

        ``headers`` must look names up case-insensitively (Starlette's ``Headers`` does).
        """
        signature = headers.get(SIGNATURE_HEADER)
        if not signature:
            raise ForbiddenWebhookError("missing signature")
        # Twilio names the algorithm in a second header when a webhook is signed with
        # HMAC-SHA256; the secret is still ours, so a forger gains nothing by choosing it.
        algorithm = get_signature_algorithm(headers.get(SIGNATURE_SETTINGS_HEADER))
        validator = RequestValidator(self.auth_token)
        if not validator.validate(self.url_for(path, query), form, signature, algorithm):
            raise ForbiddenWebhookError("bad signature")
        # The signature proves the token, not the account: a subaccount shares nothing with
        # us, but check anyway so a misrouted webhook cannot inject messages.
        if form.get("AccountSid") != self.account_sid:
            raise ForbiddenWebhookError("foreign account")


# --- inbound messages ---


class CarrierKeyword(StrEnum):
    """What an opt-out/opt-in/help keyword does at the carrier and at Twilio."""

    STOP = "STOP"
    START = "START"
    HELP = "HELP"


# Twilio's defaults for long codes and toll-free (REVOKE and OPTOUT were added in 2025 to
# follow the FCC's revocation-of-consent rule).
OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})


def carrier_keyword(text: str | None) -> CarrierKeyword | None:
    """The keyword ``text`` is, matched as carriers do: whole body, trimmed, any case."""
    if not text:
        return None
    word = text.strip().upper()
    if word in OPT_OUT_WORDS:
        return CarrierKeyword.STOP
    if word in OPT_IN_WORDS:
        return CarrierKeyword.START
    if word in HELP_WORDS:
        return CarrierKeyword.HELP
    return None


def is_carrier_keyword(text: str | None) -> bool:
    """True when Twilio/the carrier acts on ``text`` itself: never rebroadcast such a text."""
    return carrier_keyword(text) is not None


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    """One MMS attachment still at Twilio. Only the media fetcher reads ``url``."""

    url: str = field(repr=False)
    content_type: str
    message_sid: str
    media_sid: str


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """An authenticated inbound SMS/MMS.

    ``inbound`` goes to the core as is; ``attachments`` (empty for plain SMS) are for
    :class:`bots.sms.media.MediaFetcher` only, in the worker; ``keyword`` is set when the
    body (or Twilio's ``OptOutType``) is a carrier keyword.
    """

    inbound: Inbound
    message_sid: str
    attachments: tuple[AttachmentRef, ...] = ()
    keyword: CarrierKeyword | None = None

    def __repr__(self) -> str:
        return f"ParsedMessage({self.inbound!r}, attachments={len(self.attachments)})"

    def to_payload(self) -> dict[str, Any]:
        """JSON-ready values, stored sealed until the worker hands the message to the core."""
        return {
            "from": self.inbound.sender.address,
            "kind": self.inbound.kind.value,
            "text": self.inbound.text,
            "message_sid": self.message_sid,
            "keyword": self.keyword.value if self.keyword else None,
            "media": [
                {"url": m.url, "content_type": m.content_type, "media_sid": m.media_sid}
                for m in self.attachments
            ],
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ParsedMessage:
        """The message :meth:`to_payload` stored."""
        sid = str(payload["message_sid"])
        inbound = Inbound(
            channel=Channel.SMS,
            sender=Sender(address=payload["from"]),
            dedup_key=f"sms:{sid}",
            kind=InboundKind(payload["kind"]),
            text=payload["text"],
            ref=sid,
        )
        media = tuple(
            AttachmentRef(m["url"], m["content_type"], sid, m["media_sid"])
            for m in payload["media"]
        )
        keyword = CarrierKeyword(payload["keyword"]) if payload["keyword"] else None
        return cls(inbound, sid, media, keyword)


def _required(form: FormData, key: str) -> str:
    value = form.get(key)
    if not value:
        raise MalformedWebhookError(f"missing {key}")
    return value


def _sid(form: FormData, key: str) -> str:
    value = _required(form, key)
    if not _SID.fullmatch(value):
        raise MalformedWebhookError(f"bad {key}")
    return value


def parse_inbound(form: FormData) -> ParsedMessage:
    """Turn a verified inbound webhook form into a :class:`ParsedMessage`.

    Twilio's ``OptOutType`` (sent with Advanced Opt-Out, including custom words such as
    ARRET) wins over our own keyword matching of the body.
    """
    message_sid = _sid(form, "MessageSid")
    sender = _required(form, "From")
    if not _E164.fullmatch(sender):
        raise MalformedWebhookError("sender is not an E.164 number")
    body = form.get("Body", "")
    try:
        num_media = int(form.get("NumMedia", "0") or "0")
    except ValueError as exc:
        raise MalformedWebhookError("bad NumMedia") from exc
    if not 0 <= num_media <= MAX_MEDIA:
        raise MalformedWebhookError("bad NumMedia")
    media = tuple(_media_ref(form, i, message_sid) for i in range(num_media))

    opt_out_type = form.get("OptOutType", "").strip().upper()
    keyword = (
        CarrierKeyword(opt_out_type)
        if opt_out_type in CarrierKeyword.__members__
        else carrier_keyword(body)
    )
    kind = InboundKind.MESSAGE
    text: str | None = body or None
    if keyword is CarrierKeyword.STOP:
        kind, text, media = InboundKind.OPTED_OUT, None, ()
    elif keyword is CarrierKeyword.START:
        kind, text, media = InboundKind.OPTED_IN, None, ()
    inbound = Inbound(
        channel=Channel.SMS,
        sender=Sender(address=sender),
        dedup_key=f"sms:{message_sid}",
        kind=kind,
        text=text,
        ref=message_sid,
    )
    return ParsedMessage(inbound, message_sid, media, keyword)


def _media_ref(form: FormData, index: int, message_sid: str) -> AttachmentRef:
    url = _required(form, f"MediaUrl{index}")
    content_type = form.get(f"MediaContentType{index}", "application/octet-stream")
    parts = urlsplit(url)
    media_sid = parts.path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")
    if parts.scheme != "https" or not _SID.fullmatch(media_sid):
        raise MalformedWebhookError("bad media URL")
    return AttachmentRef(url, content_type, message_sid, media_sid)


# --- status callbacks ---


class MessageStatus(StrEnum):
    """Twilio's outbound message statuses."""

    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    PARTIALLY_DELIVERED = "partially_delivered"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELED = "canceled"
    READ = "read"


_RANK = {
    MessageStatus.ACCEPTED: 0,
    MessageStatus.SCHEDULED: 0,
    MessageStatus.QUEUED: 1,
    MessageStatus.SENDING: 2,
    MessageStatus.SENT: 3,
    MessageStatus.PARTIALLY_DELIVERED: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.UNDELIVERED: 4,
    MessageStatus.FAILED: 4,
    MessageStatus.CANCELED: 4,
    MessageStatus.READ: 5,
}

FINAL_STATUSES = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
        MessageStatus.CANCELED,
        MessageStatus.READ,
    }
)
FAILED_STATUSES = frozenset({MessageStatus.UNDELIVERED, MessageStatus.FAILED})


def status_rank(status: MessageStatus) -> int:
    """How far along ``status`` is; a stored status is only replaced by a higher rank."""
    return _RANK[status]


FINAL_RANK = _RANK[MessageStatus.DELIVERED]


def is_final(status: MessageStatus) -> bool:
    """No later callback will change this status (except delivered → read on RCS/WhatsApp)."""
    return status in FINAL_STATUSES


def may_replace(old: MessageStatus | None, new: MessageStatus) -> bool:
    """Whether ``new`` may overwrite the stored ``old`` status.

    Callbacks repeat and arrive out of order; statuses only move forward
    (queued < sending < sent < delivered/undelivered/failed), and a final one stays, except
    that ``read`` may follow ``delivered``.
    """
    if old is None:
        return True
    if old in FINAL_STATUSES:
        return old is MessageStatus.DELIVERED and new is MessageStatus.READ
    return _RANK[new] > _RANK[old]


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One status callback: which message, its status, and Twilio's error code if any."""

    message_sid: str
    status: MessageStatus
    error_code: int | None = None


def parse_status(form: FormData) -> StatusUpdate | None:
    """Parse a verified status callback; ``None`` for a status this code does not know."""
    message_sid = _sid(form, "MessageSid")
    raw_status = _required(form, "MessageStatus").strip().lower()
    raw_code = form.get("ErrorCode", "").strip()
    try:
        error_code = int(raw_code) if raw_code else None
    except ValueError as exc:
        raise MalformedWebhookError("bad ErrorCode") from exc
    try:
        status = MessageStatus(raw_status)
    except ValueError:
        return None
    return StatusUpdate(message_sid, status, error_code)
