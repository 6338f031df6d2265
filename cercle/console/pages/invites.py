"""The console's invite pages: a group's live codes, making one (shown once) and revoking one."""

from __future__ import annotations

from datetime import timedelta

import phonenumbers
from sqlmodel import Session
from starlette.responses import Response

from cercle.bootstrap import App
from cercle.console.context import (
    Ctx,
    back,
    duration,
    group_of,
    said,
    when,
)
from relay.errors import CercleError
from relay.groups.invites import live_invites
from relay.language.i18n import T
from relay.service import groups as group_admin
from relay.storage.models import (
    Group,
    Role,
)


class InvitePages:
    """A group's invite codes, for one wired app."""

    def __init__(self, app: App) -> None:
        self.app = app

    def _invites_page(
        self, ctx: Ctx, group: Group, status: int = 200, error: str | None = None
    ) -> Response:
        with Session(self.app.engine) as s:
            rows = [
                {
                    "id": i.id,
                    "role": T(i.role).render(ctx.lang),
                    "lang": i.lang,
                    "created_by": i.created_by,
                    "expires": when(i.expires_at),
                }
                for i in live_invites(s, group.id or 0, self.app.clock.now())
            ]
        return ctx.page(
            "invites.html",
            ctx.t("Invite codes of {name}", name=group.name),
            status,
            group=group,
            invites=rows,
            error=error,
            section="groups",
        )

    async def invites(self, ctx: Ctx) -> Response:
        return self._invites_page(ctx, group_of(ctx))

    async def invite_create(self, ctx: Ctx) -> Response:
        group = group_of(ctx)
        try:
            role = Role(ctx.form.get("role", "member"))
            if role is not Role.MEMBER and not ctx.is_admin:
                raise ctx.refuse(ctx.t("Only admins can do this."))
            seconds = duration(ctx, "expires")
            code = group_admin.create_invite(
                self.app.relay,
                group.name,
                timedelta(seconds=seconds),
                role,
                ctx.form.get("lang") or None,
            )
        except ValueError:
            return self._invites_page(ctx, group, 400, ctx.t("Choose a role from the list."))
        except CercleError as exc:
            return self._invites_page(ctx, group, 400, said(ctx, exc))
        s = self.app.settings
        numbers = [
            (name, spoken(number))
            for name, number in (("Signal", s.signal_number), ("SMS", s.twilio_number))
            if number
        ]
        return ctx.page(
            "invite_made.html",
            ctx.t("Invite code for {name}", name=group.name),
            group=group,
            code=code,
            spelled=" ".join(code),
            numbers=numbers,
            # With the web door on, the invite also has a private link with its own token.
            link=self.app.relay.join_link(code) if self.app.relay.join_link else None,
            expires=when(self.app.clock.now() + timedelta(seconds=seconds)),
            section="groups",
        )

    async def invite_revoke(self, ctx: Ctx) -> Response:
        group = group_of(ctx)
        try:
            group_admin.remove_invite(
                self.app.relay, int(ctx.request.path_params["iid"]), group.name
            )
        except CercleError as exc:
            return self._invites_page(ctx, group, 400, said(ctx, exc))
        return back(f"/groups/{group.id}/invites", "revoked")


def spoken(number: str) -> str:
    """The organization's number as people read it out (``+1 514-555-0100``)."""
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
