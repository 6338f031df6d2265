"""The console's audit trail: the last 200 events, by group and by action."""

from __future__ import annotations

from sqlmodel import Session, col, select
from starlette.responses import Response

from cercle.bootstrap import App
from cercle.bounds import query_int
from cercle.console.context import (
    Ctx,
    when,
)
from relay.storage.models import (
    AuditEvent,
    Group,
)


class AuditPages:
    """The audit trail, for one wired app."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def audit(self, ctx: Ctx) -> Response:
        q = ctx.request.query_params
        number = query_int(q.get("group"), -1)
        gid = number if number >= 0 else None
        action = q.get("action") or None
        if gid is not None and not ctx.scope.allows(gid):
            raise ctx.refuse(ctx.t("There is no open group here."), 404)
        in_scope = ctx.scope.where(AuditEvent.group_id)
        with Session(self.app.engine) as s:
            groups = s.exec(
                select(Group).where(ctx.scope.where(Group.id)).order_by(col(Group.name))
            ).all()
            names = {g.id: g.name for g in groups}
            actions = s.exec(
                select(AuditEvent.action)
                .where(in_scope)
                .distinct()
                .order_by(col(AuditEvent.action))
            ).all()
            query = (
                select(AuditEvent)
                .where(in_scope)
                .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
            )
            if gid is not None:
                query = query.where(col(AuditEvent.group_id) == gid)
            if action is not None:
                query = query.where(col(AuditEvent.action) == action)
            events = [
                {
                    "at": when(e.at),
                    "group": names.get(e.group_id, "—") if e.group_id else "—",
                    "actor": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "detail": e.detail,
                }
                for e in s.exec(query.limit(200)).all()
            ]
        return ctx.page(
            "audit.html",
            ctx.t("Audit trail"),
            groups=groups,
            actions=actions,
            events=events,
            chosen_group=gid,
            chosen_action=action,
            section="audit",
        )
