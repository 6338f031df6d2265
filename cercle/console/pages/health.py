"""The console's health page: the same checks as `cercle doctor`."""

from __future__ import annotations

from starlette.responses import Response

from cercle.bootstrap import App
from cercle.console.context import (
    Ctx,
)
from cercle.console.health_facts import health_values


class HealthPages:
    """The health page, for one wired app."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def health(self, ctx: Ctx) -> Response:
        network = ctx.request.query_params.get("network") == "1"
        values = await health_values(self.app, ctx.lang, network=network, scope=ctx.scope)
        return ctx.page("health.html", ctx.t("Health"), section="health", **values)
