"""Provider wiring: builds the Signal and SMS adapters from settings, and their loops/routes.

This is the only module outside ``bots/`` that knows both adapters; the core never does.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bots.signal import DaemonClient, SignalClient, SignalReceiver, SignalTransport
from bots.sms.config import SmsConfig
from bots.sms.errors import error_for_code
from bots.sms.media import MediaFetcher
from bots.sms.routes import sms_routes
from bots.sms.transport import SmsTransport
from bots.sms.webhook import (
    FAILED_STATUSES,
    FINAL_RANK,
    CarrierKeyword,
    MessageStatus,
    ParsedInbound,
    WebhookVerifier,
    status_rank,
)
from bots.web.client import TrustedProxies
from bots.web.config import WebConfig
from bots.web.hub import PushHub
from bots.web.routes import WebDoor
from bots.web.store import WebStore
from bots.web.transport import WebTransport
from cercle.settings import Settings
from relay.delivery.bell import Bell
from relay.errors import DeliveryError
from relay.messages import Attachment, Channel, Inbound
from relay.service import accounts
from relay.service.relay import Relay
from relay.storage import inbox, media_links
from relay.transport import Stashed, Transport

log = logging.getLogger(__name__)

INLINE_GRACE = timedelta(seconds=30)  # workers leave a text to its own request this long
# The Signal receiver's retry loop leaves a stashed message to the hand-over in hand this long
# (longer than the receiver's frame timeout); a new receiver takes it at once.
SIGNAL_HOLD = timedelta(seconds=150)
MEDIA_TRIES = 3  # fetches of a message's photos before its text goes alone


@dataclass
class Providers:
    """The adapters this deployment has turned on."""

    signal: SignalTransport | None = None
    sms: SmsTransport | None = None
    sms_config: SmsConfig | None = None
    web: WebTransport | None = None
    web_config: WebConfig | None = None

    @classmethod
    def from_settings(cls, settings: Settings, relay: Relay | None = None) -> Providers:
        """Build each adapter whose variables are set; with ``relay``, SMS members also get
        photos by MMS (hosted briefly through the relay's database, see :class:`PublicMedia`)."""
        providers = cls()
        if settings.signal_cli and settings.signal_number:
            # signal-cli's own daemon: messages wait at Signal while no worker subscribes.
            providers.signal = SignalTransport(
                DaemonClient(settings.signal_cli, settings.signal_number)
            )
        elif settings.signal_service and settings.signal_number:
            providers.signal = SignalTransport(
                SignalClient(settings.signal_service, settings.signal_number)
            )
        if settings.sms_enabled:
            assert settings.twilio_account_sid and settings.twilio_auth_token  # noqa: S101
            assert settings.public_base_url  # noqa: S101 - checked by Settings
            providers.sms_config = SmsConfig(
                account_sid=settings.twilio_account_sid,
                auth_token=settings.twilio_auth_token.value,
                public_base_url=settings.public_base_url,
                number=settings.twilio_number,
                messaging_service_sid=settings.twilio_messaging_service_sid,
                api_key=settings.twilio_api_key,
                api_secret=settings.twilio_api_secret.value if settings.twilio_api_secret else None,
                api_base=settings.twilio_api_base,
                supports_media=relay is not None,
            )
            host = PublicMedia(relay, settings.public_base_url) if relay is not None else None
            providers.sms = SmsTransport(providers.sms_config, media_host=host)
        if settings.web_enabled:
            assert settings.public_base_url  # noqa: S101 - checked by Settings
            providers.web_config = WebConfig(
                public_base_url=settings.public_base_url,
                title=settings.web_title,
                exit_url=settings.web_exit_url,
                proxies=TrustedProxies.parse(settings.trusted_proxies),
            )
            if relay is not None:
                # The web door keeps its copies in Cercle's own database.
                providers.web = WebTransport(WebStore(relay.engine, relay.keys, relay.clock))
        return providers

    def transports(self) -> dict[Channel, Transport]:
        """The transports, by channel."""
        found: dict[Channel, Transport] = {}
        if self.signal is not None:
            found[Channel.SIGNAL] = self.signal
        if self.sms is not None:
            found[Channel.SMS] = self.sms
        if self.web is not None:
            found[Channel.WEB] = self.web
        return found


def web_door(providers: Providers, relay: Relay) -> WebDoor | None:
    """The web door's shared state (store, push hub, limits), when the door is on. A worker in
    this same process wakes the hub directly when it stores a copy."""
    if providers.web is None or providers.web_config is None:
        return None
    config = providers.web_config
    hub = PushHub(providers.web.store, poll=config.poll, max_streams=config.max_streams)
    providers.web.on_stored(hub.poke)
    return WebDoor(relay, providers.web.store, hub, config)


async def accept_in_thread(relay: Relay, inbound: Inbound) -> None:
    """Hand one inbound event to the core without blocking the event loop."""
    await anyio.to_thread.run_sync(relay.accept, inbound)


class InboxStash:
    """The core's durable inbox (:mod:`relay.storage.inbox`) as one channel's
    :class:`relay.transport.InboundStash`: what a receiving adapter writes, sealed, before it
    does anything else with a message."""

    def __init__(self, relay: Relay, channel: Channel, hold: timedelta = SIGNAL_HOLD) -> None:
        self._relay = relay
        self._channel = channel
        self._hold = hold

    async def put(self, dedup_key: str, payload: dict[str, Any]) -> int | None:
        """Store one event, unless already stored or accepted; the retry loop leaves it to
        the caller for ``hold`` (the receiver that takes over after a stop does not)."""
        r = self._relay

        def store() -> int | None:
            if inbox.accepted(r.engine, r.keys, dedup_key):
                return None
            now = r.clock.now()
            return inbox.queue(
                r.engine,
                r.keys,
                now,
                self._channel,
                dedup_key,
                payload,
                not_before=now + self._hold,
            )

        return await anyio.to_thread.run_sync(store)

    async def done(self, ticket: int) -> None:
        """Forget a handed-over event."""
        await anyio.to_thread.run_sync(inbox.done, self._relay.engine, ticket)

    async def later(self, ticket: int, attempts: int) -> None:
        """Try again after a backoff."""
        await _retry_later(self._relay, ticket, attempts)

    async def take(self, *, everything: bool = False) -> list[Stashed]:
        """Events due (or, with ``everything``, all), each held for the caller a while."""
        r = self._relay
        now = r.clock.now()
        claimed = await anyio.to_thread.run_sync(
            lambda: inbox.claim(
                r.engine, r.keys, now, self._channel, limit=100, everything=everything
            )
        )
        return [Stashed(p.id, p.payload, p.attempts) for p in claimed]

    async def release(self, tickets: list[int]) -> None:
        """Give taken events back, due at once."""
        r = self._relay
        await anyio.to_thread.run_sync(lambda: inbox.release(r.engine, tickets, r.clock.now()))


def signal_receiver(providers: Providers, relay: Relay) -> SignalReceiver | None:
    """The Signal receive loop, feeding the core through the durable inbox."""
    if providers.signal is None:
        return None

    async def accept(inbound: Inbound) -> None:
        await accept_in_thread(relay, inbound)

    return SignalReceiver(providers.signal, accept, InboxStash(relay, Channel.SIGNAL))


MEDIA_PATH = "/twilio/media/"


class PublicMedia:
    """Hosts stripped photos for Twilio at ``PUBLIC_BASE_URL/twilio/media/{token}``: a random
    256-bit token, served once, deleted when fetched, when the message is final, or after
    :data:`relay.storage.media_links.TTL`. Only Twilio is ever given the URL; nothing logs it."""

    def __init__(self, relay: Relay, public_base_url: str) -> None:
        self._relay = relay
        self._base = public_base_url.rstrip("/") + MEDIA_PATH

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


def media_route(relay: Relay) -> Route:
    """``GET /twilio/media/{token}``: a hosted photo, once; any other request gets 404."""

    async def serve(request: Request) -> Response:
        token = request.path_params["token"]
        found = await anyio.to_thread.run_sync(
            media_links.take, relay.engine, relay.keys, token, relay.clock.now()
        )
        if found is None:
            return Response("not found", status_code=404, media_type="text/plain")
        content_type, data = found
        log.info("hosted photo fetched: %s, %d bytes", content_type, len(data))
        return Response(data, media_type=content_type)

    return Route(MEDIA_PATH + "{token}", serve, methods=["GET"], name="twilio_media")


def twilio_routes(providers: Providers, relay: Relay) -> list[BaseRoute]:
    """The webhook and status-callback routes, wired to the core.

    Every inbound message is first written to the inbox (sealed) in its own request, before
    Twilio gets its answer: a crash after that loses nothing. A text is then handed to the
    core at once, in the same request, so a live session waits for no poll; a message with
    photos is left to the worker, which fetches, strips and relays them.
    """
    if providers.sms is None or providers.sms_config is None:
        return []
    config = providers.sms_config

    async def accept(parsed: ParsedInbound) -> None:
        if parsed.keyword in (CarrierKeyword.HELP,):
            # The carrier answers HELP itself; never rebroadcast it.
            log.info("sms inbound: carrier help keyword, not relayed")
            return
        now = relay.clock.now()
        if await anyio.to_thread.run_sync(
            inbox.accepted, relay.engine, relay.keys, parsed.inbound.dedup_key
        ):
            log.info("sms inbound: already relayed (a retry of the same message)")
            return
        row_id = await anyio.to_thread.run_sync(
            lambda: inbox.queue(
                relay.engine,
                relay.keys,
                now,
                Channel.SMS,
                parsed.inbound.dedup_key,
                parsed.to_payload(),
                # Workers leave a text to this request unless it dies before handing it over.
                not_before=None if parsed.media else now + INLINE_GRACE,
            )
        )
        if row_id is None:
            log.info("sms inbound: already queued (a retry of the same message)")
        elif not parsed.media:
            await hand_over_sms(providers, relay, row_id, parsed, attempts=1)

    async def on_status(sid: str, status: MessageStatus, error_code: int | None) -> None:
        failure = None
        if status in FAILED_STATUSES:
            failure = error_for_code(error_code).reason
        for _ in range(25):
            known = await anyio.to_thread.run_sync(
                lambda: relay.record_status(
                    Channel.SMS, sid, status.value, status_rank(status), failure
                )
            )
            if known:
                if status_rank(status) >= FINAL_RANK:
                    # Whatever Twilio did not fetch of this message's photos goes now.
                    await anyio.to_thread.run_sync(media_links.forget_message, relay.engine, sid)
                return
            # Twilio can call back before our worker has stored the message's sid.
            await anyio.sleep(0.2)
        log.info("status callback for an unknown message ignored")

    routes: list[BaseRoute] = [*sms_routes(WebhookVerifier.from_config(config), accept, on_status)]
    if providers.sms.supports_media:
        routes.append(media_route(relay))
    return routes


async def hand_over_sms(
    providers: Providers, relay: Relay, row_id: int, parsed: ParsedInbound, attempts: int
) -> bool:
    """Fetch a queued message's photos, give it to the core, then forget it and delete the
    photos at Twilio. Never raises: a failure leaves the row for a later try (after
    :data:`MEDIA_TRIES` failed fetches, the text goes alone). True when the core has it."""
    attachments: tuple[Attachment, ...] = ()
    fetcher = None
    if parsed.media and providers.sms is not None and providers.sms_config is not None:
        fetcher = MediaFetcher(providers.sms_config, providers.sms.client)
    try:
        if fetcher is not None:
            try:
                attachments = tuple([await fetcher.fetch(ref) for ref in parsed.media])
            except Exception:  # noqa: BLE001 - retried, then the text goes alone
                ref = secrets.token_hex(4)
                if attempts < MEDIA_TRIES:
                    log.warning("sms media not fetched yet, try %d (ref %s)", attempts, ref)
                    await _retry_later(relay, row_id, attempts)
                    return False
                log.warning("sms media could not be fetched: the text goes alone (ref %s)", ref)
        try:
            await accept_in_thread(relay, replace(parsed.inbound, attachments=attachments))
        except Exception as exc:  # noqa: BLE001 - the row stays: nothing is lost
            ref = secrets.token_hex(4)
            log.error("sms inbound not accepted yet: %s (ref %s)", type(exc).__name__, ref)  # noqa: TRY400
            await _retry_later(relay, row_id, attempts)
            return False
        await anyio.to_thread.run_sync(inbox.done, relay.engine, row_id)
        if fetcher is not None:
            for media in parsed.media:
                try:
                    await fetcher.delete(media)
                except Exception as exc:  # noqa: BLE001 - the record purge deletes it too
                    log.warning("sms media not deleted at twilio: %s", type(exc).__name__)
        return True
    finally:
        if fetcher is not None:
            await fetcher.aclose()


async def _retry_later(relay: Relay, row_id: int, attempts: int) -> None:
    now = relay.clock.now()
    await anyio.to_thread.run_sync(lambda: inbox.retry_later(relay.engine, row_id, now, attempts))


async def relay_pending_sms(providers: Providers, relay: Relay) -> int:
    """Hand every due queued SMS to the core; return how many were claimed."""
    if providers.sms is None:
        return 0
    now = relay.clock.now()
    claimed = await anyio.to_thread.run_sync(
        lambda: inbox.claim(relay.engine, relay.keys, now, Channel.SMS)
    )
    left = [p.id for p in claimed]
    try:
        for pending in claimed:
            parsed = ParsedInbound.from_payload(pending.payload)
            await hand_over_sms(providers, relay, pending.id, parsed, pending.attempts)
            left.remove(pending.id)
    finally:
        if left:
            # Stopped half-way: what was claimed and not handed over is due again at once.
            with anyio.CancelScope(shield=True):
                now = relay.clock.now()
                await anyio.to_thread.run_sync(lambda: inbox.release(relay.engine, left, now))
    return len(claimed)


async def sms_inbox(
    providers: Providers, relay: Relay, stop: anyio.Event, idle: float = 0.5
) -> None:
    """The worker's inbox loop: queued SMS to the core, at once when this process queued one
    (``cercle run``), else within ``idle`` seconds. A failed round never ends the loop."""
    bell = Bell()
    unwatch = inbox.watch(relay.engine, bell.ring)
    try:
        while not stop.is_set():
            bell.rung = False
            claimed = 0
            try:
                claimed = await relay_pending_sms(providers, relay)
            except Exception:
                log.exception("sms inbox round failed (ref %s)", secrets.token_hex(4))
            if not claimed:
                await bell.doze(idle, stop)
    finally:
        unwatch()


async def purge_twilio_round(providers: Providers, relay: Relay) -> None:
    """Delete message records at Twilio once they are final, and received ones at once, and
    expired photo links. A record Twilio will not delete yet is tried again next round."""
    if providers.sms is None:
        return
    refs = await anyio.to_thread.run_sync(
        lambda: relay.provider_refs_to_purge(Channel.SMS, FINAL_RANK)
    )
    for kind, ref in refs:
        try:
            await providers.sms.delete_message(ref)
        except DeliveryError as exc:
            log.info("twilio record not deleted yet: %s", exc.reason)
            continue
        await anyio.to_thread.run_sync(relay.mark_purged, kind, ref)
    if refs:
        log.info("deleted %d message records at Twilio", len(refs))
    now = relay.clock.now()
    await anyio.to_thread.run_sync(media_links.purge_expired, relay.engine, now)


async def learn_signal_accounts(providers: Providers, relay: Relay) -> int:
    """Ask signal-cli for the account id of every Signal member who has none yet, so that
    they are reached by account, not by a number that may be recycled. Returns how many
    were learned; stops at the first failed call (the next round tries again)."""
    if providers.signal is None:
        return 0
    todo = await anyio.to_thread.run_sync(accounts.members_without_account, relay)
    learned = 0
    for member_id, number in todo:
        try:
            uuid = await providers.signal.client.account_id(number)
        except DeliveryError as exc:
            log.info("signal account lookup failed: %s", exc.reason)
            break
        if uuid is None:
            continue
        if await anyio.to_thread.run_sync(accounts.learn_account, relay, member_id, uuid):
            learned += 1
    if learned:
        log.info("learned %d signal account id(s)", learned)
    return learned
