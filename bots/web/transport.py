"""The web door's transport: what the core sends a web member becomes a sealed copy waiting
for their browser, and connected browsers are woken at once.

It implements :class:`relay.transport.Transport` like the Signal and SMS adapters, so web
copies go through the same outbox, pacing-free, in the same per-member order.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from bots.web.photos import can_show, photo_payload
from relay.doors import CopyKind, WebSeats
from relay.errors import Reason, RecipientGoneError
from relay.messages import Channel, Outgoing, SendReceipt

Listener = Callable[[], None]


class WebTransport:
    """Stores copies for web members' browsers, in the core's :class:`relay.doors.WebSeats`."""

    def __init__(self, store: WebSeats) -> None:
        self.store = store
        self._listeners: list[Listener] = []

    @property
    def channel(self) -> Channel:
        """The channel this transport serves."""
        return Channel.WEB

    @property
    def supports_timers(self) -> bool:
        """Copies leave the page when the group's timer passes."""
        return True

    @property
    def supports_media(self) -> bool:
        """Photos are shown on the page (see :mod:`bots.web.photos`); other files get the
        core's short note."""
        return True

    def on_stored(self, listener: Listener) -> None:
        """Call ``listener`` (in the event loop) after each copy is stored: a web process in
        the same process as the worker wakes its browsers without waiting for its next poll."""
        self._listeners.append(listener)

    async def send(self, message: Outgoing) -> SendReceipt:
        """Store the copy; a seat that is gone is a recipient that is gone."""
        if message.delete_ref is not None:
            kind, text, target = CopyKind.DELETE, "", message.delete_ref
        elif message.edit_ref is not None:
            kind, text, target = CopyKind.EDIT, message.text, message.edit_ref
        else:
            if message.attachments and not can_show(message.attachments):
                message = message.with_media_note()
            kind, text, target = CopyKind.MESSAGE, message.text, None
            if message.quote is not None and message.quote.text:
                text = f"> {message.quote.text[:80]}\n{text}"
        # A video room's link (only ever an https address the core made) becomes a button.
        link = message.extra.get("video_url") if kind == CopyKind.MESSAGE else None
        if link is not None and not link.startswith("https://"):
            link = None
        photos = photo_payload(message.attachments) if kind == CopyKind.MESSAGE else None
        ref = await anyio.to_thread.run_sync(
            lambda: self.store.put(
                message.address, kind, text, target_ref=target, link=link, photos=photos
            )
        )
        if ref is None:
            raise RecipientGoneError(Reason.UNREGISTERED, "no web seat")
        for listener in self._listeners:
            listener()
        return SendReceipt(ref=ref)

    async def set_timer(self, address: str, seconds: int) -> None:
        """Copies stored from now on stay ``seconds`` at most."""
        await anyio.to_thread.run_sync(self.store.set_timer, address, seconds)

    async def trust(self, address: str) -> None:
        """Nothing to trust on the web: there is no safety number."""
        del address
