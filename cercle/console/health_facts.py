"""What the console's health page shows: the doctor's findings (:mod:`cercle.health`, the same
checks as ``cercle doctor``), plus the last message received and SMS cost per group. Counts
and times only."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, func, select

from cercle.bootstrap import App
from cercle.health import run_checks
from relay.language.i18n import T
from relay.service import groups as group_admin
from relay.storage.models import Group, Inbound

STATUS = {"ok": T("OK"), "warn": T("Warning"), "fail": T("Problem"), "skip": T("Not checked")}


async def health_values(app: App, lang: str, *, network: bool) -> dict[str, Any]:
    """The values of the health page; ``network`` also asks the providers and the public
    address (slower, so only on request)."""
    findings = await run_checks(app, network=network)
    with Session(app.engine) as s:
        last = s.exec(select(func.max(Inbound.received_at))).one()
        sms = []
        for g in s.exec(select(Group).where(col(Group.closed_at).is_(None))).all():
            segments, messages = group_admin.sms_usage(app.relay, s, g)
            sms.append({"name": g.name, "segments": segments, "messages": messages})
    captcha = sum(int(str(f.detail.get("waiting_for_captcha", 0))) for f in findings)
    return {
        "findings": [
            {
                "check": f.check,
                "status": f.status,
                "status_label": STATUS[f.status].render(lang),
                "summary": f.summary,
                "fix": f.fix,
            }
            for f in findings
        ],
        "network": network,
        "last_received": last.strftime("%Y-%m-%d %H:%M UTC") if last else None,
        "captcha_waiting": captcha,
        "sms": sms,
    }
