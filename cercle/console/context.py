"""One request to the staff console: who asks, in which language, with which session.

:func:`staff` wraps every page for signed-in staff: it loads the server-side session first,
checks the CSRF token of every POST before anything else, refuses admin-only pages to
facilitators in one place, and checks every id in the address against the request's scope
(:mod:`cercle.console.scope`: a facilitator sees only its groups). Pages run inside
:func:`relay.core.actor.acting_as`, so the audit trail names the staff member. The small
helpers every page family shares live here too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bots.web.client import TrustedProxies
from cercle.bootstrap import App
from cercle.console import accounts, sessions
from cercle.console.render import render
from cercle.console.scope import NOTHING, Scope, for_request
from relay.core.actor import acting_as
from relay.errors import CercleError
from relay.language.durations import parse_duration
from relay.language.i18n import LANGS, T, gettext
from relay.storage.engine import transaction
from relay.storage.models import (
    AuditEvent,
    Group,
    Member,
    MemberState,
    StaffAccount,
    StaffRole,
    StaffSession,
)

ROOT = "/staff"


CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


DONE = {
    "created": T("Group created."),
    "saved": T("Saved."),
    "closed": T("The group is closed."),
    "enrolled": T("Enrolled: they received their pseudonym and the welcome."),
    "removed": T("Removed: their number and data are deleted."),
    "banned": T("Banned: the number can no longer join any group."),
    "unbanned": T("Ban lifted: the number can be enrolled again."),
    "revoked": T("The code can no longer be used."),
    "access_ended": T("Saved. Access was taken away, so their console sessions were ended."),
    "account_removed": T("The account, its passkeys and its sessions are deleted."),
}


ROLE_LABEL = {StaffRole.ADMIN: T("admin"), StaffRole.FACILITATOR: T("facilitator")}


class RefusedError(Exception):
    """Answer with ``response`` instead of running the page."""

    def __init__(self, response: Response) -> None:
        self.response = response


@dataclass
class Ctx:
    """One request to the console: who asks, in which language, with which session."""

    request: Request
    app: App
    row: StaffSession
    account: StaffAccount | None
    form: dict[str, str] = field(default_factory=dict)
    scope: Scope = NOTHING  # the groups this request may see, read from the database
    group: Group | None = None  # the group the address names, already checked against scope

    @property
    def lang(self) -> str:
        return self.account.lang if self.account else self.row.lang

    @property
    def is_admin(self) -> bool:
        return self.account is not None and self.account.role == StaffRole.ADMIN

    def t(self, msgid: str, **params: object) -> str:
        return T(msgid, **params).render(self.lang)

    def page(self, template: str, title: str, status: int = 200, **values: Any) -> Response:
        done = DONE.get(self.request.query_params.get("done", ""))
        html = render(
            template,
            self.lang,
            {
                "root": ROOT,
                "title": title,
                "account": self.account,
                "is_admin": self.is_admin,
                "role_label": ROLE_LABEL[StaffRole(self.account.role)].render(self.lang)
                if self.account
                else "",
                "csrf": self.row.csrf,
                "notice": done.render(self.lang) if done else None,
                "error": None,
                "section": "",
                **values,
            },
        )
        return headers(HTMLResponse(html, status_code=status))

    def refuse(self, text: str, status: int = 403) -> RefusedError:
        return RefusedError(self.page("message.html", self.t("Not possible"), status, text=text))

    def audit(self, action: str, target: str | None = None, group_id: int | None = None) -> None:
        with transaction(self.app.engine) as s:
            s.add(
                AuditEvent(
                    group_id=group_id,
                    at=self.app.clock.now(),
                    actor=self.actor,
                    action=action,
                    target=target,
                )
            )

    @property
    def actor(self) -> str:
        return accounts.actor_name(self.account) if self.account else "?"


def headers(response: Response) -> Response:
    response.headers["content-security-policy"] = CSP
    response.headers["cache-control"] = "no-store"
    return response


def set_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        sessions.COOKIE, token, path=ROOT, httponly=True, secure=True, samesite="strict"
    )


def client_host(request: Request, proxies: TrustedProxies) -> str:
    """The source sign-in limits count (the one client address rule, bots/web/client.py)."""
    return proxies.source(request) or "?"


def pick_lang(request: Request, fallback: str | None) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    if fallback in LANGS:
        return fallback
    accept = request.headers.get("accept-language", "").lower()
    return "en" if accept.startswith("en") else "fr"


Handler = Callable[[Ctx], Awaitable[Response]]


def foreign_origin(request: Request, public_base_url: str | None) -> bool:
    """Whether a POST names another site as its ``Origin``: refused, on top of the CSRF token.
    A missing or ``null`` Origin (an older browser, a privacy setting) is let through to that
    token."""
    origin = request.headers.get("origin")
    if origin in (None, "null") or not public_base_url:
        return False
    parts = urlsplit(public_base_url)
    return origin.lower() != f"{parts.scheme}://{parts.netloc}".lower()


def staff(
    app: App, handler: Handler, *, admin: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in staff (``admin``: admins only), with the CSRF check on POST."""

    async def endpoint(request: Request) -> Response:
        now = app.clock.now()
        with transaction(app.engine) as s:
            row = sessions.load(s, request.cookies.get(sessions.COOKIE), now)
            account = s.get(StaffAccount, row.staff_id) if row and row.staff_id else None
            # Role and groups are read afresh on every request: a change holds at once.
            scoped = for_request(s, account, request.path_params)
        if row is None or account is None:
            if request.method == "GET":
                return RedirectResponse(f"{ROOT}/signin", status_code=303)
            return headers(HTMLResponse("", status_code=403))
        ctx = Ctx(request, app, row, account, scope=scoped.scope, group=scoped.group)
        try:
            if request.method == "POST":
                if foreign_origin(request, app.settings.public_base_url):
                    raise ctx.refuse(ctx.t("This form was sent from another site."))
                form = await request.form()
                ctx.form = {k: v for k, v in form.items() if isinstance(v, str)}
                if not sessions.csrf_ok(row, ctx.form.get("csrf")):
                    raise ctx.refuse(
                        ctx.t("This form has expired. Go back, reload the page and try again.")
                    )
            if admin and not ctx.is_admin:
                raise ctx.refuse(ctx.t("Only admins can do this."))
            if scoped.refused:  # a foreign id looks exactly like a missing one
                raise ctx.refuse(ctx.t("There is no open group here."), 404)
            with acting_as(ctx.actor):
                return await handler(ctx)
        except RefusedError as refused:
            return refused.response

    return endpoint


