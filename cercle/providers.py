"""Provider wiring: builds the Signal and SMS adapters from settings, and their loops/routes.

This is the only module outside ``bots/`` that knows both adapters; the core never does.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace

import anyio
from sqlalchemy import Engine
from starlette.routing import BaseRoute

from bots.signal import SignalClient, SignalReceiver, SignalTransport
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
from bots.web.config import WebConfig
from bots.web.hub import PushHub
from bots.web.routes import WebDoor
from bots.web.store import WebStore
from bots.web.transport import WebTransport
from cercle.settings import Settings
from relay.clock import Clock
from relay.crypto import DataKeys
from relay.errors import DeliveryError
from relay.messages import Channel, Inbound
from relay.service import Relay
from relay.transport import Transport

log = logging.getLogger(__name__)


@dataclass
class Providers:
    """The adapters this deployment has turned on."""

    signal: SignalTransport | None = None
    sms: SmsTransport | None = None
    sms_config: SmsConfig | None = None
    web: WebTransport | None = None
    web_config: WebConfig | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Providers:
        """Build each adapter whose variables are set."""
        providers = cls()
        if settings.signal_service and settings.signal_number:
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
            )
            providers.sms = SmsTransport(providers.sms_config)
        if settings.web_enabled:
            assert settings.public_base_url  # noqa: S101 - checked by Settings
            providers.web_config = WebConfig(
                public_base_url=settings.public_base_url,
                title=settings.web_title,
                exit_url=settings.web_exit_url,
            )
        return providers

    def bind(self, engine: Engine, keys: DataKeys, clock: Clock) -> None:
        """Build the adapters that keep their state in Cercle's own database (the web door)."""
        if self.web_config is not None and self.web is None:
            self.web = WebTransport(WebStore(engine, keys, clock))

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


def signal_receiver(providers: Providers, relay: Relay) -> SignalReceiver | None:
    """The Signal receive loop, feeding the core."""
    if providers.signal is None:
        return None

    async def accept(inbound: Inbound) -> None:
        await accept_in_thread(relay, inbound)

    return SignalReceiver(providers.signal, accept)


def twilio_routes(
    providers: Providers, relay: Relay, background: anyio.abc.TaskGroup | None = None
) -> list[BaseRoute]:
    """The webhook and status-callback routes, wired to the core."""
    if providers.sms is None or providers.sms_config is None:
        return []
    config, sms = providers.sms_config, providers.sms

    async def accept(parsed: ParsedInbound) -> None:
        if parsed.keyword in (CarrierKeyword.HELP,):
            # The carrier answers HELP itself; never rebroadcast it.
            log.info("sms inbound: carrier help keyword, not relayed")
            return
        if parsed.media and background is not None:
            # Fetching MMS media can take seconds: answer Twilio now, finish in the background.
            background.start_soon(_accept_with_media, relay, sms, config, parsed)
            return
        await accept_in_thread(relay, parsed.inbound)

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
                return
            # Twilio can call back before our worker has stored the message's sid.
            await anyio.sleep(0.2)
        log.info("status callback for an unknown message ignored")

    return list(sms_routes(WebhookVerifier.from_config(config), accept, on_status))


async def _accept_with_media(
    relay: Relay, sms: SmsTransport, config: SmsConfig, parsed: ParsedInbound
) -> None:
    fetcher = MediaFetcher(config, sms.client)
    try:
        attachments = await fetcher.fetch_all_and_delete(parsed.media)
    except Exception:  # noqa: BLE001 - relay the text even if the media failed
        log.warning("sms media could not be fetched (ref %s)", secrets.token_hex(4))
        attachments = ()
    finally:
        await fetcher.aclose()
    await accept_in_thread(relay, replace(parsed.inbound, attachments=attachments))


async def purge_twilio_records(
    providers: Providers, relay: Relay, stop: anyio.Event, every: float = 30.0
) -> None:
    """Delete message records at Twilio once they are final, and received ones at once."""
    if providers.sms is None:
        return
    while not stop.is_set():
        try:
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
        except Exception:
            log.exception("twilio purge round failed (ref %s)", secrets.token_hex(4))
        with anyio.move_on_after(every):
            await stop.wait()


async def signal_registered(providers: Providers, number: str) -> bool:
    """Whether ``number`` is on Signal, asked of signal-cli-rest-api."""
    if providers.signal is None:
        return False
    return await providers.signal.client.is_registered(number)
