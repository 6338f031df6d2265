"""What the console's health page shows besides the doctor's checks: message flow, failure
reports, a waiting Signal captcha and SMS cost per group. Counts and times only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from cercle.bootstrap import App
from relay import group_admin
from relay.errors import Reason
from relay.models import OPEN_STATES, FailureReport, Group, Inbound, Outbox


def _when(value: Any) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else None


async def health_values(app: App, lang: str) -> dict[str, Any]:
    """The values of the health page."""
    now = app.clock.now()
    with Session(app.engine) as s:
        last = s.exec(select(func.max(Inbound.received_at))).one()
        waiting, oldest = s.exec(
            select(func.count(), func.min(Outbox.created_at)).where(
                col(Outbox.state).in_(OPEN_STATES)
            )
        ).one()
        failures = s.exec(
            select(FailureReport.reason, func.count())
            .where(col(FailureReport.last_at) >= now - timedelta(days=7))
            .group_by(col(FailureReport.reason))
        ).all()
        captcha = s.exec(
            select(func.count()).where(
                col(Outbox.state).in_(OPEN_STATES),
                col(Outbox.error_reason) == Reason.CAPTCHA_REQUIRED,
            )
        ).one()
        sms = []
        for g in s.exec(select(Group).where(col(Group.closed_at).is_(None))).all():
            segments, messages = group_admin.sms_usage(app.relay, s, g)
            sms.append({"name": g.name, "segments": segments, "messages": messages})
    return {
        "findings": [],
        "last_received": _when(last),
        "waiting": waiting,
        "oldest_waiting": _when(oldest),
        "failures": ", ".join(f"{reason}: {n}" for reason, n in failures),
        "captcha_waiting": captcha,
        "sms": sms,
    }
