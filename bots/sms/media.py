"""Fetching MMS media from Twilio, then deleting Twilio's copy. Runs in the worker.

A media URL from a webhook is ``{api_base}/2010-04-01/Accounts/{AC}/Messages/{MM}/Media/{ME}``;
fetching it with the account credentials answers with a redirect to a short-lived CDN URL.
httpx drops the ``Authorization`` header when a redirect leaves the origin, so the
credentials never reach the CDN. Only URLs under our own account at our own API base are
fetched, so a bad value can never make us send credentials elsewhere.
"""

from __future__ import annotations

import logging

import anyio
import httpx
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bots.sms.config import DEFAULT_API_BASE, SmsConfig
from bots.sms.webhook import AttachmentRef
from relay.messages import Attachment

log = logging.getLogger(__name__)


class MediaFetchError(Exception):
    """A media file could not be fetched (the message says how, never which)."""


class MediaFetcher:
    """Downloads the attachments of an inbound MMS and removes them from Twilio.

    ``client`` is the same REST client the transport uses (deletes go through twilio's
    Media resource); ``http`` is an ``httpx.AsyncClient`` for the downloads (one is created
    when omitted).
    """

    def __init__(
        self, config: SmsConfig, client: Client, http: httpx.AsyncClient | None = None
    ) -> None:
        self._config = config
        self._client = client
        if config.api_key and config.api_secret:
            auth = httpx.BasicAuth(config.api_key, config.api_secret)
        else:
            auth = httpx.BasicAuth(config.account_sid, config.auth_token)
        self._auth = auth
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        )
        path = f"/2010-04-01/Accounts/{config.account_sid}/Messages/"
        self._prefix = config.api_base.rstrip("/") + path
        # Webhooks always name api.twilio.com; with TWILIO_API_BASE pointing at an egress
        # proxy, fetch through the proxy instead.
        self._twilio_prefix = DEFAULT_API_BASE + path

    async def fetch(self, ref: AttachmentRef) -> Attachment:
        """Download one attachment (following the CDN redirect), size-capped."""
        url = ref.url
        if url.startswith(self._twilio_prefix):
            url = self._prefix + url.removeprefix(self._twilio_prefix)
        if not url.startswith(self._prefix):
            raise MediaFetchError("media URL outside our account")
        limit = self._config.media_max_bytes
        async with self._http.stream(
            "GET", url, auth=self._auth, follow_redirects=True
        ) as response:
            if response.status_code != 200:
                raise MediaFetchError(f"media fetch answered HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise MediaFetchError("media larger than the limit")
                chunks.append(chunk)
            content_type = response.headers.get("content-type", ref.content_type)
        log.info("fetched media: %s, %d bytes", content_type.split(";")[0], size)
        return Attachment(content_type=content_type.split(";")[0].strip(), data=b"".join(chunks))

    async def delete(self, ref: AttachmentRef) -> None:
        """Delete Twilio's copy of one attachment; an already-deleted one counts as done."""

        def _delete() -> None:
            try:
                self._client.api.v2010.account.messages(ref.message_sid).media(
                    ref.media_sid
                ).delete()
            except TwilioRestException as exc:
                if exc.status != 404:
                    raise

        await anyio.to_thread.run_sync(_delete)

    async def fetch_all_and_delete(self, refs: tuple[AttachmentRef, ...]) -> tuple[Attachment, ...]:
        """Fetch every attachment, then delete each one at Twilio.

        Deletion happens only after every download succeeded, so a failed fetch can be
        retried later; a failed delete is logged (by code) and left for the retention job.
        """
        attachments = tuple([await self.fetch(ref) for ref in refs])
        for ref in refs:
            try:
                await self.delete(ref)
            except TwilioRestException as exc:
                log.warning("media delete failed: HTTP %s, code %s", exc.status, exc.code)
        return attachments

    async def aclose(self) -> None:
        """Close the download client."""
        await self._http.aclose()
