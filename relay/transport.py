"""The protocols between the core and the adapters: the transport each adapter in ``bots/``
implements, and the inbound stash the application gives a receiving adapter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from relay.messages import Channel, Outgoing, SendReceipt


@runtime_checkable
class Transport(Protocol):
    """Sends to one channel. Raise :mod:`relay.errors` delivery errors on failure.

    Implementations must be safe to call concurrently from one event loop and must never
    log the address, the text or the attachments of what they send.
    """

    @property
    def channel(self) -> Channel:
        """The channel this transport serves."""
        ...

    @property
    def supports_timers(self) -> bool:
        """Whether conversations on this channel have a disappearing timer to enforce."""
        ...

    @property
    def supports_media(self) -> bool:
        """Whether attachments can be delivered (else the core sends a short note)."""
        ...

    async def send(self, message: Outgoing) -> SendReceipt:
        """Deliver one message to one recipient; return the provider's id for it."""
        ...

    async def set_timer(self, address: str, seconds: int) -> None:
        """Set the disappearing timer of the conversation with ``address``."""
        ...

    async def trust(self, address: str) -> None:
        """Accept ``address``'s new safety number, after staff confirmed it (no-op elsewhere)."""
        ...


@dataclass(frozen=True, slots=True)
class Stashed:
    """One event taken back from an :class:`InboundStash`; ``attempts`` counts this try."""

    ticket: int
    payload: dict[str, Any]
    attempts: int

    def __repr__(self) -> str:  # the payload holds who wrote and what
        return f"Stashed({self.ticket}, attempt {self.attempts})"


@runtime_checkable
class InboundStash(Protocol):
    """Where an adapter writes what a provider handed it, sealed and durable, before it does
    anything else with it (fetch attachments, hand it to the core).

    One stash serves one channel. The application provides it (``cercle/providers.py``) over
    the core's inbox; an adapter never imports storage. An event stays until :meth:`done`,
    so a crash between the stash and the core's commit loses nothing: whoever receives next
    takes it back with :meth:`take`, and the core's de-duplication makes a second hand-over
    harmless.
    """

    async def put(self, dedup_key: str, payload: dict[str, Any]) -> int | None:
        """Store one event under its provider-unique ``dedup_key``; return its ticket, or
        ``None`` when that event is already stored or the core already accepted it.

        The event is left to the caller for a while (it hands it over itself first)."""
        ...

    async def done(self, ticket: int) -> None:
        """The core has the event: forget it and its sealed copy."""
        ...

    async def later(self, ticket: int, attempts: int) -> None:
        """The hand-over failed: try again after a backoff that grows with ``attempts``."""
        ...

    async def take(self, *, everything: bool = False) -> list[Stashed]:
        """Stored events due for another hand-over, oldest first, each held for the caller
        a while. ``everything`` also takes those a previous receiver had in hand: only the
        receiver that just took over the receive lease may ask for it."""
        ...

    async def release(self, tickets: list[int]) -> None:
        """Give back taken events not handed over (the worker is stopping): due at once."""
        ...
