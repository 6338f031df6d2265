"""The transport protocol the core holds; each adapter in ``bots/`` implements it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

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
