"""The long-lived processes (``run``, ``web``, ``worker``), the sandbox, and ``check``."""

from __future__ import annotations

import sys

import typer

from cercle.cli.common import fail, out, settings, wired
from cercle.settings import Settings, SettingsError


def run() -> None:
    """Run web and worker in one process (a single machine)."""
    s = settings()
    if not s.any_transport:
        raise fail(
            "No transport is configured. Set SIGNAL_NUMBER and SIGNAL_CLI (or SIGNAL_SERVICE) "
            "for Signal, "
            "and/or TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_NUMBER and PUBLIC_BASE_URL "
            "for SMS (see config/example.env).\nTo try Cercle without a provider, run "
            "`cercle sandbox`.",
            2,
        )
    _serve(s, web=True, worker=True)


def web() -> None:
    """Serve HTTP: Twilio webhooks, status callbacks and health."""
    _serve(settings(), web=True, worker=False)


def worker() -> None:
    """Run delivery, the Signal receive loop and the scheduled jobs."""
    _serve(settings(), web=False, worker=True)


def _serve(s: Settings, *, web: bool, worker: bool) -> None:
    """Start the long-lived parts; a refusal at start (a wrong data key) is a clear error."""
    from cercle.serve import serve

    try:
        serve(s, web=web, worker=worker)
    except SettingsError as exc:
        raise fail(str(exc), 2) from exc


def sandbox() -> None:
    """Rehearse a group in this terminal, with simulated phones (no provider needed)."""
    from cercle.sandbox import run_sandbox

    s = settings()
    lines = None if sys.stdin.isatty() else sys.stdin
    run_sandbox(s, lines)


def check() -> None:
    """Say what is configured; exit 0 when `cercle run` can start, 2 when CERCLE_DATA_KEY does
    not open the stored data, 3 when no transport is on."""
    from cercle.health import check_data_key

    s = settings()
    out.print(f"database: {s.database_url.split('://')[0]}")
    out.print(f"data key: {'set' if s.data_key else 'NOT SET (cercle keys generate)'}")
    out.print(f"signal: {'on' if s.signal_enabled else 'off'}")
    out.print(f"sms: {'on' if s.sms_enabled else 'off'}")
    out.print(f"video: {'on (own server)' if s.video_url else 'off (CERCLE_VIDEO_URL)'}")
    if s.data_key is not None:
        with wired() as app:
            finding = check_data_key(app.engine, app.keys)
        if finding.status == "fail":
            summary, fix = finding.text("en")
            raise fail(f"{summary} {fix}", 2)
    if not s.any_transport:
        raise typer.Exit(3)
