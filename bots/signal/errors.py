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


# --- signal-cli's own daemon (JSON-RPC) ---------------------------------------------------


def _send_results(data: object) -> list[dict[str, Any]]:
    """The per-recipient results signal-cli puts in an error's ``data.response``."""
    response = data.get("response") if isinstance(data, dict) else None
    results = response.get("results") if isinstance(response, dict) else None
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


def _seconds(value: object) -> float | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def error_for_result(result: dict[str, Any], what: str) -> DeliveryError:
    """The delivery error for one failed per-recipient result of the daemon."""
    kind = result.get("type")
    token = result.get("token")
    retry_after = _seconds(result.get("retryAfterSeconds"))
    if kind == "RATE_LIMIT_FAILURE" and isinstance(token, str) and token:
        # Signal asks for a captcha (proof required): a person solves it for this token.
        return RateLimitedError(
            Reason.CAPTCHA_REQUIRED,
            f"{what}: Signal asks for a captcha",
            retry_after=retry_after,
            challenge=token,
        )
    if kind == "RATE_LIMIT_FAILURE":
        return RateLimitedError(
            Reason.RATE_LIMITED, f"{what}: rate limited", retry_after=retry_after
        )
    return error_for_recipient_reason(kind)


def error_for_rpc(code: int, message: str, data: object, what: str) -> DeliveryError:
    """The delivery error for a daemon's error answer to ``what``.

    The daemon's message text names recipients: it is read for one fixed phrase (an
    unregistered recipient has no structured result), never copied. Codes: -1 user error,
    -3 IO error, -4 untrusted identity, -5 rate limit, -6 captcha rejected, -32603
    unexpected (network trouble while sending lands here too), -32600/-32601/-32602 a
    request the daemon cannot take.
    """
    failed = [r for r in _send_results(data) if r.get("type") != "SUCCESS"]
    if code == -5:
        limited = [error_for_result(r, what) for r in failed]
        captcha = [e for e in limited if e.reason is Reason.CAPTCHA_REQUIRED]
        if captcha:
            return captcha[0]
        waits = [
            e.retry_after for e in limited if isinstance(e, RateLimitedError) and e.retry_after
        ]
        return RateLimitedError(
            Reason.RATE_LIMITED, f"{what}: rate limited", retry_after=max(waits, default=None)
        )
    if code == -4:
        return IdentityChangedError(Reason.IDENTITY_CHANGED, f"{what}: untrusted identity")
    if code == -1 and failed:
        return error_for_result(failed[0], what)
    if code == -1 and "is not registered" in message:
        return RecipientGoneError(Reason.UNREGISTERED, f"{what}: not registered")
    if code == -1:
        return PermanentError(Reason.REJECTED, f"{what}: refused by signal-cli (-1)")
    if code in (-3, -32603):
        return RetryableError(Reason.NETWORK, f"{what}: signal-cli error {code}")
    return PermanentError(Reason.REJECTED, f"{what}: signal-cli error {code}")
