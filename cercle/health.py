"""Health checks: what ``cercle doctor`` prints, what start-up refuses on, what the staff
console's health page shows.

Each check gives one :class:`Finding`: a stable id, a status, one plain line that names no
one (no number, no UUID, no text), what to do about it, and figures for scripts. A check that
cannot run reports itself as failed; it never raises.

The data key is also checked synchronously at start-up (:func:`require_data_key`): a valid
but *wrong* ``CERCLE_DATA_KEY`` would otherwise start fine and make every member a stranger.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

import anyio
import httpx
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, LargeBinary, func, inspect, literal, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel, col

from bots.signal.daemon import DaemonClient
from bots.signal.errors import SignalServiceError
from bots.sms.config import INBOUND_PATH
from cercle.restarts import check_signal_restarts
from cercle.settings import Settings, SettingsError
from relay.errors import DeliveryError, Reason
from relay.language.i18n import TN, Joined, Raw, Renderable, T
from relay.privacy.rotation import SEALED
from relay.storage import inbox, job_runs
from relay.storage.crypto import KID_LEN, KID_OFFSET, DataKeyError, DataKeys
from relay.storage.engine import alembic_config
from relay.storage.models import FailureReport, Outbox, OutboxState

if TYPE_CHECKING:
    from cercle.bootstrap import App

log = logging.getLogger(__name__)

Status = Literal["ok", "warn", "fail", "skip"]
CHECKS = (
    "config",
    "data_key",
    "migrations",
    "signal",
    "signal_restarts",
    "twilio",
    "public_url",
    "clock",
    "outbox",
    "failures",
    "jobs",
)
# Exit codes of `cercle doctor` (documented in docs/operations.md).
EXIT_OK, EXIT_WARN, EXIT_FAIL = 0, 1, 2

SAMPLE = 3  # sealed values tried per column: enough to tell a wrong key, cheap at start-up
CLOCK_WARN, CLOCK_FAIL = 2.0, 30.0  # seconds; leases last 30 s, so more skew breaks them
BACKLOG_WARN, BACKLOG_FAIL = timedelta(minutes=5), timedelta(hours=1)
FAILURES_SINCE = timedelta(hours=24)
# A periodic job is late when its last round is older than this many periods (and this long):
# rounds take time, and a worker restarting during a deploy should not page anyone.
JOBS_LATE_PERIODS, JOBS_LATE_AT_LEAST = 5, timedelta(minutes=10)
HTTP_TIMEOUT = httpx.Timeout(5.0)


@dataclass(frozen=True)
class Finding:
    """The outcome of one check.

    ``summary`` and ``fix`` are translatable: ``cercle doctor`` and start-up messages render
    them in English, the staff console in the staff member's language (:meth:`text`).
    """

    check: str  # one of CHECKS
    status: Status
    summary: Renderable  # one plain line, names no one
    fix: Renderable | None = None  # what to do about it
    detail: Mapping[str, object] = field(default_factory=dict)  # figures (--json, console)

    def text(self, lang: str = "en") -> tuple[str, str | None]:
        """The summary and the fix (``None`` when there is nothing to do) in ``lang``."""
        return self.summary.render(lang), None if self.fix is None else self.fix.render(lang)

    def as_dict(self, lang: str = "en") -> dict[str, object]:
        """The finding as JSON-ready values, its texts in ``lang``."""
        summary, fix = self.text(lang)
        return {
            "check": self.check,
            "status": self.status,
            "summary": summary,
            "fix": fix,
            "detail": dict(self.detail),
        }


def exit_code(findings: list[Finding]) -> int:
    """0 when everything is ok (or skipped), 1 with warnings, 2 with any failure."""
    statuses = {f.status for f in findings}
    if "fail" in statuses:
        return EXIT_FAIL
    return EXIT_WARN if "warn" in statuses else EXIT_OK


# --- configuration ---------------------------------------------------------------------------


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


# --- the data key ----------------------------------------------------------------------------

WRONG_KEY_FIX = T(
    "Set CERCLE_DATA_KEY to the key this database was sealed with (from your secret store or "
    "your key backup). If you are changing keys, set the new key as CERCLE_DATA_KEY and the "
    "old one as CERCLE_DATA_KEY_PREVIOUS, then run `cercle keys rotate` (docs/keys.md)."
)


class WrongDataKeyError(SettingsError):
    """``CERCLE_DATA_KEY`` is well-formed but does not open the stored data."""


def _kid(column: object) -> object:
    return func.substr(column, KID_OFFSET + 1, KID_LEN, type_=LargeBinary)


def check_data_key(engine: Engine, keys: DataKeys, *, sample: int = SAMPLE) -> Finding:
    """Whether ``keys`` open what is stored: the newest few values of every sealed column are
    unsealed, and every sealed value's key id is counted (no other row is decrypted).

    Fails when values are stored and none of those tried opens: the key is valid but wrong.
    Reads only; safe before migrations (missing tables and columns are passed over).
    """
    found = inspect(engine)
    tables = set(found.get_table_names())
    total = current = previous = tried = opened = 0
    with Session(engine) as s:
        for sealed in SEALED:
            if sealed.table not in tables:
                continue
            if sealed.column not in {c["name"] for c in found.get_columns(sealed.table)}:
                continue
            t = SQLModel.metadata.tables[sealed.table]
            column = t.c[sealed.column]
            pk = next(iter(t.primary_key.columns))
            present = column.is_not(None)
            total += s.execute(select(func.count()).select_from(t).where(present)).scalar_one()
            current += s.execute(
                select(func.count())
                .select_from(t)
                .where(present, _kid(column) == literal(keys.key_id, LargeBinary))
            ).scalar_one()
            if keys.previous is not None:
                previous += s.execute(
                    select(func.count())
                    .select_from(t)
                    .where(present, _kid(column) == literal(keys.previous.key_id, LargeBinary))
                ).scalar_one()
            newest = select(column).where(present).order_by(pk.desc()).limit(sample)
            for value in s.execute(newest).scalars():
                tried += 1
                try:
                    keys.decrypt(value, sealed.context.encode("ascii"))
                except DataKeyError:
                    continue
                opened += 1
    other = total - current - previous
    detail = {
        "sealed_values": total,
        "under_current_key": current,
        "under_previous_key": previous,
        "under_other_keys": other,
        "sampled": tried,
        "opened": opened,
    }
    if total == 0:
        return Finding(
            "data_key", "ok", T("Nothing is sealed yet: the data key is set."), None, detail
        )
    if opened == 0:
        return Finding(
            "data_key",
            "fail",
            T(
                "CERCLE_DATA_KEY does not open the stored data: it is not the key it was "
                "sealed with."
            ),
            WRONG_KEY_FIX,
            detail,
        )
    if other or opened < tried:
        return Finding(
            "data_key",
            "warn",
            TN(
                "{n} stored value is under a key Cercle does not have.",
                "{n} stored values are under a key Cercle does not have.",
                other or tried - opened,
            ),
            T(
                "If a key rotation was started, set the old key as CERCLE_DATA_KEY_PREVIOUS and "
                "run `cercle keys rotate`; `cercle keys verify` counts what is left "
                "(docs/keys.md)."
            ),
            detail,
        )
    if keys.previous is not None and previous == 0:
        return Finding(
            "data_key",
            "warn",
            T("Key rotation is finished but CERCLE_DATA_KEY_PREVIOUS is still set."),
            T("Remove CERCLE_DATA_KEY_PREVIOUS from the environment and restart (docs/keys.md)."),
            detail,
        )
    return Finding(
        "data_key",
        "ok",
        TN(
            "CERCLE_DATA_KEY opens the stored data ({n} sealed value).",
            "CERCLE_DATA_KEY opens the stored data ({n} sealed values).",
            total,
        ),
        None,
        detail,
    )


def require_data_key(engine: Engine, keys: DataKeys) -> None:
    """Refuse to start with a wrong key: raise :class:`WrongDataKeyError` naming the variable.

    Called by ``web``, ``worker`` and ``run`` before migrations or anything else writes.
    """
    finding = check_data_key(engine, keys)
    if finding.status == "fail":
        summary, fix = finding.text("en")
        raise WrongDataKeyError(f"{summary} Nothing was changed. {fix}")


# --- the database ----------------------------------------------------------------------------


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


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _database_now(engine: Engine) -> datetime:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            raw = conn.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
            return datetime.fromisoformat(str(raw)).replace(tzinfo=UTC)
        value = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        return _aware(value)


def check_clock(engine: Engine, now: Callable[[], datetime]) -> Finding:
    """The skew between this machine's clock and the database server's.

    Leases, pacing and timers compare times written by different machines: skew over a few
    seconds makes workers take each other's leases or wait for nothing.
    """
    before = time.monotonic()
    local = _aware(now())
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


def check_outbox(engine: Engine, now: datetime) -> Finding:
    """Deliveries waiting: how many, and how long the oldest has waited."""
    waiting = (OutboxState.PENDING, OutboxState.SENDING, OutboxState.RETRY)
    with Session(engine) as s:
        counts: dict[str, int] = dict(
            s.execute(  # type: ignore[arg-type]
                select(col(Outbox.state), func.count())
                .where(col(Outbox.state).in_([*waiting, OutboxState.HELD]))
                .group_by(col(Outbox.state))
            ).all()
        )
        oldest = s.execute(
            select(func.min(Outbox.created_at)).where(col(Outbox.state).in_(waiting))
        ).scalar_one()
        captcha = s.execute(
            select(func.count()).where(
                col(Outbox.state) == OutboxState.RETRY,
                col(Outbox.error_reason) == Reason.CAPTCHA_REQUIRED,
            )
        ).scalar_one()
    age = (now - _aware(oldest)).total_seconds() if oldest is not None else 0.0
    backlog = sum(int(counts.get(st, 0)) for st in waiting)
    held = int(counts.get(OutboxState.HELD, 0))
    received, first = inbox.waiting(engine)
    inbox_age = (now - _aware(first)).total_seconds() if first is not None else 0.0
    detail = {
        "waiting": backlog,
        "held": held,
        "oldest_age_seconds": round(max(age, 0.0)),
        "waiting_for_captcha": int(captcha),
        "by_state": {str(k): int(v) for k, v in counts.items()},
        "received_not_relayed": received,
        "oldest_received_age_seconds": round(max(inbox_age, 0.0)),
    }
    if received and inbox_age > BACKLOG_WARN.total_seconds():
        return Finding(
            "outbox",
            "fail" if inbox_age > BACKLOG_FAIL.total_seconds() else "warn",
            TN(
                "{n} received message waits to be relayed; the oldest for {age}.",
                "{n} received messages wait to be relayed; the oldest for {age}.",
                received,
                age=_duration(inbox_age),
            ),
            T(
                "Check that a worker runs and read its log (`sms inbound not accepted yet` or "
                "`sms media not fetched`); nothing is lost while they wait."
            ),
            detail,
        )
    if captcha:
        return Finding(
            "outbox",
            "warn",
            TN(
                "{n} delivery waits because Signal asks for a captcha.",
                "{n} deliveries wait because Signal asks for a captcha.",
                int(captcha),
            ),
            T(
                "Solve a captcha and run `cercle signal challenge TOKEN CAPTCHA`; the token is "
                "in the worker's log (docs/signal.md §4)."
            ),
            detail,
        )
    if backlog and age > BACKLOG_WARN.total_seconds():
        return Finding(
            "outbox",
            "fail" if age > BACKLOG_FAIL.total_seconds() else "warn",
            TN(
                "{n} delivery is waiting; the oldest for {age}.",
                "{n} deliveries are waiting; the oldest for {age}.",
                backlog,
                age=_duration(age),
            ),
            T(
                "Check that a worker runs (`cercle worker` or `cercle run`) and read the signal "
                "and twilio findings; rows waiting out a provider's rate limit go by themselves."
            ),
            detail,
        )
    if held:
        return Finding(
            "outbox",
            "warn",
            TN(
                "{n} delivery is held because a member's safety number changed.",
                "{n} deliveries are held because a member's safety number changed.",
                held,
            ),
            T(
                "A facilitator confirms with the member by another safe way, then sends /trust "
                "NAME (docs/signal.md §5)."
            ),
            detail,
        )
    on_time = TN(
        "{n} delivery waiting; none is late.", "{n} deliveries waiting; none is late.", backlog
    )
    return Finding("outbox", "ok", on_time, None, detail)


def check_failures(engine: Engine, now: datetime) -> Finding:
    """Deliveries that failed for good in the last day, by reason (staff were told)."""
    since = now - FAILURES_SINCE
    with Session(engine) as s:
        by_reason: dict[str | None, int] = dict(
            s.execute(  # type: ignore[arg-type]
                select(col(Outbox.error_reason), func.count())
                .where(col(Outbox.state) == OutboxState.FAILED, col(Outbox.done_at) >= since)
                .group_by(col(Outbox.error_reason))
            ).all()
        )
        reports = s.execute(
            select(func.count()).where(col(FailureReport.last_at) >= since)
        ).scalar_one()
    failed = sum(int(v) for v in by_reason.values())
    detail = {
        "failed_24h": failed,
        "by_reason": {str(k or "unknown"): int(v) for k, v in by_reason.items()},
        "reports_to_staff_24h": int(reports),
    }
    if not failed:
        none = T("No delivery failed in the last 24 hours.")
        return Finding("failures", "ok", none, None, detail)
    reasons = ", ".join(f"{k or 'unknown'} {v}" for k, v in sorted(by_reason.items(), key=str))
    return Finding(
        "failures",
        "warn",
        TN(
            "{n} delivery failed for good in the last 24 hours ({reasons}).",
            "{n} deliveries failed for good in the last 24 hours ({reasons}).",
            failed,
            reasons=reasons,
        ),
        T(
            "Facilitators were told in their group. What each reason means and what to do: "
            "docs/sms.md §6 and docs/signal.md."
        ),
        detail,
    )


def check_jobs(engine: Engine, now: datetime) -> Finding:
    """When each periodic job of the worker (retention, scheduled jobs, ...) last finished a
    round: late or failed last time is a warning; no job ever recorded means no worker ran."""
    runs = job_runs.last_runs(engine)
    if not runs:
        return Finding(
            "jobs",
            "skip",
            T("No worker has run yet."),
            T("Start one (`cercle worker` or `cercle run`): it runs retention and scheduled jobs."),
        )
    detail: dict[str, object] = {}
    problems: list[Renderable] = []
    for run in runs:
        age = max(0.0, (now - _aware(run.finished_at)).total_seconds())
        late = age > max(JOBS_LATE_PERIODS * run.every_seconds, JOBS_LATE_AT_LEAST.total_seconds())
        detail[run.job] = {
            "age_seconds": round(age),
            "ok": run.ok,
            "every_seconds": run.every_seconds,
        }
        if not run.ok:
            problems.append(T("{job} failed {age} ago", job=run.job, age=_duration(age)))
        elif late:
            problems.append(T("{job} last ran {age} ago", job=run.job, age=_duration(age)))
    if problems:
        return Finding(
            "jobs",
            "warn",
            T("Periodic jobs late or failing: {jobs}.", jobs=Joined(tuple(problems), "; ")),
            T(
                "Check that a worker runs (`cercle worker` or `cercle run`); a failed round logs "
                "`JOB round failed` with a reference: report it. `cercle purge` runs retention "
                "now."
            ),
            detail,
        )
    on_time = TN("{n} periodic job ran on time.", "{n} periodic jobs ran on time.", len(runs))
    return Finding("jobs", "ok", on_time, None, detail)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --- providers -------------------------------------------------------------------------------


async def check_signal(app: App, *, network: bool = True) -> Finding:
    """signal-cli-rest-api: reachable, json-rpc mode, the number registered, no linked device."""
    if app.providers.signal is None:
        return Finding("signal", "skip", T("Signal is not configured."))
    if not network:
        return Finding("signal", "skip", T("Signal not checked (no network checks)."))
    client = app.providers.signal.client
    if isinstance(client, DaemonClient):
        from cercle.signal_doctor import check_signal_daemon  # noqa: PLC0415 (it imports us)

        return await check_signal_daemon(client)
    try:
        about = await client.about()
    except SignalServiceError:
        return Finding(
            "signal",
            "fail",
            T("signal-cli-rest-api does not answer at SIGNAL_SERVICE."),
            T(
                "Start the signal-cli-rest-api container and check SIGNAL_SERVICE (host:port, "
                "docs/signal.md §1)."
            ),
        )
    detail: dict[str, object] = {"version": about.version, "mode": about.mode}
    if about.mode != "json-rpc":
        return Finding(
            "signal",
            "fail",
            T("signal-cli-rest-api runs in mode {mode}, not json-rpc.", mode=about.mode),
            T("Restart the container with MODE=json-rpc (docs/signal.md §1)."),
            detail,
        )
    try:
        accounts = await client.accounts()
    except DeliveryError as exc:
        return Finding(
            "signal",
            "fail",
            T("signal-cli-rest-api could not list its accounts ({reason}).", reason=exc.reason),
            T("Read the signal-cli-rest-api container's log."),
            detail,
        )
    registered = client.number in accounts
    detail["registered"] = registered
    if not registered:
        return Finding(
            "signal",
            "fail",
            T("SIGNAL_NUMBER is not registered with signal-cli-rest-api."),
            T(
                "Run `cercle signal register --captcha LINK`, then `cercle signal verify CODE` "
                "(docs/signal.md §2)."
            ),
            detail,
        )
    try:
        devices = await client.devices()
    except DeliveryError as exc:
        return Finding(
            "signal",
            "warn",
            T("Linked devices could not be listed ({reason}).", reason=exc.reason),
            T("Run `cercle signal status` later; read the container's log."),
            detail,
        )
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
            "signal-cli-rest-api {version} answers in json-rpc mode; the number is registered.",
            version=about.version,
        ),
        None,
        detail,
    )


async def check_twilio(app: App, *, network: bool = True) -> Finding:
    """Twilio accepts our credentials and the account is active."""
    if app.providers.sms is None:
        return Finding("twilio", "skip", T("SMS is not configured."))
    if not network:
        return Finding("twilio", "skip", T("Twilio not checked (no network checks)."))
    try:
        status = await app.providers.sms.account_status()
    except DeliveryError as exc:
        if exc.reason is Reason.PROVIDER_DOWN and "20003" in exc.detail:
            return Finding(
                "twilio",
                "fail",
                T("Twilio refused the credentials."),
                T(
                    "Check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and "
                    "TWILIO_API_SECRET) against the Twilio Console."
                ),
            )
        return Finding(
            "twilio",
            "fail",
            T("Twilio could not be asked ({reason}).", reason=exc.reason),
            T("Check the network to TWILIO_API_BASE; try again in a few minutes."),
        )
    detail = {"account_status": status}
    if status != "active":
        return Finding(
            "twilio",
            "fail",
            T("The Twilio account is {status}.", status=status),
            T("Reactivate it in the Twilio Console (billing, or a suspension notice)."),
            detail,
        )
    return Finding(
        "twilio", "ok", T("Twilio accepts the credentials; the account is active."), None, detail
    )


async def check_public_url(
    settings: Settings, *, network: bool = True, http: httpx.AsyncClient | None = None
) -> Finding:
    """``PUBLIC_BASE_URL`` is https, this is Cercle's web process, and the webhook answers.

    The webhook is posted an unsigned, empty form: Cercle refuses it with 403, which shows
    the route exists and checks signatures. Nothing is accepted or stored.
    """
    base = settings.public_base_url
    if base is None:
        unset = T("PUBLIC_BASE_URL is not set (only SMS needs it).")
        return Finding("public_url", "skip", unset)
    if not base.startswith("https://"):
        return Finding(
            "public_url",
            "fail",
            T("PUBLIC_BASE_URL is not https: webhooks would travel unencrypted."),
            T("Serve the web process behind TLS and set PUBLIC_BASE_URL to its https:// address."),
        )
    if not network:
        return Finding("public_url", "ok", T("PUBLIC_BASE_URL is https (not called)."))
    client = http or httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False)
    detail: dict[str, object] = {}
    try:
        health = await client.get(f"{base}/health")
        detail["health_status"] = health.status_code
        webhook = None
        if settings.sms_enabled:
            webhook = await client.post(
                f"{base}{INBOUND_PATH}",
                content=b"",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            detail["webhook_status"] = webhook.status_code
    except httpx.HTTPError as exc:
        return Finding(
            "public_url",
            "warn",
            T("PUBLIC_BASE_URL did not answer ({error}).", error=type(exc).__name__),
            T(
                "Normal before the web process starts. Otherwise check DNS, TLS and the proxy "
                "in front of `cercle web`."
            ),
            detail,
        )
    finally:
        if http is None:
            await client.aclose()
    if health.status_code != 200 or not _is_health(health):
        return Finding(
            "public_url",
            "fail",
            T(
                "PUBLIC_BASE_URL/health answered HTTP {code}, not Cercle's health.",
                code=health.status_code,
            ),
            T("Point PUBLIC_BASE_URL (with any path prefix, no trailing slash) at `cercle web`."),
            detail,
        )
    if webhook is not None and webhook.status_code != 403:
        return Finding(
            "public_url",
            "fail",
            T(
                "The SMS webhook answered HTTP {code} to an unsigned request, not 403.",
                code=webhook.status_code,
            ),
            T(
                "Check that the web process has the TWILIO_* settings and that the proxy "
                "forwards POST {path} (docs/sms.md §2).",
                path=INBOUND_PATH,
            ),
            detail,
        )
    return Finding(
        "public_url", "ok", T("PUBLIC_BASE_URL is https and Cercle answers there."), None, detail
    )


def _is_health(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == "ok"


# --- all of them -----------------------------------------------------------------------------


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
    findings.append(
        await _guarded("clock", in_thread(lambda: check_clock(app.engine, app.clock.now)))
    )
    if migrations.status != "ok":
        skipped = T("Not checked: the database is not at the current level.")
        late = ("outbox", "failures", "jobs")
        return [*findings, *(Finding(c, "skip", skipped) for c in late)]
    now = app.clock.now()
    findings.append(await _guarded("outbox", in_thread(lambda: check_outbox(app.engine, now))))
    findings.append(await _guarded("failures", in_thread(lambda: check_failures(app.engine, now))))
    findings.append(await _guarded("jobs", in_thread(lambda: check_jobs(app.engine, now))))
    return findings
