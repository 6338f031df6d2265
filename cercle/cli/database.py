"""The database: migrations, and running the retention jobs now."""

from __future__ import annotations

import typer

from cercle.cli.common import JsonOpt, emit, out, wired
from relay.storage.engine import upgrade

db_cli = typer.Typer(no_args_is_help=True, help="The database.")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (the release process runs this)."""
    with wired() as app:
        upgrade(app.engine)
    out.print("Database is up to date.")


def purge_now(as_json: JsonOpt = False) -> None:
    """Run the retention jobs now and report what they removed (the worker runs them every
    minute). Safe to run at any time, as often as you like."""
    from cercle.worker import RETENTION_EVERY, retention_policy
    from relay.privacy import retention
    from relay.storage import job_runs

    with wired() as app:
        report = retention.purge(app.engine, app.clock.now(), retention_policy(app))
        # Shown by `cercle doctor` and the console like a worker's round (a failure raised).
        job_runs.record(app.engine, "retention", app.clock.now(), ok=True, every=RETENTION_EVERY)
    rows = [
        {"kind": kind.value, "removed": n, "what": retention.DESCRIPTIONS[kind]}
        for kind, n in report.counts.items()
    ]
    emit(rows, as_json, f"Purged ({report.total} rows)")
