"""The console's deny list: banning a number from every group and lifting a ban."""

from __future__ import annotations

from starlette.responses import Response

from cercle.bootstrap import App
from cercle.console.context import (
    Ctx,
    back,
    said,
)
from relay.errors import CercleError
from relay.storage.models import (
    BanReason,
)


class BanPages:
    """The deny list, for one wired app."""

    def __init__(self, app: App) -> None:
        self.app = app

    def _bans_page(self, ctx: Ctx, status: int = 200, error: str | None = None) -> Response:
        return ctx.page(
            "bans.html",
            ctx.t("Deny list"),
            status,
            reasons=[r.value for r in BanReason if r is not BanReason.STAFF],
            error=error,
            section="bans",
        )

    async def bans(self, ctx: Ctx) -> Response:
        return self._bans_page(ctx)

    async def ban_number(self, ctx: Ctx) -> Response:
        try:
            reason = BanReason(ctx.form.get("reason", "other"))
            self.app.relay.ban_number(ctx.form.get("number", ""), reason.value)
        except ValueError:
            return self._bans_page(ctx, 400, ctx.t("Choose a reason from the list."))
        except CercleError as exc:
            return self._bans_page(ctx, 400, said(ctx, exc))
        return back("/bans", "banned")

    async def unban_number(self, ctx: Ctx) -> Response:
        try:
            lifted = self.app.relay.unban_number(ctx.form.get("number", ""))
        except CercleError as exc:
            return self._bans_page(ctx, 400, said(ctx, exc))
        if not lifted:
            return self._bans_page(ctx, 400, ctx.t("That number is not banned."))
        return back("/bans", "unbanned")
