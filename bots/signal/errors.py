"""Turn signal-cli-rest-api answers into the core's delivery error family.

The server's error strings often contain the recipient's number or the account's: nothing
of them is ever copied into an error. ``detail`` holds fixed words and status codes only.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from relay.errors import (
    DeliveryError,
    IdentityChangedError,
    PermanentError,
    RateLimitedError,
    Reason,
    RecipientGoneError,
    RetryableError,
)


class SignalServiceError(Exception):
    """signal-cli-rest-api is missing or misconfigured; the message says what to fix.

    Raised at start-up checks (not during delivery). The message names the setting and the
    service address, never a member.
    """


# Substrings of a 400 error text (lower-cased) and what they mean. Order matters: the
# first match wins. The json-rpc layer turns signal-cli's codes into these texts.
_TEXT_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("[413]", "rate limit", "ratelimit"), "rate_limited"),
    (("untrusted", "identity"), "identity"),
    (("unregistered", "not registered", "is not a signal user"), "unregistered"),
    (("timed out", "timeout", "ioexception", "network", "connection"), "network"),
)

# Per-recipient failure reasons in a 201 answer (signal-cli SendMessageResult types).
_RECIPIENT_REASON = re.compile(r"^[A-Z_]{1,40}$")


def _error_text(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:2000]
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return ""


def _challenge_tokens(response: httpx.Response) -> list[str]:
    try:
        body: Any = response.json()
    except ValueError:
        return []
    tokens = body.get("challenge_tokens") if isinstance(body, dict) else None
    if not isinstance(tokens, list):
        return []
    return [t for t in tokens if isinstance(t, str) and t]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_for_response(response: httpx.Response, what: str) -> DeliveryError:
    """The delivery error for a non-2xx answer to the call named ``what`` (e.g. "send")."""
    status = response.status_code
    if status == 429:
        tokens = _challenge_tokens(response)
        if tokens:
            # Keep the token: a person solves a captcha and submits it with this token.
            return RateLimitedError(
                Reason.CAPTCHA_REQUIRED,
                f"{what}: HTTP 429, Signal asks for a captcha",
                retry_after=_retry_after(response),
                challenge=tokens[0],
            )
        return RateLimitedError(
            Reason.RATE_LIMITED, f"{what}: HTTP 429", retry_after=_retry_after(response)
        )
    if status >= 500:
        return RetryableError(Reason.PROVIDER_DOWN, f"{what}: HTTP {status}")
    if status in (408, 425):
        return RetryableError(Reason.NETWORK, f"{what}: HTTP {status}")
    text = _error_text(response).lower()
    for needles, kind in _TEXT_RULES:
        if any(n in text for n in needles):
            return _by_kind(kind, f"{what}: HTTP {status}, {kind.replace('_', ' ')}")
    return PermanentError(Reason.REJECTED, f"{what}: HTTP {status}")


def _by_kind(kind: str, detail: str) -> DeliveryError:
    if kind == "rate_limited":
        return RateLimitedError(Reason.RATE_LIMITED, detail)
    if kind == "identity":
        return IdentityChangedError(Reason.IDENTITY_CHANGED, detail)
    if kind == "unregistered":
        return RecipientGoneError(Reason.UNREGISTERED, detail)
    return RetryableError(Reason.NETWORK, detail)


def error_for_recipient_reason(reason: object) -> DeliveryError:
    """The delivery error for one per-recipient failure reason in a 201 send answer."""
    code = reason if isinstance(reason, str) and _RECIPIENT_REASON.match(reason) else "UNKNOWN"
    detail = f"send: recipient failure {code}"
    if code == "RATE_LIMIT_FAILURE":
        return RateLimitedError(Reason.RATE_LIMITED, detail)
    if code == "PROOF_REQUIRED_FAILURE":
        # Signal wants a captcha; the token only comes with a 429, which the next send gets.
        return RateLimitedError(Reason.CAPTCHA_REQUIRED, detail)
    if code == "IDENTITY_FAILURE":
        return IdentityChangedError(Reason.IDENTITY_CHANGED, detail)
    if code == "UNREGISTERED_FAILURE":
        return RecipientGoneError(Reason.UNREGISTERED, detail)
    # NETWORK_FAILURE, INVALID_PRE_KEY_FAILURE and codes we do not know are retried: never
    # drop a member because of a provider's bad hour.
    return RetryableError(Reason.NETWORK, detail)


def error_for_exception(exc: httpx.HTTPError, what: str) -> DeliveryError:
    """The delivery error for a request that got no answer (timeout, refused, reset)."""
    if isinstance(exc, httpx.TimeoutException):
        return RetryableError(Reason.NETWORK, f"{what}: timed out ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError):
        return RetryableError(Reason.PROVIDER_DOWN, f"{what}: cannot connect")
    return RetryableError(Reason.NETWORK, f"{what}: {type(exc).__name__}")


def decode_json(response: httpx.Response) -> object:
    """The JSON body of a 2xx answer, or None when it is not JSON."""
    try:
        return json.loads(response.content)
    except ValueError:
        return None
