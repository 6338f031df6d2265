"""The SMS transport: the core's :class:`relay.transport.Transport` over Twilio's Messages API."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from functools import partial
from typing import Any

import anyio
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.rest import Client

from bots.sms.client import HttpxTwilioClient, build_rest_client
from bots.sms.config import SmsConfig
from bots.sms.errors import error_for_exception
from bots.sms.segments import MAX_BODY_CHARS, segment_count, split_message
from relay.doors import MediaHost
from relay.errors import DeliveryError, PermanentError, Reason, RetryableError
from relay.messages import Channel, Outgoing, SendReceipt

log = logging.getLogger(__name__)

_MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")

# Twilio refuses an MMS whose media add up to more than 5 MB.
MMS_MAX_BYTES = 5 * 1024 * 1024


def mms_reaches(message: Outgoing) -> bool:
    """Whether ``message``'s photos can go by MMS: a US or Canadian number (+1, where Twilio
    delivers MMS) and at most 5 MB in all. Elsewhere the recipient gets the core's note."""
    size = sum(len(a.data) for a in message.attachments)
    return message.address.startswith("+1") and size <= MMS_MAX_BYTES


class SmsTransport:
    """Sends SMS (and, where enabled, MMS) through Twilio.

    The twilio client is synchronous, so each call runs in a worker thread; ``max_threads``
    caps how many run at once (pacing to the sender's rate is the delivery engine's job).
    Nothing here logs a number, a body or a URL: only outcomes and Twilio error codes.

    ``media_host`` is needed for MMS: Twilio fetches outbound media from a public URL, so
    someone must host the (already stripped) file briefly. Without one, or with
    ``config.supports_media`` false, :attr:`supports_media` is false. Photos to numbers MMS
    cannot reach (outside +1, or over 5 MB) go as the core's note instead.
    """

    def __init__(
        self,
        config: SmsConfig,
        *,
        client: Client | None = None,
        http_client: HttpxTwilioClient | None = None,
        media_host: MediaHost | None = None,
        max_threads: int = 8,
    ) -> None:
        self._config = config
        self.client: Client = client or build_rest_client(config, http_client)
        self._media_host = media_host
        self._limiter = anyio.CapacityLimiter(max_threads)
        if config.validity_period is not None and not config.messaging_service_sid:
            # Twilio documents ValidityPeriod as a Messaging Service feature; sending it with
            # a bare From number risks a rejected send, so it is not sent. Say so once.
            log.warning(
                "no TWILIO_MESSAGING_SERVICE_SID: validity period not applied, "
                "messages may wait up to 10 hours in Twilio's queue"
            )

    @property
    def channel(self) -> Channel:
        """Always :attr:`Channel.SMS`."""
        return Channel.SMS

    @property
    def supports_timers(self) -> bool:
        """SMS has no disappearing messages."""
        return False

    @property
    def supports_media(self) -> bool:
        """MMS is on when configured (US/Canada numbers) and a media publisher is given."""
        return self._config.supports_media and self._media_host is not None

    async def set_timer(self, address: str, seconds: int) -> None:
        """No-op: SMS conversations have no timer (members are told so at consent)."""

    async def trust(self, address: str) -> None:
        """No-op: SMS has no safety numbers."""

    def _create_params(self, message: Outgoing, media_urls: list[str]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "to": message.address,
            "body": message.text,
            "status_callback": self._config.status_callback_url,
        }
        if self._config.messaging_service_sid:
            params["messaging_service_sid"] = self._config.messaging_service_sid
            if self._config.validity_period is not None:
                params["validity_period"] = self._config.validity_period
        else:
            params["from_"] = self._config.number
        if media_urls:
            params["media_url"] = media_urls
        return params

    async def send(self, message: Outgoing) -> SendReceipt:
        """Send one SMS; return its MessageSid and segment count.

        Edits, quotes and reactions travel as their text only (the core renders them);
        a remote delete cannot exist on SMS and is refused. Bodies over 1600 characters are
        split into readable numbered parts with :func:`bots.sms.segments.split_message`.
        """
        if message.delete_ref is not None:
            raise PermanentError(Reason.REJECTED, "SMS cannot delete a delivered message")
        if len(message.text) > MAX_BODY_CHARS:
            # Long texts go as several readable parts, "(1/3)"…; the last part's sid is the
            # reference, and the segments of every part are counted.
            parts = split_message(message.text, max_chars=MAX_BODY_CHARS)
            receipts = [
                await self._send_single(replace(message, text=part, attachments=()))
                for part in parts[:-1]
            ]
            last = await self._send_single(replace(message, text=parts[-1]))
            return SendReceipt(
                ref=last.ref, segments=last.segments + sum(r.segments for r in receipts)
            )
        return await self._send_single(message)

    async def _send_single(self, message: Outgoing) -> SendReceipt:
        media_urls: list[str] = []
        if message.attachments and not mms_reaches(message):
            message = message.with_media_note()
        if message.attachments:
            if not self.supports_media or self._media_host is None:
                raise PermanentError(Reason.REJECTED, "this SMS transport cannot send media")
            media_urls = [await self._media_host.publish(a) for a in message.attachments]
        if not message.text and not media_urls:
            raise PermanentError(Reason.REJECTED, "empty message")

        create = partial(self.client.messages.create, **self._create_params(message, media_urls))
        failure: DeliveryError | None = None
        try:
            instance = await anyio.to_thread.run_sync(create, limiter=self._limiter)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a delivery error
            failure = error_for_exception(exc)
        if failure is not None:
            # Raised outside the ``except`` so the twilio exception, whose text quotes the
            # number, is not even kept as ``__context__``.
            log.warning("sms send failed: %s (%s)", type(failure).__name__, failure.detail)
            if media_urls and self._media_host is not None:
                await self._media_host.withdraw(media_urls)
            raise failure
        if media_urls and self._media_host is not None:
            await self._media_host.bind(media_urls, str(instance.sid))
        segments = _int(getattr(instance, "num_segments", None)) or segment_count(message.text)
        log.info("sms sent: %d segment(s)", segments)
        return SendReceipt(ref=str(instance.sid), segments=segments)

    async def account_status(self) -> str:
        """Fetch our account (``GET /2010-04-01/Accounts/{AC}.json``) and return its status:
        ``active``, ``suspended`` or ``closed``. Refused credentials raise the delivery error
        of their Twilio code (20003), as a send would."""

        def _fetch() -> str:
            return str(self.client.api.v2010.accounts(self._config.account_sid).fetch().status)

        failure: DeliveryError | None = None
        try:
            return await anyio.to_thread.run_sync(_fetch, limiter=self._limiter)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a delivery error
            failure = error_for_exception(exc)
        raise failure

    async def delete_message(self, sid: str) -> None:
        """Delete Twilio's record of a message (and, since 2020, its media) once final.

        A record already gone counts as deleted. Twilio refuses to delete a message still in
        flight: that raises a retryable error, so call it after a final status callback.
        """
        if not _MESSAGE_SID.fullmatch(sid):
            raise ValueError("not a message SID")

        def _delete() -> None:
            self.client.api.v2010.account.messages(sid).delete()

        failure: DeliveryError | None = None
        try:
            await anyio.to_thread.run_sync(_delete, limiter=self._limiter)
        except (TwilioRestException, TwilioServiceException) as exc:
            if exc.status == 404:
                return
            failure = (
                RetryableError(Reason.PROVIDER_DOWN, "twilio 20009: message not final yet")
                if _int(exc.code) == 20009
                else error_for_exception(exc)
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes a delivery error
            failure = error_for_exception(exc)
        if failure is not None:
            log.warning("sms delete failed: %s (%s)", type(failure).__name__, failure.detail)
            raise failure


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
