"""``cercle doctor`` on the signal-cli daemon set-up (``SIGNAL_CLI``).

Three things are checked: the daemon answers and is not older than the oldest signal-cli
Cercle was tested with (Signal stops serving, and in time unregisters, accounts on
outdated clients); it runs in ``manual`` receive mode, the only mode that leaves messages at
Signal while no worker is subscribed; and no other device is linked to the number.
"""

from __future__ import annotations

import re

from bots.signal.daemon import DaemonClient
from bots.signal.errors import SignalServiceError
from cercle.health.finding import Finding
from relay.errors import DeliveryError
from relay.language.i18n import TN, T

# The oldest signal-cli whose behaviour Cercle's tests reproduce: the daemon fake is written
# from signal-cli 0.14.6's documentation and source. Signal retires old protocol versions, and
# a client too old to follow loses its messages, then its registration.
OLDEST_TESTED = (0, 14, 6)


def version_tuple(version: str) -> tuple[int, ...] | None:
    """``0.14.7-SNAPSHOT`` → (0, 14, 7); None when it is not a version number."""
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", version.strip())
    if match is None:
        return None
    return tuple(int(part or 0) for part in match.groups())


def linked_devices(devices: int, detail: dict[str, object]) -> Finding | None:
    """The warning when ``devices`` (the org's number's, signal-cli's own included) are more
    than one, on either set-up; None when signal-cli is the only device."""
    if devices <= 1:
        return None
    return Finding(
        "signal",
        "warn",
        TN(
            "DANGER: {n} other device is linked to the organization's number. Whoever "
            "holds it sees every member's number and message.",
            "DANGER: {n} other devices are linked to the organization's number. Whoever "
            "holds one sees every member's number and message.",
            devices - 1,
        ),
        T(
            "`cercle signal status` lists them; unlink each with `cercle signal unlink ID` "
            "(docs/signal.md §2)."
        ),
        detail,
    )


async def check_signal_daemon(client: DaemonClient) -> Finding:
    """The daemon answers, is recent enough, keeps messages at Signal, has no other device."""
    try:
        about = await client.about()
    except SignalServiceError:
        return Finding(
            "signal",
            "fail",
            T("signal-cli's daemon does not answer at SIGNAL_CLI."),
            T(
                "Start it (signal-cli -a NUMBER daemon --tcp HOST:PORT --receive-mode=manual) "
                "and check SIGNAL_CLI (docs/signal.md)."
            ),
        )
    detail: dict[str, object] = {"version": about.version, "way": "signal-cli daemon"}
    try:
        # How the mode is told from the protocol: DaemonClient.receive_mode_is_manual.
        manual = await client.receive_mode_is_manual()
    except DeliveryError as exc:
        manual = None
        detail["mode_probe"] = exc.reason
    detail["manual_mode"] = manual
    if manual is False:
        return Finding(
            "signal",
            "fail",
            T(
                "signal-cli's daemon is not in manual receive mode: messages that arrive "
                "while the worker is stopped are lost."
            ),
            T("Restart the daemon with --receive-mode=manual (docs/signal.md)."),
            detail,
        )
    found = version_tuple(about.version)
    oldest = ".".join(map(str, OLDEST_TESTED))
    if found is None or found < OLDEST_TESTED:
        return Finding(
            "signal",
            "warn",
            T(
                "signal-cli {version} is older than {oldest}, the oldest version Cercle was "
                "tested with; Signal unregisters accounts on outdated clients.",
                version=about.version,
                oldest=oldest,
            ),
            T("Upgrade signal-cli (docs/signal.md, upgrades)."),
            detail,
        )
    if manual is None:
        return Finding(
            "signal",
            "warn",
            T("The daemon's receive mode could not be checked."),
            T("Make sure it runs with --receive-mode=manual (docs/signal.md)."),
            detail,
        )
    try:
        devices = await client.devices()
    except DeliveryError as exc:
        devices = []
        detail["devices_error"] = exc.reason
    detail["devices"] = len(devices)
    if (danger := linked_devices(len(devices), detail)) is not None:
        return danger
    return Finding(
        "signal",
        "ok",
        T(
            "signal-cli {version} answers in manual receive mode: messages wait at Signal "
            "while the worker is stopped.",
            version=about.version,
        ),
        None,
        detail,
    )
