"""Parse receive-websocket frames of signal-cli-rest-api (json-rpc mode) into relay values.

The parser is deliberately tolerant: every field is optional, nulls may appear anywhere,
unknown fields are ignored and garbage is dropped. It never raises on any input. A frame
becomes either one :class:`ParsedMessage` (an :class:`~relay.messages.Inbound` whose
attachments are still on the server) or one :class:`Dropped` carrying a reason *type*,
which is all that may ever be logged about it.

What is never copied out of a frame: ``sourceName`` (the profile name), mention names and
numbers, quote authors, reaction target authors, shared contacts, and anything of a
``syncMessage`` (those come from devices linked to the org number, not from a member).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from relay.messages import Channel, Inbound, InboundKind, Mention, Reaction, Sender

JsonObj = dict[str, Any]


class DropReason(StrEnum):
    """Why a frame was not turned into an Inbound. Safe to log: it names no person."""

    SYNC = "sync"  # from a device linked to the org number: never a member's words
    TYPING = "typing"
    RECEIPT = "receipt"
    STORY = "story"
    CALL = "call"
    PAYMENT = "payment"
    POLL = "poll"
    GROUP_UPDATE = "group_update"  # anything sent in or about a Signal group
    STICKER = "sticker"
    CONTACT = "contact"  # a shared contact card and nothing else
    UNSUPPORTED = "unsupported"  # pins, admin deletes and other features we do not relay
    ERROR_FRAME = "error_frame"
    EXCEPTION_FRAME = "exception_frame"
    UNPARSEABLE = "unparseable"
    NO_SENDER = "no_sender"
    NO_TIMESTAMP = "no_timestamp"
    EMPTY = "empty"


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    """An attachment still held by signal-cli-rest-api; fetch its bytes by ``id``.

    ``filename`` is the sender's own name for the file: never shown or logged.
    """

    id: str
    content_type: str
    filename: str = ""
    size: int | None = None

    def __repr__(self) -> str:
        return f"AttachmentRef({self.content_type}, {self.size} bytes)"


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """A frame that becomes one Inbound once its attachments are fetched.

    ``discard_ids`` name attachments that came along but are not relayed (on an edit or a
    timer change): their server copies are deleted all the same.
    """

    inbound: Inbound
    attachments: tuple[AttachmentRef, ...] = ()
    discard_ids: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"ParsedMessage({self.inbound.kind}, {len(self.attachments)} attachments)"


@dataclass(frozen=True, slots=True)
class Dropped:
    """A frame that is not relayed. ``attachment_ids`` name server copies still to delete."""

    reason: DropReason
    attachment_ids: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Dropped({self.reason}, {len(self.attachment_ids)} attachments)"


ParseResult = ParsedMessage | Dropped

# The signal-cli exception types that mean "this sender's safety number changed".
_IDENTITY_EXCEPTIONS = ("UntrustedIdentityException", "ProtocolUntrustedIdentityException")

_DEFAULT_CONTENT_TYPE = "application/octet-stream"


# --- small, total accessors: each returns None rather than raising on a wrong type ---------


def _obj(value: object) -> JsonObj | None:
    return value if isinstance(value, dict) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    """A non-negative integer, from an int or a string of digits (timestamps come as both)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and 0 < len(value) <= 20 and value.isascii() and value.isdigit():
        return int(value)
    return None


def _true(value: object) -> bool:
    return value is True


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


# --- frames --------------------------------------------------------------------------------


def parse_frame(raw: object, *, own_number: str | None = None) -> ParseResult:
    """Parse one websocket frame (text, bytes, or an already decoded JSON value).

    ``own_number`` is the org's number: a frame that claims to come from it is treated as a
    sync message and dropped. Never raises.
    """
    frame: object = raw
    if isinstance(raw, (str, bytes, bytearray)):
        try:
            frame = json.loads(raw)
        except (ValueError, RecursionError):
            # ValueError covers bad JSON, bad UTF-8 and over-long integers.
            return Dropped(DropReason.UNPARSEABLE)
    obj = _obj(frame)
    if obj is None:
        return Dropped(DropReason.UNPARSEABLE)
    envelope = _obj(obj.get("envelope"))
    if obj.get("exception") is not None:
        return _parse_exception(_obj(obj.get("exception")), envelope)
    if envelope is None:
        if obj.get("error") is not None:
            return Dropped(DropReason.ERROR_FRAME)
        return Dropped(DropReason.UNPARSEABLE)
    return parse_envelope(envelope, own_number=own_number)


