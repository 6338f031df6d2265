"""What happens to one received SMS, from Twilio's webhook to the core.

Every inbound message is first written to the inbox (sealed, :class:`relay.doors.Inbox`) in
its own request, before Twilio gets its answer: a crash after that loses nothing. A text is
then handed to the core at once, in the same request, so a live session waits for no poll; a
message with photos is left to the worker's inbox loop, which fetches them
(:class:`bots.sms.media.MediaFetcher`), hands the message over, forgets it, and only then
deletes the photos at Twilio.

Nothing about a message's content is logged: counts, kinds and exception *types* only.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets

import anyio
from twilio.rest import Client

from bots.sms.config import SmsConfig
from bots.sms.media import MediaFetcher
from bots.sms.webhook import CarrierKeyword, ParsedMessage
from relay.doors import Accept, Inbox
from relay.messages import Attachment

log = logging.getLogger(__name__)

MEDIA_TRIES = 3  # fetches of a message's photos before its text goes alone


class SmsIntake:
    """The SMS adapter's way in: the webhook's hand-off (:meth:`received`) and the worker's
    (:meth:`relay_pending`), both through one inbox to one ``accept``."""

    def __init__(
        self, config: SmsConfig, client: Client | None, accept: Accept, inbox: Inbox
    ) -> None:
        self._config = config
        self._client = client
        self._accept = accept
        self._inbox = inbox

    async def received(self, parsed: ParsedMessage) -> None:
        """An authenticated webhook's message: stored before Twilio's answer, and a text
        handed over at once (the webhook's routes call this)."""
        if parsed.keyword in (CarrierKeyword.HELP,):
            # The carrier answers HELP itself; never rebroadcast it.
            log.info("sms inbound: carrier help keyword, not relayed")
            return
        if await self._inbox.accepted(parsed.inbound.dedup_key):
            log.info("sms inbound: already relayed (a retry of the same message)")
            return
        # Workers leave a text to this request unless it dies before handing it over.
        ticket = await self._inbox.put(
            parsed.inbound.dedup_key, parsed.to_payload(), hold=not parsed.attachments
        )
        if ticket is None:
            log.info("sms inbound: already queued (a retry of the same message)")
        elif not parsed.attachments:
            await self.hand_over(ticket, parsed, attempts=1)

    async def relay_pending(self) -> int:
        """Hand every due stored message to the core; return how many were taken."""
        taken = await self._inbox.take()
        left = [item.ticket for item in taken]
        try:
            for item in taken:
                parsed = ParsedMessage.from_payload(item.payload)
                await self.hand_over(item.ticket, parsed, item.attempts)
                left.remove(item.ticket)
        finally:
            if left:
                # Stopped half-way: what was taken and not handed over is due again at once.
                with anyio.CancelScope(shield=True):
                    await self._inbox.release(left)
        return len(taken)

    async def hand_over(self, ticket: int, parsed: ParsedMessage, attempts: int) -> bool:
        """Fetch a stored message's photos, give it to the core, then forget it and delete the
        photos at Twilio. Never raises: a failure leaves it for a later try (after
        :data:`MEDIA_TRIES` failed fetches, the text goes alone). True when the core has it."""
        attachments: tuple[Attachment, ...] = ()
        fetcher = None
        if parsed.attachments and self._client is not None:
            fetcher = MediaFetcher(self._config, self._client)
        try:
            if fetcher is not None:
                try:
                    attachments = tuple([await fetcher.fetch(ref) for ref in parsed.attachments])
                except Exception:  # noqa: BLE001 - retried, then the text goes alone
                    ref = secrets.token_hex(4)
                    if attempts < MEDIA_TRIES:
                        log.warning("sms media not fetched yet, try %d (ref %s)", attempts, ref)
                        await self._inbox.later(ticket, attempts)
                        return False
                    log.warning("sms media could not be fetched: the text goes alone (ref %s)", ref)
            try:
                await self._accept(dataclasses.replace(parsed.inbound, attachments=attachments))
            except Exception as exc:  # noqa: BLE001 - the message stays: nothing is lost
                ref = secrets.token_hex(4)
                log.error("sms inbound not accepted yet: %s (ref %s)", type(exc).__name__, ref)  # noqa: TRY400
                await self._inbox.later(ticket, attempts)
                return False
            await self._inbox.done(ticket)
            if fetcher is not None:
                for media in parsed.attachments:
                    try:
                        await fetcher.delete(media)
                    except Exception as exc:  # noqa: BLE001 - the record purge deletes it too
                        log.warning("sms media not deleted at twilio: %s", type(exc).__name__)
            return True
        finally:
            if fetcher is not None:
                await fetcher.aclose()
