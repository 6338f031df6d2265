"""Delivery: is the outbox moving, and what failed lately."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from relay.errors import Reason
from relay.language.i18n import TN, T
from relay.storage import inbox
from relay.storage.models import FailureReport, Outbox, OutboxState

if TYPE_CHECKING:
    pass
from cercle.health.finding import Finding, aware, duration

BACKLOG_WARN, BACKLOG_FAIL = timedelta(minutes=5), timedelta(hours=1)


FAILURES_SINCE = timedelta(hours=24)


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
    age = (now - aware(oldest)).total_seconds() if oldest is not None else 0.0
    backlog = sum(int(counts.get(st, 0)) for st in waiting)
    held = int(counts.get(OutboxState.HELD, 0))
    received, first = inbox.waiting(engine)
    inbox_age = (now - aware(first)).total_seconds() if first is not None else 0.0
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
                age=duration(inbox_age),
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
                age=duration(age),
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
