"""What staff are told, in plain words, when a message could not reach someone."""

from __future__ import annotations

from relay.errors import Reason
from relay.language.i18n import T

REASON_WORDS: dict[Reason, T] = {
    Reason.NETWORK: T("the connection to the provider kept failing."),
    Reason.PROVIDER_DOWN: T("the provider was unavailable for too long."),
    Reason.RATE_LIMITED: T("the provider is limiting how fast we can send."),
    Reason.CAPTCHA_REQUIRED: T(
        "Signal asks for a captcha before we can send more; messages are kept until then. An "
        "admin must solve it and run the command shown in the worker's log (see docs/signal.md, "
        "Captcha)."
    ),
    Reason.UNREGISTERED: T(
        "their number is no longer registered on this service (for "
        "Signal: they deleted their account or changed number)."
    ),
    Reason.OPTED_OUT: T(
        "they texted STOP, so SMS can no longer reach them. They can text START to come back."
    ),
    Reason.INVALID_NUMBER: T("their number is not valid for this service."),
    Reason.UNREACHABLE: T(
        "their phone could not be reached (off, out of coverage, or blocked by the carrier)."
    ),
    Reason.IDENTITY_CHANGED: T(
        "their safety number changed, so messages to them are on hold. "
        "Check with them by another safe way, then send /trust and "
        "their name."
    ),
    Reason.REJECTED: T("the provider refused it."),
}
