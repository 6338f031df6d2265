"""The core's side of :class:`relay.doors.MediaHost`: stripped photos hosted briefly for the
SMS provider to fetch when it sends them by MMS (:mod:`relay.storage.media_links`)."""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from relay.messages import Attachment
from relay.service.relay import Relay
from relay.storage import media_links


class PublicMedia:
    """Hosts stripped photos for the SMS provider at ``{base}{token}`` (the web app serves
    ``base``): a random 256-bit token, served once, deleted when fetched, when the message is
    final, or after :data:`relay.storage.media_links.TTL`. Only the provider is ever given the
    URL; nothing logs it."""

    def __init__(self, relay: Relay, base: str) -> None:
        self._relay = relay
        self._base = base

    def _token(self, url: str) -> str:
        return url.removeprefix(self._base)

    async def publish(self, attachment: Attachment) -> str:
        """Host one photo; return its URL."""
        r = self._relay
        token = await anyio.to_thread.run_sync(
            media_links.publish,
            r.engine,
            r.keys,
            r.clock.now(),
            attachment.content_type,
            attachment.data,
        )
        return self._base + token

    async def withdraw(self, urls: Sequence[str]) -> None:
        """Delete photos whose send failed."""
        tokens = [self._token(u) for u in urls]
        await anyio.to_thread.run_sync(
            media_links.withdraw, self._relay.engine, self._relay.keys, tokens
        )

    async def bind(self, urls: Sequence[str], message_sid: str) -> None:
        """Tie photos to their message, so its final status deletes what Twilio left."""
        tokens = [self._token(u) for u in urls]
        r = self._relay
        await anyio.to_thread.run_sync(media_links.bind, r.engine, r.keys, tokens, message_sid)
