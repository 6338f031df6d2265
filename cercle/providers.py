"""Provider wiring: builds the Signal and SMS adapters from settings, and their loops/routes.

This is the only module outside ``bots/`` that knows both adapters; the core never does.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bots.signal import DaemonClient, SignalClient, SignalReceiver, SignalTransport
from bots.sms.config import SmsConfig
from bots.sms.errors import error_for_code
from bots.sms.intake import SmsIntake
from bots.sms.routes import sms_routes
from bots.sms.transport import SmsTransport
from bots.sms.webhook import (
    FAILED_STATUSES,
    FINAL_RANK,
    MessageStatus,
    WebhookVerifier,
    status_rank,
)
from bots.web.client import TrustedProxies
from bots.web.config import WebConfig
from bots.web.hub import PushHub
from bots.web.routes import WebDoor
from bots.web.transport import WebTransport
from cercle.settings import Settings
from relay.delivery.bell import Bell
from relay.doors import Accept, Result
from relay.errors import DeliveryError
from relay.inbound.media import sanitize
from relay.messages import Channel, Inbound
from relay.service import accounts
from relay.service.inbox import ChannelInbox
from relay.service.media_host import PublicMedia
from relay.service.relay import Relay
from relay.service.web_joins import WebJoining
from relay.service.web_seats import WebStore
from relay.storage import inbox, media_links
from relay.transport import Transport

log = logging.getLogger(__name__)

INLINE_GRACE = timedelta(seconds=30)  # workers leave a text to its own request this long
MEDIA_PATH = "/twilio/media/"  # photos hosted for Twilio to fetch (relay/service/media_host.py)
# The Signal receiver's retry loop leaves a stashed message to the hand-over in hand this long
# (longer than the receiver's frame timeout); a new receiver takes it at once.
SIGNAL_HOLD = timedelta(seconds=150)


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
        photos by MMS (hosted briefly in the core's database: ``PublicMedia``, served by
        :func:`media_route`)."""
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
            base = settings.public_base_url.rstrip("/") + MEDIA_PATH
            host = PublicMedia(relay, base) if relay is not None else None
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
    store = providers.web.store
    assert isinstance(store, WebStore)  # noqa: S101 - built so by from_settings
    return WebDoor(core_accept(relay), WebJoining(relay, store), store, hub, config, sanitize)


def core_accept(relay: Relay) -> Accept:
    """The one way in every adapter is given (:data:`relay.doors.Accept`): an inbound event
    to the core, in a worker thread so the event loop never blocks."""

    async def accept(inbound: Inbound) -> Result:
        return await anyio.to_thread.run_sync(relay.accept, inbound)

    return accept


def signal_receiver(providers: Providers, relay: Relay) -> SignalReceiver | None:
    """The Signal receive loop, feeding the core through the durable inbox."""
    if providers.signal is None:
        return None

    stash = ChannelInbox(relay, Channel.SIGNAL, hold=SIGNAL_HOLD, batch=100)
    return SignalReceiver(providers.signal, core_accept(relay), stash)


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


def sms_intake(providers: Providers, relay: Relay) -> SmsIntake | None:
    """The SMS adapter's way in, over the core's inbox and ``accept``, when SMS is on."""
    if providers.sms is None or providers.sms_config is None:
        return None
    box = ChannelInbox(relay, Channel.SMS, hold=INLINE_GRACE)
    return SmsIntake(providers.sms_config, providers.sms.client, core_accept(relay), box)


def twilio_routes(providers: Providers, relay: Relay) -> list[BaseRoute]:
    """The webhook and status-callback routes, wired to the core: each received message goes
    to :meth:`bots.sms.intake.SmsIntake.received` (stored, then handed over)."""
    intake = sms_intake(providers, relay)
    if intake is None or providers.sms is None or providers.sms_config is None:
        return []
    config = providers.sms_config

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

    verifier = WebhookVerifier.from_config(config)
    routes: list[BaseRoute] = [*sms_routes(verifier, intake.received, on_status)]
    if providers.sms.supports_media:
        routes.append(media_route(relay))
    return routes


async def relay_pending_sms(providers: Providers, relay: Relay) -> int:
    """Hand every due stored SMS to the core; return how many were taken."""
    intake = sms_intake(providers, relay)
    return 0 if intake is None else await intake.relay_pending()


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