def _parse_exception(exception: JsonObj | None, envelope: JsonObj | None) -> ParseResult:
    """An exception frame: a safety-number change becomes IDENTITY_CHANGED for its sender."""
    kind = _str(exception.get("type")) if exception is not None else None
    if kind not in _IDENTITY_EXCEPTIONS or envelope is None:
        return Dropped(DropReason.EXCEPTION_FRAME)
    sender = _sender(envelope)
    timestamp = _int(envelope.get("timestamp"))
    if sender is None:
        return Dropped(DropReason.NO_SENDER)
    if timestamp is None:
        return Dropped(DropReason.NO_TIMESTAMP)
    return ParsedMessage(_inbound(sender, timestamp, InboundKind.IDENTITY_CHANGED))


def _sender(envelope: JsonObj) -> Sender | None:
    number = _str(envelope.get("sourceNumber"))
    uuid = _str(envelope.get("sourceUuid"))
    if number is None and uuid is None:
        # Older builds only fill ``source``, which holds the number or else the uuid.
        source = _str(envelope.get("source"))
        if source is not None and source.startswith("+"):
            number = source
        else:
            uuid = source
    if number is None and uuid is None:
        return None
    return Sender(address=number, uuid=uuid)


def _dedup_key(sender: Sender, timestamp: int) -> str:
    return f"signal:{sender.uuid or sender.address}:{timestamp}"


def parse_envelope(envelope: JsonObj, *, own_number: str | None = None) -> ParseResult:
    """Parse the ``envelope`` object of a frame. Never raises."""
    sync = envelope.get("syncMessage")
    if sync is not None:
        # Whatever shape it has, it was typed on a device linked to the org number.
        return Dropped(DropReason.SYNC, _attachment_ids(_obj(sync)))
    edit = _obj(envelope.get("editMessage"))
    data = _obj(envelope.get("dataMessage"))
    if edit is None and data is None:
        return Dropped(_content_drop_reason(envelope))
    inner = _obj(edit.get("dataMessage")) if edit is not None else data
    sender = _sender(envelope)
    if sender is None:
        return Dropped(DropReason.NO_SENDER, _attachment_ids(inner))
    if own_number is not None and sender.address == own_number:
        return Dropped(DropReason.SYNC, _attachment_ids(inner))
    if edit is not None:
        return _parse_edit(envelope, edit, inner, sender)
    assert data is not None  # noqa: S101  (narrowing: one of the two is set)
    return _parse_data(envelope, data, sender)


def _content_drop_reason(envelope: JsonObj) -> DropReason:
    for key, reason in (
        ("typingMessage", DropReason.TYPING),
        ("receiptMessage", DropReason.RECEIPT),
        ("storyMessage", DropReason.STORY),
        ("callMessage", DropReason.CALL),
    ):
        if envelope.get(key) is not None:
            return reason
    return DropReason.EMPTY


def _attachment_ids(data: JsonObj | None) -> tuple[str, ...]:
    """Ids of every attachment a (possibly nested) message holds, to delete server copies."""
    if data is None:
        return ()
    ids: list[str] = []
    for container in (data, _obj(data.get("sentMessage")), _obj(data.get("dataMessage"))):
        if container is None:
            continue
        for item in _list(container.get("attachments")):
            att = _obj(item)
            att_id = _str(att.get("id")) if att is not None else None
            if att_id is not None:
                ids.append(att_id)
    return tuple(dict.fromkeys(ids))


def _timestamp(envelope: JsonObj, data: JsonObj | None) -> int | None:
    ts = _int(data.get("timestamp")) if data is not None else None
    return ts if ts is not None else _int(envelope.get("timestamp"))


def _unrelayable(data: JsonObj) -> DropReason | None:
    """A reason to drop the whole message, for content we never relay."""
    if data.get("groupInfo") is not None or data.get("groupV2") is not None:
        return DropReason.GROUP_UPDATE
    if data.get("storyContext") is not None:
        return DropReason.STORY
    if data.get("payment") is not None:
        return DropReason.PAYMENT
    if any(data.get(k) is not None for k in ("pollCreate", "pollVote", "pollTerminate")):
        return DropReason.POLL
    if any(data.get(k) is not None for k in ("pinMessage", "unpinMessage", "adminDelete")):
        return DropReason.UNSUPPORTED
    return None


