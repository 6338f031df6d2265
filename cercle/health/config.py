"""Checks of the configuration: settings that cannot be read, and settings that work but are
risky."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cercle.settings import Settings
from relay.language.i18n import Raw, Renderable, T

if TYPE_CHECKING:
    pass
from cercle.health.finding import Finding


def config_failure(message: str) -> Finding:
    """The finding for settings that could not be read (``message`` names the variable)."""
    return Finding(
        "config",
        "fail",
        T("The configuration cannot be read."),
        T("{message} (see config/example.env and docs/operations.md).", message=message),
    )


def key_missing(message: str) -> Finding:
    """The finding for a missing or malformed ``CERCLE_DATA_KEY`` (``message`` says which)."""
    return Finding("data_key", "fail", T("CERCLE_DATA_KEY is not set."), Raw(message))


def check_config(settings: Settings) -> Finding:
    """What is configured, and the settings that work but are risky."""
    detail = {
        "database": settings.database_url.split(":", 1)[0].split("+", 1)[0],
        "signal": settings.signal_enabled,
        "sms": settings.sms_enabled,
        "key_rotation": settings.data_key_previous is not None,
    }
    if not settings.any_transport:
        return Finding(
            "config",
            "warn",
            T("No transport is configured: only the sandbox can run."),
            T(
                "Set SIGNAL_SERVICE and SIGNAL_NUMBER, and/or the TWILIO_* variables and "
                "PUBLIC_BASE_URL (docs/operations.md). `cercle sandbox` rehearses without them."
            ),
            detail,
        )
    if settings.sms_enabled and not settings.twilio_messaging_service_sid:
        return Finding(
            "config",
            "warn",
            T("SMS sends from a bare number: late messages may wait hours in Twilio's queue."),
            T(
                "Put the number in a Messaging Service and set TWILIO_MESSAGING_SERVICE_SID "
                "(docs/sms.md §1)."
            ),
            detail,
        )
    if settings.signal_enabled and settings.sms_enabled:
        on: Renderable = T("Signal and SMS")
    else:
        on = Raw("Signal" if settings.signal_enabled else "SMS")
    return Finding(
        "config", "ok", T("The configuration is readable; {on} on.", on=on), None, detail
    )
