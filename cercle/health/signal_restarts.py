"""Whether Signal messages survive the worker's restarts on this deployment's set-up.

signal-cli-rest-api runs signal-cli so that it pulls every message from Signal as soon as it
arrives, and drops what comes while no worker is attached: every deploy, upgrade, key
rotation or crash loses what members write meanwhile, without anyone being told. signal-cli's
own daemon in ``manual`` receive mode reads from Signal only while a worker subscribes, so
messages wait at Signal until the worker is back. ``cercle doctor`` says which one is in use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cercle.health.finding import Finding
from relay.language.i18n import T

if TYPE_CHECKING:
    from cercle.settings import Settings

CHECK = "signal_restarts"


def check_signal_restarts(settings: Settings) -> Finding:
    """Warn on the signal-cli-rest-api set-up, where a restart loses messages."""
    if settings.signal_cli and settings.signal_number:
        return Finding(
            CHECK,
            "ok",
            T("Signal messages wait at Signal while the worker restarts (signal-cli daemon)."),
            None,
            {"setup": "daemon", "loses_messages_on_restart": False},
        )
    if settings.signal_service and settings.signal_number:
        return Finding(
            CHECK,
            "warn",
            T(
                "Signal messages that arrive while the worker is stopped or restarting are lost "
                "(signal-cli-rest-api), and nobody is told."
            ),
            T(
                "Run signal-cli's own daemon in manual receive mode and set SIGNAL_CLI instead "
                "of SIGNAL_SERVICE (docs/signal.md)."
            ),
            {"setup": "rest", "loses_messages_on_restart": True},
        )
    return Finding(CHECK, "skip", T("Signal is not configured."))
