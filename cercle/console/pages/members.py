"""The console's member pages: a group's roster, enrolling a vetted number, removing,
banning and revealing a number (audited)."""

from __future__ import annotations

from starlette.responses import Response

from cercle.bootstrap import App
from cercle.console.context import (
    Ctx,
    back,
    group_of,
    member_of,
    said,
)
from cercle.enrolment import channel_and_account
from cercle.member_view import has_number, view
from relay.errors import CercleError
from relay.language.i18n import T
from relay.service import groups as group_admin
from relay.storage.models import (
    BanReason,
    Group,
    Role,
)


class MemberPages:
    """A group's members, for one wired app."""

    def __init__(self, app: App) -> None:
        self.app = app

    def _members_page(
        self, ctx: Ctx, group: Group, status: int = 200, error: str | None = None
    ) -> Response:
        rows = []
        for m in self.app.relay.roster(group.name):
            v = view(m, self.app.relay.address_of(m))  # the CLI's rule: cercle.member_view
            rows.append(
                {
                    "id": m.id,
                    "pseudonym": v.pseudonym,
                    "role": T(v.role).render(ctx.lang),
                    "channel": v.channel_name(ctx.lang),
                    "state": v.state,
                    "last_active": v.last_active,
                    # A web member has no number: nothing to mask, nothing to reveal.
                    "has_number": v.has_number,
                    "masked": v.number,
                }
            )
        return ctx.page(
            "members.html",
            ctx.t("Members of {name}", name=group.name),
            status,
            group=group,
            members=rows,
            error=error,
            section="groups",
        )

    async def members(self, ctx: Ctx) -> Response:
        return self._members_page(ctx, group_of(ctx))

    async def enrol(self, ctx: Ctx) -> Response:
        group = group_of(ctx)
        number = ctx.form.get("number", "")
        try:
            role = Role(ctx.form.get("role", "member"))
            channel, account = await channel_and_account(
                self.app, number, ctx.form.get("via") or None
            )
            self.app.relay.enroll(
                number, group.name, role, ctx.form.get("lang", group.lang), channel, uuid=account
            )
        except ValueError:
            return self._members_page(ctx, group, 400, ctx.t("Choose a role from the list."))
        except CercleError as exc:
            # The number is not put back in the form: it is never echoed into a page.
            return self._members_page(ctx, group, 400, said(ctx, exc))
        return back(f"/groups/{group.id}/members", "enrolled")

    async def remove(self, ctx: Ctx) -> Response:
        group = group_of(ctx)
        member = member_of(ctx, group)
        self.app.relay.remove_by_admin(group.name, member.pseudonym or "")
        return back(f"/groups/{group.id}/members", "removed")

    async def ban(self, ctx: Ctx) -> Response:
        group = group_of(ctx)
        member = member_of(ctx, group)
        group_admin.ban_member(self.app.relay, group.name, member.pseudonym or "", BanReason.OTHER)
        return back(f"/groups/{group.id}/members", "banned")

    async def reveal(self, ctx: Ctx) -> Response:
        group = group_of(ctx)
        member = member_of(ctx, group)
        if not has_number(member):  # a web seat's address is no number: nothing to show
            raise ctx.refuse(ctx.t("This member joined from a web link and has no number."), 404)
        number = self.app.relay.address_of(member) or ""
        group_admin.record_numbers_shown(self.app.relay, group.name, 1)
        return ctx.page(
            "revealed.html",
            ctx.t("Number of {name}", name=member.pseudonym or "?"),
            group=group,
            number=number,
            section="groups",
        )