def _parse_data(envelope: JsonObj, data: JsonObj, sender: Sender) -> ParseResult:
    attachments = _attachments(data)
    ids = tuple(a.id for a in attachments)
    drop = _unrelayable(data)
    if drop is not None:
        return Dropped(drop, ids)
    timestamp = _timestamp(envelope, data)
    if timestamp is None:
        return Dropped(DropReason.NO_TIMESTAMP, ids)
    expires = _int(data.get("expiresInSeconds"))
    if _true(data.get("isExpirationUpdate")):
        inbound = _inbound(
            sender, timestamp, InboundKind.TIMER_CHANGED, expires_in_seconds=expires or 0
        )
        return ParsedMessage(inbound, discard_ids=ids)
    remote_delete = _obj(data.get("remoteDelete"))
    if remote_delete is not None:
        target = _int(remote_delete.get("timestamp"))
        if target is None:
            return Dropped(DropReason.EMPTY, ids)
        inbound = _inbound(
            sender,
            timestamp,
            InboundKind.DELETE,
            delete_ref=str(target),
            expires_in_seconds=expires,
        )
        return ParsedMessage(inbound, discard_ids=ids)
    if data.get("reaction") is not None:
        reaction = _reaction(_obj(data.get("reaction")))
        if reaction is None:
            return Dropped(DropReason.EMPTY, ids)
        inbound = _inbound(
            sender, timestamp, InboundKind.REACTION, reaction=reaction, expires_in_seconds=expires
        )
        return ParsedMessage(inbound, discard_ids=ids)
    text = _str(data.get("message"))
    if text is None and not attachments:
        if data.get("sticker") is not None:
            return Dropped(DropReason.STICKER)
        if data.get("contacts") is not None:
            return Dropped(DropReason.CONTACT)
        return Dropped(DropReason.EMPTY)
    quote = _obj(data.get("quote"))
    quote_id = _int(quote.get("id")) if quote is not None else None
    inbound = _inbound(
        sender,
        timestamp,
        InboundKind.MESSAGE,
        text=text,
        mentions=_mentions(data) if text is not None else (),
        quote_ref=str(quote_id) if quote_id is not None else None,
        quote_text=_str(quote.get("text")) if quote is not None else None,
        view_once=_true(data.get("viewOnce")),
        expires_in_seconds=expires,
    )
    return ParsedMessage(inbound, attachments)


def _inbound(sender: Sender, timestamp: int, kind: InboundKind, **fields: Any) -> Inbound:
    return Inbound(
        channel=Channel.SIGNAL,
        sender=sender,
        dedup_key=_dedup_key(sender, timestamp),
        kind=kind,
        ref=str(timestamp),
        **fields,
    )


def _parse_edit(
    envelope: JsonObj, edit: JsonObj, inner: JsonObj | None, sender: Sender
) -> ParseResult:
    target = _int(edit.get("targetSentTimestamp"))
    ids = _attachment_ids(inner)
    if inner is None or target is None:
        return Dropped(DropReason.EMPTY, ids)
    drop = _unrelayable(inner)
    if drop is not None:
        return Dropped(drop, ids)
    timestamp = _timestamp(envelope, inner)
    if timestamp is None:
        return Dropped(DropReason.NO_TIMESTAMP, ids)
    text = _str(inner.get("message"))
    if text is None:
        return Dropped(DropReason.EMPTY, ids)
    inbound = _inbound(
        sender,
        timestamp,
        InboundKind.EDIT,
        text=text,
        edit_ref=str(target),
        mentions=_mentions(inner),
        expires_in_seconds=_int(inner.get("expiresInSeconds")),
    )
    # Edits relay text only: attachments that came along are deleted, not relayed.
    return ParsedMessage(inbound, discard_ids=ids)


def _reaction(reaction: JsonObj | None) -> Reaction | None:
    if reaction is None:
        return None
    emoji = _str(reaction.get("emoji"))
    target = _int(reaction.get("targetSentTimestamp"))
    if emoji is None or target is None:
        return None
    return Reaction(emoji=emoji, target_ref=str(target), remove=_true(reaction.get("isRemove")))


def _mentions(data: JsonObj) -> tuple[Mention, ...]:
    mentions: list[Mention] = []
    for item in _list(data.get("mentions")):
        mention = _obj(item)
        if mention is None:
            continue
        start, length = _int(mention.get("start")), _int(mention.get("length"))
        if start is None or length is None:
            continue
        # Only the uuid is kept, so the core can find the member's pseudonym; never the
        # mention's number or profile name.
        mentions.append(Mention(start=start, length=length, uuid=_str(mention.get("uuid"))))
    return tuple(mentions)


def _attachments(data: JsonObj) -> tuple[AttachmentRef, ...]:
    refs: list[AttachmentRef] = []
    for item in _list(data.get("attachments")):
        att = _obj(item)
        att_id = _str(att.get("id")) if att is not None else None
        if att is None or att_id is None:
            continue
        refs.append(
            AttachmentRef(
                id=att_id,
                content_type=_str(att.get("contentType")) or _DEFAULT_CONTENT_TYPE,
                filename=_str(att.get("filename")) or "",
                size=_int(att.get("size")),
            )
        )
    return tuple(refs)
