"""Twilio errors translated into the core's delivery error family.

Twilio's error *messages* quote the phone numbers involved ("The 'To' number +1… is not a
valid phone number"), so they are never copied: the detail of every error raised here is a
fixed text from the table below, keyed by Twilio's numeric code.
"""

from __future__ import annotations

import httpx
from twilio.base.exceptions import TwilioRestException, TwilioServiceException

from relay.errors import (
    DeliveryError,
    PermanentError,
    RateLimitedError,
    Reason,
    RecipientGoneError,
    RetryableError,
)


class SendOutcomeUnknownError(RetryableError):
    """The request may have reached Twilio (read timeout, dropped connection after sending).

    Still a :class:`RetryableError`, because losing a message is worse than a duplicate for
    most texts; the delivery engine can single this class out if it prefers at-most-once.
    """


# code -> (error class, reason, safe detail). Codes seen on the REST answer (2xxxx) and in
# status callbacks (3xxxx).
_TABLE: dict[int, tuple[type[DeliveryError], Reason, str]] = {
    # --- REST API, at send time ---
    21610: (RecipientGoneError, Reason.OPTED_OUT, "twilio 21610: recipient replied STOP"),
    20429: (RateLimitedError, Reason.RATE_LIMITED, "twilio 20429: too many requests"),
    21211: (PermanentError, Reason.INVALID_NUMBER, "twilio 21211: invalid 'To' number"),
    21614: (PermanentError, Reason.INVALID_NUMBER, "twilio 21614: 'To' is not a mobile number"),
    21612: (PermanentError, Reason.UNREACHABLE, "twilio 21612: cannot route to this number"),
    21408: (
        PermanentError,
        Reason.UNREACHABLE,
        "twilio 21408: sending to this region is not enabled (geo permissions)",
    ),
    21606: (PermanentError, Reason.REJECTED, "twilio 21606: 'From' cannot send SMS"),
    21617: (PermanentError, Reason.REJECTED, "twilio 21617: body exceeds 1600 characters"),
    21602: (PermanentError, Reason.REJECTED, "twilio 21602: body is required"),
    21624: (PermanentError, Reason.REJECTED, "twilio 21624: invalid validity period"),
    # Credentials or account trouble stops every send: retrying (with backoff) lets the
    # operator fix it without the group losing messages.
    20003: (RetryableError, Reason.PROVIDER_DOWN, "twilio 20003: authentication failed"),
    20005: (RetryableError, Reason.PROVIDER_DOWN, "twilio 20005: account not active"),
    # --- status callbacks, after the fact ---
    30001: (RateLimitedError, Reason.RATE_LIMITED, "twilio 30001: queue overflow"),
    30002: (PermanentError, Reason.REJECTED, "twilio 30002: account suspended"),
    30003: (PermanentError, Reason.UNREACHABLE, "twilio 30003: handset unreachable"),
    30004: (PermanentError, Reason.REJECTED, "twilio 30004: message blocked"),
    30005: (PermanentError, Reason.INVALID_NUMBER, "twilio 30005: unknown or inactive number"),
    30006: (PermanentError, Reason.UNREACHABLE, "twilio 30006: landline or unreachable carrier"),
    30007: (PermanentError, Reason.REJECTED, "twilio 30007: filtered by the carrier"),
    30008: (RetryableError, Reason.PROVIDER_DOWN, "twilio 30008: unknown carrier error"),
    30032: (PermanentError, Reason.REJECTED, "twilio 30032: toll-free number not verified"),
    30034: (PermanentError, Reason.REJECTED, "twilio 30034: 10DLC number not registered"),
    30036: (RateLimitedError, Reason.RATE_LIMITED, "twilio 30036: validity period expired"),
}


def error_for_code(code: int | None, http_status: int | None = None) -> DeliveryError:
    """The delivery error for a Twilio error code (from the REST answer or a status callback).

    Unknown codes fall back on the HTTP status: 429 → rate limited, 5xx → retryable, anything
    else → permanent ``REJECTED``.
    """
    if code is not None and code in _TABLE:
        cls, reason, detail = _TABLE[code]
        return cls(reason, detail)
    label = f"twilio {code}" if code is not None else "twilio"
    if http_status == 429:
        return RateLimitedError(Reason.RATE_LIMITED, f"{label}: HTTP 429")
    if http_status is not None and http_status >= 500:
        return RetryableError(Reason.PROVIDER_DOWN, f"{label}: HTTP {http_status}")
    status = f": HTTP {http_status}" if http_status is not None else ""
    return PermanentError(Reason.REJECTED, f"{label}{status}")


def error_for_exception(exc: BaseException) -> DeliveryError:
    """Translate whatever a twilio REST call raised. Never copies the exception's message."""
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        status = _int_or_none(exc.status)
        code = _int_or_none(exc.code)
        if code == status:  # twilio puts the HTTP status in ``code`` when the body had none
            code = None
        return error_for_code(code, status)
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        # The request never left: safe to send again.
        return RetryableError(Reason.NETWORK, f"network: {type(exc).__name__}")
    if isinstance(exc, httpx.TransportError):
        return SendOutcomeUnknownError(Reason.NETWORK, f"network: {type(exc).__name__}")
    # Anything else (a garbled answer, a bug) may have happened after Twilio took the message.
    return SendOutcomeUnknownError(Reason.NETWORK, f"unexpected: {type(exc).__name__}")


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
