"""The staff console's routes, mounted at ``/staff`` by the web process.

Every route is declared here, in one list; the pages themselves live by family in
:mod:`cercle.console.auth` (sign-in and passkeys) and :mod:`cercle.console.pages`, and the
request context every page gets in :mod:`cercle.console.context`. Actions run the same core
functions as the CLI. Errors the person can act on are shown on the page; any other error is
answered by the web process's guard with a reference only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from cercle.bootstrap import App
from cercle.console import passkeys
from cercle.console.auth import Auth
from cercle.console.context import ROOT, Handler, staff
from cercle.console.pages.audit import AuditPages
from cercle.console.pages.bans import BanPages
from cercle.console.pages.groups import GroupPages
from cercle.console.pages.health import HealthPages
from cercle.console.pages.invites import InvitePages
from cercle.console.pages.members import MemberPages
from cercle.console.render import STATIC
from cercle.console.staff_page import StaffPages

log = logging.getLogger(__name__)


async def home(request: Request) -> Response:
    """``/staff/``: the groups list (or, signed out, the sign-in page it sends on to)."""
    return RedirectResponse(f"{ROOT}/groups", status_code=303)


def routes(app: App, rp: passkeys.RelyingParty) -> list[BaseRoute]:
    """Every route of the console; ``s(...)`` marks a page for signed-in staff."""

    def s(handler: Handler, admin: bool = False) -> Callable[[Request], Awaitable[Response]]:
        return staff(app, handler, admin=admin)

    auth = Auth(app, rp)
    groups, members, invites = GroupPages(app), MemberPages(app), InvitePages(app)
    bans, audit, health = BanPages(app), AuditPages(app), HealthPages(app)
    staff_pages = StaffPages(ROOT)
    g = "/groups/{gid:int}"
    a = "/accounts/{sid:int}"
    return [
        Route("/", home),
        Route("/signin", auth.signin),
        Route("/signin/options", auth.signin_options, methods=["POST"]),
        Route("/signin/verify", auth.signin_verify, methods=["POST"]),
        Route("/setup/{token}", auth.setup),
        Route("/setup/{token}/options", auth.setup_options, methods=["POST"]),
        Route("/setup/{token}/verify", auth.setup_verify, methods=["POST"]),
        Route("/signout", s(auth.signout), methods=["POST"]),
        Route("/lang", s(auth.set_lang), methods=["POST"]),
        Route("/groups", s(groups.groups)),
        Route("/groups", s(groups.group_create, admin=True), methods=["POST"]),
        Route(g, s(groups.group)),
        Route(g + "/basics", s(groups.group_basics, admin=True), methods=["POST"]),
        Route(g + "/schedule", s(groups.group_schedule, admin=True), methods=["POST"]),
        Route(g + "/end", s(groups.group_end, admin=True), methods=["POST"]),
        Route(g + "/safety", s(groups.group_safety, admin=True), methods=["POST"]),
        Route(g + "/video", s(groups.group_video, admin=True), methods=["POST"]),
        Route(g + "/close", s(groups.close_form, admin=True)),
        Route(g + "/close", s(groups.close, admin=True), methods=["POST"]),
        Route(g + "/members", s(members.members)),
        Route(g + "/members", s(members.enrol, admin=True), methods=["POST"]),
        Route(g + "/members/{mid:int}/remove", s(members.remove), methods=["POST"]),
        Route(g + "/members/{mid:int}/ban", s(members.ban, admin=True), methods=["POST"]),
        Route(g + "/members/{mid:int}/reveal", s(members.reveal, admin=True), methods=["POST"]),
        Route(g + "/invites", s(invites.invites)),
        Route(g + "/invites", s(invites.invite_create), methods=["POST"]),
        Route(g + "/invites/{iid:int}/revoke", s(invites.invite_revoke), methods=["POST"]),
        Route("/bans", s(bans.bans, admin=True)),
        Route("/bans", s(bans.ban_number, admin=True), methods=["POST"]),
        Route("/bans/lift", s(bans.unban_number, admin=True), methods=["POST"]),
        Route("/accounts", s(staff_pages.listing, admin=True)),
        Route("/accounts", s(staff_pages.create, admin=True), methods=["POST"]),
        Route(a + "/role", s(staff_pages.role, admin=True), methods=["POST"]),
        Route(a + "/groups", s(staff_pages.groups, admin=True), methods=["POST"]),
        Route(a + "/link", s(staff_pages.link, admin=True), methods=["POST"]),
        Route(a + "/remove", s(staff_pages.remove, admin=True), methods=["POST"]),
        Route("/audit", s(audit.audit)),
        Route("/health", s(health.health)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


def console_mount(app: App) -> Mount | None:
    """The console at ``/staff``, or ``None`` (logged) when ``PUBLIC_BASE_URL`` is not set:
    passkeys are bound to that address."""
    base = app.settings.public_base_url
    if not base:
        log.info("staff console off: set PUBLIC_BASE_URL to serve it at /staff")
        return None
    rp = passkeys.RelyingParty.from_base_url(base, app.settings.org_name)
    # No trailing-slash redirects: Starlette builds them from the request's Host.
    console = Starlette(routes=routes(app, rp))
    console.router.redirect_slashes = False
    return Mount(ROOT, app=console)
