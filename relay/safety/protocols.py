"""What the safety guards see of the inbound path: the message being handled (:class:`Turn`),
the applier they hand outcomes to (:class:`Applier`), and what became of the message
(:class:`Handled`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlmodel import Session

from relay.core.outcome import (
    Outcome,
    Service,
)
from relay.delivery.outbox import OutboxWriter
from relay.messages import Inbound
from relay.storage.models import (
    Group,
    Member,
)
from relay.storage.models import Inbound as InboundRow


class Handled(StrEnum):
    """What became of a message handled here (values of :class:`relay.inbound.turn.Result`)."""

    STATE = "state"
    HELD_BACK = "held_back"
    COMMAND = "command"


class Applier(Protocol):
    """The service's applier, as this module uses it."""

    @property
    def writer(self) -> OutboxWriter:
        """Adds outbox rows in the same transaction."""
        ...

    def apply(self, outcome: Outcome) -> None:
        """Apply an outcome's effects, in order."""
        ...

    def receivers(self, exclude: int | None) -> list[Member]:
        """Active members who receive group messages."""
        ...


class Turn(Protocol):
    """The handling of one inbound message from a known member, as this module sees it."""

    @property
    def s(self) -> Session:
        """The transaction."""
        ...

    @property
    def inbound(self) -> Inbound:
        """The message."""
        ...

    @property
    def row(self) -> InboundRow:
        """The message as stored: what its copies point at once it reaches the group."""
        ...

    @property
    def member(self) -> Member:
        """Its sender."""
        ...

    @property
    def group(self) -> Group:
        """The sender's group."""
        ...

    @property
    def now(self) -> datetime:
        """When it arrived."""
        ...

    @property
    def apply(self) -> Applier:
        """Applies outcomes for this sender."""
        ...

    @property
    def relay(self) -> Service:
        """The service (keys, texts)."""
        ...