def group_of(ctx: Ctx) -> Group:
    """The group of the address, resolved against the request's scope by :func:`staff`."""
    if ctx.group is None:
        raise ctx.refuse(ctx.t("There is no open group here."), 404)
    return ctx.group


def member_of(ctx: Ctx, group: Group) -> Member:
    with Session(ctx.app.engine) as s:
        member = s.get(Member, int(ctx.request.path_params["mid"]))
    if member is None or member.group_id != group.id or member.state == MemberState.REMOVED:
        raise ctx.refuse(ctx.t("There is no such member in this group."), 404)
    return member


def said(ctx: Ctx, exc: CercleError) -> str:
    """A core error in the staff member's language (core errors are catalogue msgids; one
    built with values, such as a time zone's name, stays in English)."""
    return gettext(ctx.lang, exc.safe_message)


def back(path: str, done: str) -> Response:
    return RedirectResponse(f"{ROOT}{path}?done={done}", status_code=303)


def checked(ctx: Ctx, name: str) -> bool:
    return ctx.form.get(name) == "on"


def duration(ctx: Ctx, name: str) -> int:
    seconds = parse_duration(ctx.form.get(name, ""))
    if seconds is None:
        raise CercleError("Give a duration such as 8h, 1d or 1w.")
    return seconds


def when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")
