"""``cercle doctor`` on the signal-cli daemon set-up (``SIGNAL_CLI``).

Three things are checked: the daemon answers and is not older than the oldest signal-cli
Cercle was tested with (Signal stops serving, and in time unregisters, accounts on
outdated clients); it runs in ``manual`` receive mode, the only mode that leaves messages at
Signal while no worker is subscribed; and no other device is linked to the number.
"""

from __future__ import annotations

import contextlib
import re

from bots.signal.daemon import DaemonClient
from bots.signal.errors import SignalServiceError
from bots.signal.jsonrpc import JsonRpcConnection, JsonRpcError
from cercle.health import Finding
from relay.errors import DeliveryError
from relay.language.i18n import TN, T

# The oldest signal-cli whose behaviour Cercle's tests reproduce: the daemon fake is written
# from signal-cli 0.14.6's documentation and source. Signal retires old protocol versions, and
# a client too old to follow loses its messages, then its registration.
OLDEST_TESTED = (0, 14, 6)
# The receive-mode probe looks this far back for the subscription made at connect time.
_PROBE_DEPTH = 16


def version_tuple(version: str) -> tuple[int, ...] | None:
    """``0.14.7-SNAPSHOT`` → (0, 14, 7); None when it is not a version number."""
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", version.strip())
    if match is None:
        return None
    return tuple(int(part or 0) for part in match.groups())


async def receive_mode_keeps_messages(client: DaemonClient) -> bool | None:
    """Whether the daemon runs in ``manual`` receive mode; None when it cannot be told.

    How, from the protocol itself: in ``on-start`` and ``on-connection`` modes signal-cli
    subscribes every new connection as it opens (and in ``on-connection`` mode starts
    reading from Signal then), taking a subscription id from the one counter that
    ``subscribeReceive`` and ``subscribeCallEvents`` also draw from. In ``manual`` mode it
    subscribes nobody. So, on a fresh connection: ``subscribeCallEvents`` gives id K without
    reading any message; an automatic subscription made at connect time has an id just
    below K (other clients connecting at the same moment may take a few ids in between), and
    ``unsubscribeReceive`` with that id succeeds only if this connection holds it. Each id
    below K tried is refused ("Unknown subscription id", -1) in ``manual`` mode. Nothing here
    calls ``subscribeReceive``, which would make signal-cli hand messages to this short-lived
    connection, where they would be lost. ``subscribeCallEvents`` came with signal-cli 0.14.2;
    an older daemon cannot be probed (None).
    """
    rpc = JsonRpcConnection(client.target, timeout=10.0)
    try:
        try:
            calls = await rpc.call("subscribeCallEvents")
        except JsonRpcError:
            return None
        if not isinstance(calls, int) or isinstance(calls, bool):
            return None
        for candidate in range(calls - 1, max(-1, calls - 1 - _PROBE_DEPTH), -1):
            try:
                await rpc.call("unsubscribeReceive", {"subscription": candidate})
            except JsonRpcError:
                continue
            return False  # this connection was subscribed as it opened: not manual
        with contextlib.suppress(JsonRpcError):
            await rpc.call("unsubscribeCallEvents", {"subscription": calls})
        return True
    finally:
        await rpc.aclose()


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
        manual = await receive_mode_keeps_messages(client)
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
    if len(devices) > 1:
        return Finding(
            "signal",
            "warn",
            TN(
                "DANGER: {n} other device is linked to the organization's number. Whoever "
                "holds it sees every member's number and message.",
                "DANGER: {n} other devices are linked to the organization's number. Whoever "
                "holds one sees every member's number and message.",
                len(devices) - 1,
            ),
            T(
                "`cercle signal status` lists them; unlink each with `cercle signal unlink ID` "
                "(docs/signal.md §2)."
            ),
            detail,
        )
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
