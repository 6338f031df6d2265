"""Health checks: what ``cercle doctor`` prints, what start-up refuses on, what the staff
console's health page shows.

Each check gives one :class:`Finding`: a stable id, a status, one plain line that names no
one (no number, no UUID, no text), what to do about it, and figures for scripts. A check that
cannot run reports itself as failed; it never raises.

One module per family of checks: :mod:`.config`, :mod:`.data_key` (also checked synchronously
at start-up by :func:`require_data_key`), :mod:`.database` (migrations and clock),
:mod:`.providers` (Signal, Twilio, the public URL), :mod:`.signal_restarts` (whether a
restart loses Signal messages on this set-up), :mod:`.delivery` (outbox and failures),
:mod:`.jobs` and :mod:`.join_guesses` (a surge of refused joins). This module runs them all, in
:data:`CHECKS` order.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio
from sqlalchemy.exc import SQLAlchemyError

from cercle.health.config import check_config, config_failure, key_missing
from cercle.health.data_key import WrongDataKeyError, check_data_key, require_data_key
from cercle.health.database import check_clock, check_migrations
from cercle.health.delivery import check_failures, check_outbox
from cercle.health.finding import CHECKS, EXIT_FAIL, EXIT_OK, EXIT_WARN, Finding, exit_code
from cercle.health.jobs import check_jobs
from cercle.health.join_guesses import check_join_guesses
from cercle.health.passkey_host import check_passkey_host
from cercle.health.providers import check_public_url, check_signal, check_twilio
from cercle.health.signal_restarts import check_signal_restarts
from relay.language.i18n import T

if TYPE_CHECKING:
    from cercle.bootstrap import App

__all__ = [
    "CHECKS",
    "EXIT_FAIL",
    "EXIT_OK",
    "EXIT_WARN",
    "Finding",
    "WrongDataKeyError",
    "check_clock",
    "check_config",
    "check_data_key",
    "check_failures",
    "check_jobs",
    "check_join_guesses",
    "check_migrations",
    "check_outbox",
    "check_passkey_host",
    "check_public_url",
    "check_signal",
    "check_signal_restarts",
    "check_twilio",
    "config_failure",
    "exit_code",
    "key_missing",
    "require_data_key",
    "run_checks",
]

log = logging.getLogger(__name__)


async def _guarded(check: str, run: Callable[[], Awaitable[Finding]]) -> Finding:
    """Run one check; any error becomes a failed finding, never an exception."""
    try:
        return await run()
    except SQLAlchemyError as exc:
        return Finding(
            check,
            "fail",
            T("The database did not answer ({error}).", error=type(exc).__name__),
            T("Check DATABASE_URL and that the database server runs."),
        )
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
        ref = secrets.token_hex(4)
        log.warning("health check %s failed: %s (ref %s)", check, type(exc).__name__, ref)
        failed = T("The check could not run (ref {ref}).", ref=ref)
        return Finding(check, "fail", failed, T("Read the log."))


async def run_checks(app: App, *, network: bool = True) -> list[Finding]:
    """Every check, in :data:`CHECKS` order. ``network=False`` skips calls to providers and to
    ``PUBLIC_BASE_URL`` (the database is always asked)."""

    def in_thread(fn: Callable[[], Finding]) -> Callable[[], Awaitable[Finding]]:
        return lambda: anyio.to_thread.run_sync(fn)

    findings = [check_config(app.settings)]
    findings.append(
        await _guarded("data_key", in_thread(lambda: check_data_key(app.engine, app.keys)))
    )
    migrations = await _guarded("migrations", in_thread(lambda: check_migrations(app.engine)))
    findings.append(migrations)
    findings.append(await _guarded("signal", lambda: check_signal(app, network=network)))
    findings.append(
        await _guarded("signal_restarts", in_thread(lambda: check_signal_restarts(app.settings)))
    )
    findings.append(await _guarded("twilio", lambda: check_twilio(app, network=network)))
    findings.append(
        await _guarded("public_url", lambda: check_public_url(app.settings, network=network))
    )
    findings.append(check_passkey_host(app.settings))
    findings.append(
        await _guarded("clock", in_thread(lambda: check_clock(app.engine, app.clock.now)))
    )
    if migrations.status != "ok":
        skipped = T("Not checked: the database is not at the current level.")
        late = ("outbox", "failures", "jobs", "join_guesses")
        return [*findings, *(Finding(c, "skip", skipped) for c in late)]
    now = app.clock.now()
    findings.append(await _guarded("outbox", in_thread(lambda: check_outbox(app.engine, now))))
    findings.append(await _guarded("failures", in_thread(lambda: check_failures(app.engine, now))))
    findings.append(await _guarded("jobs", in_thread(lambda: check_jobs(app.engine, now))))
    guessing = in_thread(lambda: check_join_guesses(app.engine, now))
    findings.append(await _guarded("join_guesses", guessing))
    return findings
