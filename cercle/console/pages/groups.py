"""The console's group pages: the list, creating a group, its settings (basics, open hours,
end date, safety choices, video sessions) and closing it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select
from starlette.responses import Response

from cercle.bootstrap import App
from cercle.console.context import (
    Ctx,
    back,
    checked,
    group_of,
    said,
)
from relay.errors import CercleError
from relay.language.durations import describe, parse_duration
from relay.service import groups as group_admin
from relay.service.relay import GroupSettings
from relay.service.video import set_video
from relay.storage.models import (
    Group,
)


class GroupPages:
    """The groups list and one group's settings, for one wired app."""

    def __init__(self, app: App) -> None:
        self.app = app

    def _groups_page(
        self,
        ctx: Ctx,
        status: int = 200,
        error: str | None = None,
        basics: dict[str, Any] | None = None,
    ) -> Response:
        with Session(self.app.engine) as s:
            counts = group_admin.member_counts(s)
            groups = [
                {
                    "id": g.id,
                    "name": g.name,
                    "lang": g.lang,
                    "timer": describe(g.timer_seconds).render(ctx.lang),
                    "members": counts.get(g.id or 0, 0),
                    "closed": g.closed_at is not None,
                }
                for g in s.exec(
                    select(Group).where(ctx.scope.where(Group.id)).order_by(col(Group.name))
                ).all()
            ]
        basics = basics or {
            "lang": ctx.lang,
            "timer": "1w",
            "allow_rename": False,
            "allow_sms": True,
            "allow_media": False,
            "show_name": False,
        }
        return ctx.page(
            "groups.html",
            ctx.t("Groups"),
            status,
            groups=groups,
            basics=basics,
            sms_ready=self.app.providers.sms is not None,
            error=error,
            section="groups",
        )

    async def groups(self, ctx: Ctx) -> Response:
        return self._groups_page(ctx)

    async def group_create(self, ctx: Ctx) -> Response:
        basics = self._basics_form(ctx)
        try:
            group = self.app.relay.create_group(
                GroupSettings(
                    ctx.form.get("name", ""),
                    basics.lang or "fr",
                    basics.timer_seconds or 0,
                    bool(basics.allow_rename),
                    bool(basics.allow_sms),
                    bool(basics.allow_media),
                    bool(basics.show_name),
                )
            )
        except CercleError as exc:
            return self._groups_page(ctx, 400, said(ctx, exc), self._basics_values(ctx))
        return back(f"/groups/{group.id}", "created")

    def _basics_form(self, ctx: Ctx) -> group_admin.GroupBasics:
        return group_admin.GroupBasics(
            ctx.form.get("lang"),
            parse_duration(ctx.form.get("timer", "")) or -1,
            checked(ctx, "allow_rename"),
            checked(ctx, "allow_sms"),
            checked(ctx, "allow_media"),
            checked(ctx, "show_name"),
        )

    def _basics_values(self, ctx: Ctx) -> dict[str, Any]:
        return {
            "lang": ctx.form.get("lang", "fr"),
            "timer": ctx.form.get("timer", "")[:16],
            "allow_rename": checked(ctx, "allow_rename"),
            "allow_sms": checked(ctx, "allow_sms"),
            "allow_media": checked(ctx, "allow_media"),
            "show_name": checked(ctx, "show_name"),
        }

    def _group_page(
        self, ctx: Ctx, group: Group, status: int = 200, error: str | None = None
    ) -> Response:
        policy = group_admin.describe_policy(self.app.relay, group.name)
        with Session(self.app.engine) as s:
            segments, _ = group_admin.sms_usage(self.app.relay, s, group)
        ends = policy["ends_at"]
        basics = {
            "lang": group.lang,
            "timer": _short_duration(group.timer_seconds),
            "allow_rename": group.allow_rename,
            "allow_sms": group.allow_sms,
            "allow_media": group.allow_media,
            "show_name": group.show_name,
        }
        sessions_text = (
            "" if policy["schedule"] == "always open" else policy["schedule"].replace("; ", "\n")
        )
        return ctx.page(
            "group.html",
            ctx.t("Group {name}", name=group.name),
            status,
            group=group,
            sms_ready=self.app.providers.sms is not None,
            policy=policy,
            basics=basics,
            sessions=sessions_text,
            end_day=(datetime.fromisoformat(ends) - timedelta(seconds=1)).date().isoformat()
            if ends
            else "",
            sms_segments=segments,
            video_server=self.app.relay.video_url is not None,
            error=error,
            section="groups",
        )

    async def group(self, ctx: Ctx) -> Response:
        return self._group_page(ctx, group_of(ctx))

    async def _change(self, ctx: Ctx, change: Callable[[Group], object]) -> Response:
        group = group_of(ctx)
        try:
            change(group)
        except CercleError as exc:
            return self._group_page(ctx, group, 400, said(ctx, exc))
        return back(f"/groups/{group.id}", "saved")

    async def group_basics(self, ctx: Ctx) -> Response:
        def change(group: Group) -> None:
            basics = self._basics_form(ctx)
            if basics.timer_seconds == -1:
                raise CercleError("Give a duration such as 8h, 1d or 1w.")
            group_admin.set_basics(self.app.relay, group.name, basics)

        return await self._change(ctx, change)

    async def group_schedule(self, ctx: Ctx) -> Response:
        lines = [ln.strip() for ln in ctx.form.get("sessions", "").splitlines() if ln.strip()]
        tz = ctx.form.get("tz", "").strip() or None
        return await self._change(
            ctx,
            lambda g: group_admin.set_schedule(
                self.app.relay,
                g.name,
                add=tuple(lines),
                clear=True,
                always_open=not lines,
                tz=tz,
                default_tz=self.app.settings.timezone,
            ),
        )

    async def group_end(self, ctx: Ctx) -> Response:
        text = ctx.form.get("ends", "").strip()

        def change(group: Group) -> None:
            try:
                day = date.fromisoformat(text) if text else None
            except ValueError as exc:
                raise CercleError("Give a date such as 2027-03-31.") from exc
            group_admin.set_end(
                self.app.relay,
                group.name,
                on=day,
                never=day is None,
                default_tz=self.app.settings.timezone,
            )

        return await self._change(ctx, change)

    async def group_safety(self, ctx: Ctx) -> Response:
        def change(group: Group) -> None:
            try:
                premoderate = int(ctx.form.get("premoderate", "0") or "0")
            except ValueError as exc:
                raise CercleError("Give a number of messages from 0 to 50.") from exc
            choices = group_admin.SafetyChoices(
                require_approval=checked(ctx, "require_approval"),
                premoderate=premoderate,
                exit_word=ctx.form.get("exit_word", "").strip(),
                alert_hold=checked(ctx, "alert_hold"),
                alert_content=checked(ctx, "alert_content"),
            )
            group_admin.set_safety(self.app.relay, group.name, choices, self.app.settings.timezone)

        return await self._change(ctx, change)

    async def group_video(self, ctx: Ctx) -> Response:
        on = checked(ctx, "video")
        return await self._change(ctx, lambda g: set_video(self.app.relay, g.name, on))

    async def close_form(self, ctx: Ctx) -> Response:
        group = group_of(ctx)
        return ctx.page(
            "close.html", ctx.t("Close {name}?", name=group.name), group=group, section="groups"
        )

    async def close(self, ctx: Ctx) -> Response:
        group = group_of(ctx)
        if ctx.form.get("confirm", "").strip() != group.name:
            return ctx.page(
                "close.html",
                ctx.t("Close {name}?", name=group.name),
                400,
                group=group,
                error=ctx.t("The name you typed is not the group's name: nothing was closed."),
                section="groups",
            )
        self.app.relay.close_group(group.name)
        return back("/groups", "closed")


def _short_duration(seconds: int) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"
