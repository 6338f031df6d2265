"""A loopback transport that keeps what it "sends" in memory, per address.

It behaves like a well-mannered provider: every send gets a fresh reference (like a Signal
timestamp), timers are remembered per conversation, and failures can be scripted so tests
can watch retries and reports.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from relay.errors import DeliveryError
from relay.messages import Channel, Outgoing, SendReceipt


@dataclass(frozen=True)
class Delivered:
    """What one recipient's phone shows for one message."""

    text: str
    ref: str
    quote_ref: str | None = None
    edit_ref: str | None = None
    delete_ref: str | None = None
    attachments: tuple[tuple[str, str, bytes], ...] = ()  # (content type, file name, bytes)
    view_once: bool = False
    timer: int | None = None  # the conversation's timer when it arrived


@dataclass
class LoopbackTransport:
    """In-memory transport. ``inbox[address]`` lists what that address received, in order."""

    channel_name: Channel = Channel.SANDBOX
    media: bool = True
    timers_on: bool = True
    inbox: dict[str, list[Delivered]] = field(default_factory=lambda: defaultdict(list))
    timers: dict[str, int] = field(default_factory=dict)
    trusted: list[str] = field(default_factory=list)
    failures: dict[str, list[DeliveryError]] = field(default_factory=lambda: defaultdict(list))
    _refs: itertools.count[int] = field(default_factory=lambda: itertools.count(1767225600000))

    @property
    def channel(self) -> Channel:
        """The channel this transport serves."""
        return self.channel_name

    @property
    def supports_timers(self) -> bool:
        """Whether conversations have a disappearing timer."""
        return self.timers_on

    @property
    def supports_media(self) -> bool:
        """Whether attachments can be delivered."""
        return self.media

    def fail_next(self, address: str, *errors: DeliveryError) -> None:
        """Make the next sends to ``address`` raise these errors, in order."""
        self.failures[address].extend(errors)

    async def send(self, message: Outgoing) -> SendReceipt:
        """Record the message in the recipient's inbox."""
        pending = self.failures.get(message.address)
        if pending:
            raise pending.pop(0)
        ref = str(next(self._refs))
        self.inbox[message.address].append(
            Delivered(
                text=message.text,
                ref=ref,
                quote_ref=message.quote.target_ref if message.quote else None,
                edit_ref=message.edit_ref,
                delete_ref=message.delete_ref,
                attachments=tuple(
                    (a.content_type, a.filename, a.data) for a in message.attachments
                ),
                view_once=message.view_once,
                timer=self.timers.get(message.address),
            )
        )
        return SendReceipt(ref=ref)

    async def trust(self, address: str) -> None:
        """Remember that staff confirmed a new safety number."""
        self.trusted.append(address)

    async def set_timer(self, address: str, seconds: int) -> None:
        """Remember the conversation's timer."""
        pending = self.failures.get(address)
        if pending:
            raise pending.pop(0)
        self.timers[address] = seconds
