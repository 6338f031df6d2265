"""What the console's health page shows: the doctor's findings (:mod:`cercle.health`, the same
checks as ``cercle doctor``), plus the last message received, each periodic job's last run and
SMS cost per group. Counts and times only."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, func, select

from cercle.bootstrap import App
from cercle.console.scope import Scope
from cercle.health import run_checks
from relay.language.durations import describe
from relay.language.i18n import T
from relay.service import groups as group_admin
from relay.storage.models import Group, Inbound

STATUS = {"ok": T("OK"), "warn": T("Warning"), "fail": T("Problem"), "skip": T("Not checked")}
JOBS = {
    "retention": T("Retention purge"),
    "scheduled_jobs": T("Scheduled jobs (reminders, end of groups)"),
    "join_notices": T("Join notices"),
    "twilio_purge": T("Twilio record clean-up"),
    "signal_accounts": T("Signal account lookup"),
    "web_purge": T("Web door clean-up (copies past their timer)"),
}


async def health_values(
    app: App, lang: str, *, network: bool, scope: Scope | None = None
) -> dict[str, Any]:
    """The values of the health page; ``network`` also asks the providers and the public
    address (slower, so only on request). Rows that name a group are kept to ``scope``."""
    scope = scope or Scope(None)
    findings = await run_checks(app, network=network)
    with Session(app.engine) as s:
        last = s.exec(select(func.max(Inbound.received_at))).one()
        sms = []
        for g in s.exec(
            select(Group).where(col(Group.closed_at).is_(None), scope.where(Group.id))
        ).all():
            segments, messages = group_admin.sms_usage(app.relay, s, g)
            sms.append({"name": g.name, "segments": segments, "messages": messages})
    jobs_finding = next((f for f in findings if f.check == "jobs"), None)
    jobs = jobs_finding.detail if jobs_finding is not None else {}
    captcha = sum(int(str(f.detail.get("waiting_for_captcha", 0))) for f in findings)
    return {
        "findings": [
            {
                "check": f.check,
                "status": f.status,
                "status_label": STATUS[f.status].render(lang),
                "summary": summary,
                "fix": fix,
            }
            for f in findings
            for summary, fix in [f.text(lang)]
        ],
        "network": network,
        "last_received": last.strftime("%Y-%m-%d %H:%M UTC") if last else None,
        "captcha_waiting": captcha,
        "jobs": [_job_row(job, run, lang) for job, run in jobs.items() if isinstance(run, dict)],
        "sms": sms,
    }


def _job_row(job: str, run: dict[str, Any], lang: str) -> dict[str, str]:
    """One periodic job's last run (from the ``jobs`` finding's detail), in ``lang``."""
    label = JOBS.get(job)
    age = T("{age} ago", age=describe(int(run["age_seconds"])))
    return {
        "job": label.render(lang) if label is not None else job,
        "last_run": age.render(lang),
        "result": (T("Succeeded") if run["ok"] else T("Failed")).render(lang),
    }
