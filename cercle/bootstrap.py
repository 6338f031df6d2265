"""One place that wires storage, keys, clock, texts, transports and the delivery engine.

The CLI, the web app, the worker, the sandbox and the tests all start from :func:`bootstrap`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine

from cercle.providers import Providers
from cercle.settings import Settings
from relay.clock import Clock, SystemClock
from relay.delivery.pacing import Pace
from relay.delivery.sender import Deliverer, DeliveryPolicy
from relay.language.texts import Texts, default_config_dir
from relay.messages import Channel
from relay.safety.flood import FloodLimit
from relay.service import links
from relay.service.relay import Relay
from relay.storage.crypto import DataKeys
from relay.storage.engine import make_engine
from relay.transport import Transport


@dataclass
class App:
    """A wired Cercle: what every process needs."""

    settings: Settings
    engine: Engine
    keys: DataKeys
    clock: Clock
    texts: Texts
    relay: Relay
    transports: dict[Channel, Transport] = field(default_factory=dict)
    deliverer: Deliverer | None = None
    providers: Providers = field(default_factory=Providers)

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()


def bootstrap(
    settings: Settings,
    *,
    keys: DataKeys | None = None,
    clock: Clock | None = None,
    transports: Mapping[Channel, Transport] | None = None,
    policy: DeliveryPolicy | None = None,
) -> App:
    """Wire an :class:`App` from settings; fails fast if the data key is missing or wrong."""
    previous = settings.data_key_previous.value if settings.data_key_previous else None
    keys = keys or DataKeys.from_text(settings.require_key().value, previous)
    engine = make_engine(settings.database_url)
    clock = clock or SystemClock()
    texts = Texts(settings.config_dir or default_config_dir())
    relay = Relay(
        engine,
        keys,
        clock,
        texts,
        settings.org_name,
        FloodLimit(settings.flood_limit, settings.flood_window),
    )
    relay.video_url = settings.video_url  # the organization's own Jitsi Meet, if any
    providers = Providers() if transports is not None else Providers.from_settings(settings, relay)
    if providers.web_config is not None:
        # /invite gives the link too
        relay.join_link = links.link_maker(relay, providers.web_config.join_link)
    chosen = dict(transports) if transports is not None else providers.transports()
    deliverer = Deliverer(relay, chosen, policy or delivery_policy(settings)) if chosen else None
    return App(settings, engine, keys, clock, texts, relay, chosen, deliverer, providers)


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    """The delivery policy from settings, shared by every worker through the database: SMS
    paced at the sender's rate; Signal paced per member (Signal's own rule) under a
    whole-number ceiling, with a bounded number of sends in flight to signal-cli."""
    return DeliveryPolicy(
        paces={
            Channel.SIGNAL: Pace(settings.signal_rate, settings.signal_burst),
            Channel.SMS: Pace(settings.sms_rate, settings.sms_burst),
        },
        recipient_paces={
            Channel.SIGNAL: Pace(settings.signal_member_rate, settings.signal_member_burst)
        },
        channel_concurrency={Channel.SIGNAL: settings.signal_in_flight},
    )
