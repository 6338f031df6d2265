"""The one seam between Cercle and a way of reaching Signal.

Two ways implement :class:`SignalBackend`: signal-cli-rest-api (:class:`bots.signal.client.
SignalClient`, ``SIGNAL_SERVICE``) and signal-cli's own JSON-RPC daemon (:class:`bots.signal.
daemon.DaemonClient`, ``SIGNAL_CLI``). :class:`~bots.signal.transport.SignalTransport`, the
receive loop, the account look-ups, ``/trust``, captcha challenges, the profile and the CLI
only ever see this protocol. Every method raises :mod:`relay.errors` delivery errors (or
:class:`~bots.signal.errors.SignalServiceError` for set-up problems).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from bots.signal.values import About, Device, OutgoingFile


@runtime_checkable
class SignalBackend(Protocol):
    """What Cercle asks of a way to reach Signal, for the org's one number."""

    @property
    def number(self) -> str:
        """The org's own number."""

    async def aclose(self) -> None:
        """Close connections this object opened."""

    async def about(self) -> About:
        """The service's version and mode (``json-rpc`` for REST, ``daemon`` for signal-cli)."""

    async def check(self) -> About:
        """Raise SignalServiceError if the service is unreachable or misconfigured."""

    async def send(
        self,
        recipient: str,
        message: str,
        *,
        attachments: Sequence[OutgoingFile] = (),
        quote_timestamp: int | None = None,
        quote_author: str | None = None,
        quote_message: str | None = None,
        edit_timestamp: int | None = None,
        view_once: bool = False,
    ) -> str | None:
        """Send to one recipient; the Signal timestamp (None if the answer had none)."""

    async def react(
        self,
        recipient: str,
        emoji: str,
        *,
        target_author: str,
        target_timestamp: int,
        remove: bool = False,
    ) -> None:
        """An emoji reaction (or its removal)."""

    async def remote_delete(self, recipient: str, timestamp: int) -> str | None:
        """Delete our message at ``timestamp`` on the recipient's phone."""

    async def set_expiration(self, recipient: str, seconds: int) -> None:
        """The conversation's disappearing timer (0 = off)."""

    async def get_attachment(self, attachment_id: str, *, max_bytes: int = ...) -> bytes:
        """A received attachment's bytes."""

    async def delete_attachment(self, attachment_id: str) -> None:
        """Delete the service's copy of an attachment (a no-op where none can be)."""

    async def submit_rate_limit_challenge(self, challenge_token: str, captcha: str) -> None:
        """Lift a rate limit with a solved captcha."""

    async def register(self, captcha: str | None = None, *, voice: bool = False) -> None:
        """Ask Signal for a registration code (or say which command does it)."""

    async def verify(self, code: str, pin: str | None = None) -> None:
        """Finish a registration (or say which command does it)."""

    async def trust_identity(self, member: str, verified_safety_number: str) -> None:
        """Trust a verified safety number."""

    async def trust_current_keys(self, member: str) -> None:
        """Trust the member's current keys (``/trust``, after a person confirmed them)."""

    async def set_profile(self, name: str, avatar: bytes | None = None) -> None:
        """The org number's name and avatar."""

    async def accounts(self) -> list[str]:
        """The numbers the service serves."""

    async def devices(self) -> list[Device]:
        """The org account's devices."""

    async def remove_device(self, device_id: int) -> None:
        """Unlink a device."""

    async def registered(self, numbers: Sequence[str]) -> dict[str, bool]:
        """Which numbers are on Signal."""

    async def is_registered(self, number: str) -> bool:
        """Whether one number is on Signal."""

    async def account_id(self, number: str) -> str | None:
        """The account id (ACI) behind a number, when Signal tells."""

    def receive_frames(
        self, *, keepalive: float | None = ...
    ) -> AbstractAsyncContextManager[AsyncIterator[object]]:
        """One receive session: inside the block, each received ``{envelope, account}``
        (or the REST layer's error frames), until the connection ends."""
