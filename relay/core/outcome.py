"""What handlers return: messages to send and state to change, applied in one place.

A command handler never writes to the database or sends anything. It returns an
:class:`Outcome`; :mod:`relay.inbound.apply` applies its effects, in order, in the same transaction
as the inbound record and the outbox rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from relay.language.i18n import Renderable

if TYPE_CHECKING:
    from sqlmodel import Session

    from relay.clock import Clock
    from relay.delivery.outbox import OutboxWriter
    from relay.language.texts import Texts
    from relay.storage.crypto import DataKeys
    from relay.storage.models import Group, Member


@dataclass(frozen=True)
class Reply:
    """A private message to the person who sent the command."""

    text: Renderable


@dataclass(frozen=True)
class ToMember:
    """A private message to one member of the group."""

    member_id: int
    text: Renderable


@dataclass(frozen=True)
class ToStaff:
    """A private message to every active facilitator and admin of the group (not the sender)."""

    text: Renderable


@dataclass(frozen=True)
class ToGroup:
    """A message to every active member of the group except ``exclude``."""

    text: Renderable
    exclude: int | None = None


@dataclass(frozen=True)
class SetLang:
    """The sender's language."""

    lang: str


@dataclass(frozen=True)
class SetPaused:
    """Pause or resume the sender's deliveries."""

    paused: bool


@dataclass(frozen=True)
class Rename:
    """Give the sender a new pseudonym (already validated)."""

    name: str


@dataclass(frozen=True)
class Mute:
    """Mute a member until ``until`` (``None`` unmutes)."""

    member_id: int
    until: datetime | None


@dataclass(frozen=True)
class RequestLeave:
    """Remember that the sender asked to leave, so a second ``/leave`` confirms."""


@dataclass(frozen=True)
class Remove:
    """Remove a member and delete their data; ``farewell`` is their last message from us."""

    member_id: int
    farewell: Renderable


@dataclass(frozen=True)
class SetGroupTimer:
    """Change the group's disappearing timer and enforce it on every conversation."""

    seconds: int


@dataclass(frozen=True)
class Trust:
    """Staff confirmed a member's new safety number: trust it and release held messages."""

    member_id: int


@dataclass(frozen=True)
class Ban:
    """Put a member's number on the organization's deny list and remove every membership it
    has (apply before :class:`Remove`, which deletes the number)."""

    member_id: int
    reason: str


@dataclass(frozen=True)
class Audit:
    """An audit-trail entry. Pseudonyms and codes only: never message content."""

    action: str
    target: str | None = None
    detail: str | None = None


class Service(Protocol):
    """The relay service as handlers, guards and the inbound path see it.

    :class:`relay.service.relay.Relay` implements it; it is declared here so that no package
    below the service has to import it.
    """

    @property
    def keys(self) -> DataKeys:
        """Seals and hashes identifiers."""
        ...

    @property
    def clock(self) -> Clock:
        """The time."""
        ...

    @property
    def texts(self) -> Texts:
        """The organization's texts (agreements, resources, consent)."""
        ...

    @property
    def org_name(self) -> str:
        """The organization's name, as members see it."""
        ...

    def address_hash(self, address: str) -> str:
        """The lookup hash of a number (or any channel address)."""
        ...

    def uuid_hash(self, uuid: str) -> str:
        """The lookup hash of a Signal UUID."""
        ...

    def find_member(
        self, session: Session, channel: str, address: str | None, uuid: str | None
    ) -> Member | None:
        """The enrolled, not removed member with this UUID or number on ``channel``."""
        ...

    def uuid_differs(self, member: Member, uuid: str | None) -> bool:
        """Whether ``uuid`` is another Signal account than the one ``member`` is known by."""
        ...

    def address_of(self, member: Member) -> str | None:
        """``member``'s number, or their Signal UUID if that is all we have."""
        ...

    def delivery_address(self, member: Member) -> str | None:
        """Where to send to ``member``."""
        ...

    def members_of(self, s: Session, group: Group) -> list[Member]:
        """Every member of ``group`` who is not removed."""
        ...

    def send_consent(self, writer: OutboxWriter, group: Group, member: Member) -> None:
        """Queue the consent texts for ``member``."""
        ...

    @property
    def join_link(self) -> Callable[[str], str] | None:
        """Makes an invite code's private web link, when the web door is on."""
        ...


class Store(Protocol):
    """What deferred work may use: the transaction and the group it applies to."""

    @property
    def relay(self) -> Service:
        """The service (keys, texts, clock)."""
        ...

    @property
    def s(self) -> Session:
        """The transaction of the inbound event (or admin action)."""
        ...

    @property
    def group(self) -> Group:
        """The group the outcome applies to."""
        ...

    @property
    def actor(self) -> Member | None:
        """Who ran the command (``None`` for an admin or a scheduled job)."""
        ...

    @property
    def now(self) -> datetime:
        """The time of the event."""
        ...

    @property
    def writer(self) -> OutboxWriter:
        """Adds outbox rows in the same transaction."""
        ...

    def receivers(self, exclude: int | None) -> list[Member]:
        """Active members who receive group messages; pending join notices are written
        first, so nobody reads a newcomer's words before learning they joined."""
        ...


@dataclass(frozen=True)
class Deferred:
    """Work that needs stored state (open hours, invites, held messages), done where the
    outcome is applied, in the same transaction. It returns the effects that follow from it
    (replies, notices, audit entries), which are applied in turn. Handlers stay free of
    database access; this is the one door for commands whose answer depends on stored rows.
    """

    work: Callable[[Store], Outcome]


Effect = (
    Reply
    | ToMember
    | ToStaff
    | ToGroup
    | SetLang
    | SetPaused
    | Rename
    | Mute
    | RequestLeave
    | Remove
    | SetGroupTimer
    | Trust
    | Audit
    | Ban
    | Deferred
)


@dataclass
class Outcome:
    """The effects of handling one command, in the order they apply."""

    effects: list[Effect] = field(default_factory=list)

    @classmethod
    def of(cls, *effects: Effect) -> Outcome:
        """An outcome with these effects."""
        return cls(list(effects))
