"""Which transport a vetted number is enrolled on, and its Signal account id: shared by
``cercle member add`` and the staff console, so both enrol the same way."""

from __future__ import annotations

from cercle.bootstrap import App
from relay.errors import CercleError, DeliveryError
from relay.messages import Channel
from relay.phone import normalize


async def channel_and_account(app: App, number: str, via: str | None) -> tuple[Channel, str | None]:
    """The member's channel: ``via`` when given (it must be configured); with one transport
    on, that one; with both, Signal when the number is registered there, else SMS. For Signal,
    also their account id, asked of signal-cli before the welcome goes out, so nothing is ever
    sent to a number that changed hands (``None`` if Signal would not say)."""
    s = app.settings
    enabled = {Channel.SIGNAL: s.signal_enabled, Channel.SMS: s.sms_enabled}
    chosen: Channel | None = None
    if via:
        chosen = Channel(via)
        if chosen not in enabled or not enabled[chosen]:
            raise CercleError(f"{via} is not configured on this deployment.")
    on = [c for c, ok in enabled.items() if ok]
    if not on:
        raise CercleError("No transport is configured: set Signal or Twilio variables first.")
    if chosen is None and len(on) == 1:
        chosen = on[0]
    if chosen == Channel.SMS or app.providers.signal is None:
        return chosen or Channel.SMS, None
    client = app.providers.signal.client
    address = normalize(number)
    if chosen is None and not await client.is_registered(address):
        return Channel.SMS, None
    try:
        return Channel.SIGNAL, await client.account_id(address)
    except DeliveryError:
        return Channel.SIGNAL, None
