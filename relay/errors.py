"""The delivery error family adapters raise, and the project error people may see.

Adapters translate provider errors into these; the delivery engine decides from the class
alone whether to retry, slow down, hold or give up. ``reason`` is a stable code that the
core turns into plain words for facilitators; it never contains an identifier.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a delivery failed, in terms a facilitator can act on."""

    NETWORK = "network"
    PROVIDER_DOWN = "provider_down"
    RATE_LIMITED = "rate_limited"
    CAPTCHA_REQUIRED = "captcha_required"
    UNREGISTERED = "unregistered"
    OPTED_OUT = "opted_out"
    INVALID_NUMBER = "invalid_number"
    UNREACHABLE = "unreachable"
    IDENTITY_CHANGED = "identity_changed"
    REJECTED = "rejected"


class DeliveryError(Exception):
    """A send that did not go through. Subclasses say what to do about it."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        # ``detail`` is for operators' logs: adapters must keep identifiers out of it.
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail


class RetryableError(DeliveryError):
    """Transient: try again later with backoff (network, 5xx, timeouts)."""


class RateLimitedError(RetryableError):
    """The provider asked us to slow down; ``retry_after`` seconds if it said."""

    def __init__(
        self,
        reason: Reason = Reason.RATE_LIMITED,
        detail: str = "",
        retry_after: float | None = None,
        challenge: str | None = None,
    ) -> None:
        super().__init__(reason, detail)
        self.retry_after = retry_after
        # A rate-limit challenge token (Signal); needs a person to solve a captcha.
        self.challenge = challenge


class PermanentError(DeliveryError):
    """Never retry this message to this recipient (rejected, invalid)."""


class RecipientGoneError(PermanentError):
    """The recipient cannot be reached on this channel (unregistered, opted out)."""


class IdentityChangedError(DeliveryError):
    """The recipient's safety number changed: hold their deliveries until staff confirm."""


class CercleError(Exception):
    """A known problem with a message that is safe to show to the person who caused it."""

    def __init__(self, safe_message: str) -> None:
        super().__init__(safe_message)
        self.safe_message = safe_message
