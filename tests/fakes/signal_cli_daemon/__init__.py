"""A faithful fake of signal-cli's JSON-RPC daemon (TCP or UNIX socket), for tests.

In-process: :func:`run_fake_signal_cli_daemon`. As its own process (real-process tests)::

    python -m tests.fakes.signal_cli_daemon --tcp 127.0.0.1:PORT --receive-mode manual \
        --control 127.0.0.1:CPORT

The control port is a small HTTP API for tests only, apart from the JSON-RPC protocol
(see :mod:`tests.fakes.signal_cli_daemon.control`).
"""

from tests.fakes.signal_cli_daemon.daemon import (
    MODES,
    VERSION,
    FakeSignalCliDaemon,
    run_fake_signal_cli_daemon,
)

__all__ = ["MODES", "VERSION", "FakeSignalCliDaemon", "run_fake_signal_cli_daemon"]
