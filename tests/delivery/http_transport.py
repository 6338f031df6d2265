"""A minimal HTTP transport for the fake provider: the shape of a real adapter, no SDK.

It maps HTTP outcomes to the core's delivery errors with the Signal adapter's own mapping
(``bots.signal.errors``): 5xx and timeouts are retryable, 429 and signal-cli's 400 ``[413]``
are rate limits (with ``Retry-After`` when given), other 4xx are permanent.
"""

from __future__ import annotations

import httpx

from bots.signal.errors import error_for_response
from relay.errors import Reason, RetryableError
from relay.messages import Channel, Outgoing, SendReceipt


class HttpTransport:
    """Sends each message as one ``POST /send``."""

    def __init__(
        self,
        base_url: str,
        channel: Channel = Channel.SANDBOX,
        timeout: float = 0.5,
        limits: int = 64,
    ) -> None:
        self.channel_name = channel
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            limits=httpx.Limits(max_connections=limits, max_keepalive_connections=limits),
        )

    @property
    def channel(self) -> Channel:
        """The channel served."""
        return self.channel_name

    @property
    def supports_timers(self) -> bool:
        """No timers on the fake."""
        return False

    @property
    def supports_media(self) -> bool:
        """No media on the fake."""
        return False

    async def send(self, message: Outgoing) -> SendReceipt:
        """Deliver one message."""
        try:
            r = await self.client.post("/send", json={"to": message.address, "text": message.text})
        except httpx.TimeoutException as exc:
            raise RetryableError(Reason.NETWORK, "timeout") from exc
        except httpx.TransportError as exc:
            raise RetryableError(Reason.NETWORK, type(exc).__name__) from exc
        if r.status_code >= 400:
            raise error_for_response(r, "send")
        return SendReceipt(ref=str(r.json()["ref"]))

    async def set_timer(self, address: str, seconds: int) -> None:
        """Nothing to set."""
        del address, seconds
