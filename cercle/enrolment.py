"""Which transport a vetted number is enrolled on: shared by ``cercle member add`` and the
staff console, so both choose the same way."""

from __future__ import annotations

from cercle.bootstrap import App
from cercle.providers import signal_registered
from relay.errors import CercleError
from relay.messages import Channel
from relay.phone import normalize


async def choose_channel(app: App, number: str, via: str | None) -> Channel:
    """``via`` when given (it must be configured); with one transport on, that one; with
    both, Signal when the number is registered there, else SMS."""
    s = app.settings
    enabled = {Channel.SIGNAL: s.signal_enabled, Channel.SMS: s.sms_enabled}
    if via:
        channel = Channel(via)
        if channel not in enabled or not enabled[channel]:
            raise CercleError(f"{via} is not configured on this deployment.")
        return channel
    on = [c for c, ok in enabled.items() if ok]
    if not on:
        raise CercleError("No transport is configured: set Signal or Twilio variables first.")
    if len(on) == 1:
        return on[0]
    registered = await signal_registered(app.providers, normalize(number))
    return Channel.SIGNAL if registered else Channel.SMS
