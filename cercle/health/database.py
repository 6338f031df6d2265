"""The database: its migrations are current, and its clock agrees with this machine's."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from relay.language.i18n import T
from relay.storage.engine import alembic_config

if TYPE_CHECKING:
    pass
from cercle.health.finding import Finding, aware

CLOCK_WARN, CLOCK_FAIL = 2.0, 30.0  # seconds; leases last 30 s, so more skew breaks them


def check_migrations(engine: Engine) -> Finding:
    """The database's migration level against this version of Cercle's."""
    script = ScriptDirectory.from_config(alembic_config(engine))
    head = script.get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    detail = {"current": current, "head": head}
    if current == head:
        at = T("The database is at migration {revision}.", revision=head)
        return Finding("migrations", "ok", at, None, detail)
    upgrade_fix = T("Run `cercle db upgrade` (the release process and `cercle run` do it too).")
    if current is None:
        empty = T("The database has no tables yet.")
        return Finding("migrations", "fail", empty, upgrade_fix, detail)
    known = {rev.revision for rev in script.walk_revisions()}
    if current not in known:
        return Finding(
            "migrations",
            "fail",
            T(
                "The database is at migration {revision}, which this version of Cercle does "
                "not know.",
                revision=current,
            ),
            T("It was upgraded by a newer Cercle: deploy that version again (never downgrade)."),
            detail,
        )
    return Finding(
        "migrations",
        "warn",
        T("The database is at migration {revision}, not {head}.", revision=current, head=head),
        upgrade_fix,
        detail,
    )


def _database_now(engine: Engine) -> datetime:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            raw = conn.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
            return datetime.fromisoformat(str(raw)).replace(tzinfo=UTC)
        value = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        return aware(value)


def check_clock(engine: Engine, now: Callable[[], datetime]) -> Finding:
    """The skew between this machine's clock and the database server's.

    Leases, pacing and timers compare times written by different machines: skew over a few
    seconds makes workers take each other's leases or wait for nothing.
    """
    before = time.monotonic()
    local = aware(now())
    remote = _database_now(engine)
    elapsed = time.monotonic() - before
    skew = (remote - local).total_seconds() - elapsed / 2
    detail = {"skew_seconds": round(skew, 3)}
    seconds = f"{abs(skew):.0f}"
    if abs(skew) <= CLOCK_WARN:
        return Finding(
            "clock", "ok", T("This machine's clock agrees with the database's."), None, detail
        )
    return Finding(
        "clock",
        "fail" if abs(skew) > CLOCK_FAIL else "warn",
        (
            T("This machine's clock is {seconds} s behind the database's.", seconds=seconds)
            if skew > 0
            else T("This machine's clock is {seconds} s ahead of the database's.", seconds=seconds)
        ),
        T(
            "Turn on time synchronisation (NTP, e.g. systemd-timesyncd or chrony) on every "
            "machine that runs Cercle or its database."
        ),
        detail,
    )
