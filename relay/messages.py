"""The values that cross the boundary between adapters and the core.

An adapter turns one provider payload into one :class:`Inbound`; the delivery engine hands
each transport one :class:`Outgoing` per recipient. Neither carries anything the core does not
need: no profile names, no provider metadata, no geo fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Channel(StrEnum):
    """A transport a member is reached through."""

    SIGNAL = "signal"
    SMS = "sms"
    SANDBOX = "sandbox"
    WEB = "web"  # a browser that joined from a private link; the address is an opaque seat id


class InboundKind(StrEnum):
    """What an inbound event asks of the core."""

    MESSAGE = "message"  # text and/or attachments, possibly quoting or mentioning
    EDIT = "edit"  # replaces the text of an earlier message of the same sender
    DELETE = "delete"  # remote delete of an earlier message of the same sender
    REACTION = "reaction"  # emoji on a message the bot sent to this sender
    TIMER_CHANGED = "timer_changed"  # the member changed the conversation's disappearing timer
    OPTED_OUT = "opted_out"  # carrier keyword STOP and siblings
    OPTED_IN = "opted_in"  # carrier keyword START / UNSTOP
    IDENTITY_CHANGED = "identity_changed"  # the sender's safety number changed


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent an inbound event, as the provider identified them.

    ``address`` is an E.164 number (may be absent on Signal when number privacy is on);
    ``uuid`` is the Signal service id when the provider gave one. Never log either.
    """

    address: str | None = None
    uuid: str | None = None

    def __repr__(self) -> str:  # never print identifiers by accident
        return "Sender(<redacted>)"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file to relay. ``data`` is already fetched; the core strips metadata and renames it."""

    content_type: str
    data: bytes
    filename: str = ""  # the sender's name for it: never shown to anyone else

    def __repr__(self) -> str:
        return f"Attachment({self.content_type}, {len(self.data)} bytes)"


@dataclass(frozen=True, slots=True)
class Mention:
    """A mention placeholder (U+FFFC) at UTF-16 ``start``/``length`` pointing at a Signal uuid."""

    start: int
    length: int
    uuid: str | None = None

    def __repr__(self) -> str:  # the uuid identifies the mentioned person
        return f"Mention({self.start}, {self.length})"


@dataclass(frozen=True, slots=True)
class Reaction:
    """An emoji on the message the bot sent this sender at ``target_ref``."""

    emoji: str
    target_ref: str
    remove: bool = False


@dataclass(frozen=True, slots=True)
class Inbound:
    """One event from one sender, already authenticated and parsed by its adapter.

    ``dedup_key`` is provider-unique (a Twilio MessageSid, a Signal sender+timestamp); the
    core stores only a keyed hash of it. ``ref`` is the sender's own id for this message (the
    Signal timestamp), used to map later edits and deletes; ``quote_ref``, ``edit_ref`` and
    ``delete_ref`` name earlier messages by those ids.
    """

    channel: Channel
    sender: Sender
    dedup_key: str
    kind: InboundKind = InboundKind.MESSAGE
    text: str | None = None
    ref: str | None = None
    attachments: tuple[Attachment, ...] = ()
    mentions: tuple[Mention, ...] = ()
    quote_ref: str | None = None
    quote_text: str | None = None  # the quoted words as the sender's phone shows them
    edit_ref: str | None = None
    delete_ref: str | None = None
    reaction: Reaction | None = None
    expires_in_seconds: int | None = None
    view_once: bool = False

    def __repr__(self) -> str:
        return f"Inbound({self.channel}, {self.kind}, text={'yes' if self.text else 'no'})"


@dataclass(frozen=True, slots=True)
class QuoteOut:
    """A quote of the copy the recipient holds: ``target_ref`` is its provider id there.

    ``by_recipient`` is true when the quoted message is the recipient's own (their original),
    false when it is a copy the bot sent them; the adapter sets the author accordingly.
    """

    target_ref: str
    by_recipient: bool
    text: str = ""

    def __repr__(self) -> str:  # the quoted text is a member's words
        return f"QuoteOut(by_recipient={self.by_recipient})"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to one recipient, as the delivery engine hands it to a transport."""

    address: str
    text: str
    attachments: tuple[Attachment, ...] = ()
    quote: QuoteOut | None = None
    edit_ref: str | None = None  # replace the copy the recipient holds at this ref
    delete_ref: str | None = None  # remote-delete the copy the recipient holds at this ref
    reaction: Reaction | None = None  # target_ref is the recipient's copy
    reaction_by_recipient: bool = False  # the reacted-to message is the recipient's own
    view_once: bool = False
    expires_in_seconds: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return "Outgoing(<redacted>)"

    def with_media_note(self) -> Outgoing:
        """This message as text only, its attachments replaced by the core's short note
        (``extra["media_note"]``), for a recipient who cannot receive them."""
        note = self.extra.get("media_note", "")
        text = "\n".join(p for p in (self.text, note) if p)
        return Outgoing(address=self.address, text=text, quote=self.quote)


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """What a provider answered for a send: its id for the message (Signal timestamp, SMS sid)."""

    ref: str | None = None
    segments: int = 1
