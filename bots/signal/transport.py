"""``SignalTransport``: the core's Transport protocol over either way to Signal (the seam in
:mod:`bots.signal.seam`: signal-cli-rest-api or signal-cli's own daemon).

It also turns a parsed frame into an :class:`~relay.messages.Inbound` with its attachment
bytes (:meth:`SignalTransport.to_inbound`), deleting the server's copies as it goes.
"""

from __future__ import annotations

import dataclasses
import logging

import anyio

from bots.signal.envelope import AttachmentRef, ParsedMessage
from bots.signal.seam import SignalBackend
from bots.signal.values import OutgoingFile
from relay.errors import DeliveryError, PermanentError, Reason, RetryableError
from relay.messages import Attachment, Channel, Inbound, Outgoing, SendReceipt

log = logging.getLogger(__name__)

# Fetch attempts per attachment before the message goes on without it.
_FETCH_ATTEMPTS = 3
_FETCH_RETRY_DELAY = 0.5


def _ref_timestamp(ref: str, what: str) -> int:
    """A Signal timestamp from a core ref; a malformed ref can never be sent."""
    if ref.isascii() and ref.isdigit() and len(ref) <= 20:
        return int(ref)
    raise PermanentError(Reason.REJECTED, f"{what}: malformed reference")


class SignalTransport:
    """Sends one :class:`Outgoing` per call through a :class:`SignalBackend`.

    Quotes and reactions are authored by the org's number, or by the recipient when the
    target is the recipient's own message: never by a third member, whose number must not
    reach anyone else.

    ``Outgoing.address`` may be an E.164 number or a Signal uuid (for members whose number
    Signal does not share): signal-cli-rest-api takes either as a recipient. On Signal the
    conversation's timer applies to every message, so ``Outgoing.expires_in_seconds`` is not
    sent: the core keeps the timer right with :meth:`set_timer`.
    """

    def __init__(self, client: SignalBackend) -> None:
        self._client = client

    @property
    def channel(self) -> Channel:
        """Signal."""
        return Channel.SIGNAL

    @property
    def supports_timers(self) -> bool:
        """Signal conversations have a disappearing timer the core enforces."""
        return True

    @property
    def supports_media(self) -> bool:
        """Signal carries attachments."""
        return True

    @property
    def client(self) -> SignalBackend:
        """The underlying client (start-up checks, captcha challenges, registration)."""
        return self._client

    async def send(self, message: Outgoing) -> SendReceipt:
        """Deliver one message to one recipient; ``ref`` is the Signal timestamp.

        A remote delete or a reaction is one call of its own; anything else goes to
        ``/v2/send`` (text, attachments, quote, edit, view-once).
        """
        if message.delete_ref is not None:
            ts = await self._client.remote_delete(
                message.address, _ref_timestamp(message.delete_ref, "remote delete")
            )
            return SendReceipt(ref=ts)
        if message.reaction is not None:
            reaction = message.reaction
            await self._client.react(
                message.address,
                reaction.emoji,
                target_author=self._author(
                    message.address, by_recipient=message.reaction_by_recipient
                ),
                target_timestamp=_ref_timestamp(reaction.target_ref, "react"),
                remove=reaction.remove,
            )
            return SendReceipt(ref=None)
        quote = message.quote
        files = [OutgoingFile(a.content_type, a.data) for a in message.attachments]
        timestamp = await self._client.send(
            message.address,
            message.text,
            attachments=files,
            quote_timestamp=_ref_timestamp(quote.target_ref, "quote") if quote else None,
            quote_author=self._author(message.address, by_recipient=quote.by_recipient)
            if quote
            else None,
            quote_message=quote.text or None if quote else None,
            edit_timestamp=_ref_timestamp(message.edit_ref, "edit") if message.edit_ref else None,
            view_once=message.view_once,
        )
        return SendReceipt(ref=timestamp)

    def _author(self, recipient: str, *, by_recipient: bool) -> str:
        # The only two numbers a recipient may see: their own and the org's.
        return recipient if by_recipient else self._client.number

    async def set_timer(self, address: str, seconds: int) -> None:
        """Set the disappearing timer of the conversation with ``address`` (0 = off)."""
        if seconds < 0:
            raise PermanentError(Reason.REJECTED, "set timer: negative seconds")
        await self._client.set_expiration(address, seconds)

    async def trust(self, address: str) -> None:
        """Trust the member's new safety number once staff confirmed it (``/trust``)."""
        await self._client.trust_current_keys(address)

    async def fetch_attachment(self, attachment_id: str, *, keep_copy: bool = False) -> bytes:
        """Download one attachment, then delete the server's copy (even if empty), unless
        ``keep_copy`` (the caller deletes it once the core has the message)."""
        data = await self._client.get_attachment(attachment_id)
        if not keep_copy:
            await self.discard_attachment(attachment_id)
        return data

    async def discard_attachment(self, attachment_id: str) -> None:
        """Delete the server's copy of an attachment; failures are logged, not raised."""
        try:
            await self._client.delete_attachment(attachment_id)
        except DeliveryError as exc:
            log.warning("signal attachment delete failed (%s)", exc.reason)

    async def discard_copies(self, parsed: ParsedMessage) -> None:
        """Delete the server's copies of every attachment a parsed frame named."""
        for attachment_id in (*(a.id for a in parsed.attachments), *parsed.discard_ids):
            await self.discard_attachment(attachment_id)

    async def to_inbound(self, parsed: ParsedMessage, *, keep_copies: bool = False) -> Inbound:
        """The Inbound of a parsed frame, with attachment bytes fetched.

        Server copies are deleted, including those not relayed, unless ``keep_copies``:
        then they stay until :meth:`discard_copies`, so a crash before the core has the
        message can fetch them again. An attachment that cannot be fetched after a few
        tries is left out (and counted in the log), so the text still reaches the group.
        """
        if not keep_copies:
            for attachment_id in parsed.discard_ids:
                await self.discard_attachment(attachment_id)
        if not parsed.attachments:
            return parsed.inbound
        fetched: list[Attachment] = []
        for ref in parsed.attachments:
            attachment = await self._fetch_with_retries(ref, keep_copy=keep_copies)
            if attachment is not None:
                fetched.append(attachment)
        missing = len(parsed.attachments) - len(fetched)
        if missing:
            log.warning(
                "signal inbound: %d of %d attachments not fetched", missing, len(parsed.attachments)
            )
        return dataclasses.replace(parsed.inbound, attachments=tuple(fetched))

    async def _fetch_with_retries(
        self, ref: AttachmentRef, *, keep_copy: bool
    ) -> Attachment | None:
        for attempt in range(1, _FETCH_ATTEMPTS + 1):
            try:
                data = await self.fetch_attachment(ref.id, keep_copy=keep_copy)
            except RetryableError as exc:
                log.warning("signal attachment fetch %d failed (%s)", attempt, exc.reason)
                if attempt < _FETCH_ATTEMPTS:
                    await anyio.sleep(_FETCH_RETRY_DELAY * attempt)
            except DeliveryError as exc:
                log.warning("signal attachment fetch failed for good (%s)", exc.reason)
                await self.discard_attachment(ref.id)
                return None
            else:
                # The sender's filename is not passed on: nobody needs it, so nobody can leak it.
                return Attachment(content_type=ref.content_type, data=data)
        return None
