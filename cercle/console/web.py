"""The staff console's routes, mounted at ``/staff`` by the web process.

Every page loads the server-side session first; every POST checks its CSRF token before
anything else; admin-only actions are refused to facilitators in one place (:func:`staff`).
Actions run the same core functions as the CLI, inside :func:`relay.core.actor.acting_as`, so the
audit trail names the staff member. Errors the person can act on are shown on the page; any
other error is answered by the web process's guard with a reference only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from sqlmodel import Session, col, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from cercle.bootstrap import App
from cercle.bounds import parse_json, query_int
from cercle.console import accounts, passkeys, sessions
from cercle.console.health_facts import health_values
from cercle.console.passkey_host import ip_host
from cercle.console.render import STATIC, render
from cercle.enrolment import channel_and_account
from relay.core.actor import acting_as
from relay.core.handlers import CHANNEL_NAMES
from relay.errors import CercleError
from relay.groups.invites import live_invites
from relay.language.durations import describe, parse_duration
from relay.language.i18n import LANGS, Raw, T, gettext
from relay.phone import mask
from relay.service import groups as group_admin
from relay.service.relay import GroupSettings
from relay.storage.engine import transaction
from relay.storage.models import (
    AuditEvent,
    BanReason,
    Group,
    Member,
    MemberState,
    Role,
    StaffAccount,
    StaffCredential,
    StaffRole,
    StaffSession,
)

log = logging.getLogger(__name__)
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
}
ROLE_LABEL = {StaffRole.ADMIN: T("admin"), StaffRole.FACILITATOR: T("facilitator")}


class _RefusedError(Exception):
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
        return _headers(HTMLResponse(html, status_code=status))

    def refuse(self, text: str, status: int = 403) -> _RefusedError:
        return _RefusedError(self.page("message.html", self.t("Not possible"), status, text=text))

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


def _headers(response: Response) -> Response:
    response.headers["content-security-policy"] = CSP
    response.headers["cache-control"] = "no-store"
    return response


def _set_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        sessions.COOKIE, token, path=ROOT, httponly=True, secure=True, samesite="strict"
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _pick_lang(request: Request, fallback: str | None) -> str:
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
        if row is None or account is None:
            if request.method == "GET":
                return RedirectResponse(f"{ROOT}/signin", status_code=303)
            return _headers(HTMLResponse("", status_code=403))
        ctx = Ctx(request, app, row, account)
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
            with acting_as(ctx.actor):
                return await handler(ctx)
        except _RefusedError as refused:
            return refused.response

    return endpoint


def _group(ctx: Ctx) -> Group:
    with Session(ctx.app.engine) as s:
        group = s.get(Group, int(ctx.request.path_params["gid"]))
    if group is None or group.closed_at is not None:
        raise ctx.refuse(ctx.t("There is no open group here."), 404)
    return group


def _member(ctx: Ctx, group: Group) -> Member:
    with Session(ctx.app.engine) as s:
        member = s.get(Member, int(ctx.request.path_params["mid"]))
    if member is None or member.group_id != group.id or member.state == MemberState.REMOVED:
        raise ctx.refuse(ctx.t("There is no such member in this group."), 404)
    return member


def _said(ctx: Ctx, exc: CercleError) -> str:
    """A core error in the staff member's language (core errors are catalogue msgids; one
    built with values, such as a time zone's name, stays in English)."""
    return gettext(ctx.lang, exc.safe_message)


def _back(path: str, done: str) -> Response:
    return RedirectResponse(f"{ROOT}{path}?done={done}", status_code=303)


def _checked(ctx: Ctx, name: str) -> bool:
    return ctx.form.get(name) == "on"


def _duration(ctx: Ctx, name: str) -> int:
    seconds = parse_duration(ctx.form.get(name, ""))
    if seconds is None:
        raise CercleError("Give a duration such as 8h, 1d or 1w.")
    return seconds


# --- sign-in, setup, sign-out ---------------------------------------------------------------


class Console:
    """The console's routes for one wired app and relying party."""

    def __init__(self, app: App, rp: passkeys.RelyingParty) -> None:
        self.app = app
        self.rp = rp

    def _anonymous(self, request: Request, lang: str | None) -> tuple[StaffSession, str | None]:
        """The browser's session, or a new anonymous one (its token returned to set)."""
        now = self.app.clock.now()
        with transaction(self.app.engine) as s:
            row = sessions.load(s, request.cookies.get(sessions.COOKIE), now)
        if row is not None:
            if lang is not None and lang != row.lang:
                with transaction(self.app.engine) as s:
                    row.lang = lang
                    s.add(row)
            return row, None
        token = sessions.open_session(self.app.engine, now, lang or "fr")
        with Session(self.app.engine) as s:
            fresh = s.get(StaffSession, sessions._hash(token))
        assert fresh is not None  # noqa: S101 - just made
        return fresh, token

    def _passkey_page(
        self, request: Request, account: StaffAccount | None, mode: str, base: str
    ) -> Response:
        lang = _pick_lang(
            request, account.lang if account and "lang" not in request.query_params else None
        )
        row, token = self._anonymous(request, lang)
        if row.staff_id is not None and mode == "get":
            return RedirectResponse(f"{ROOT}/groups", status_code=303)
        ctx = Ctx(request, self.app, row, None)
        if mode == "create" and account is not None:
            title = ctx.t("Create your passkey")
            intro = ctx.t(
                "Welcome, {name}. A passkey lets you sign in to the staff console with this "
                "device's screen lock or a security key: there is no password to steal. This "
                "link works once.",
                name=account.name,
            )
            button = ctx.t("Create my passkey")
        else:
            title = ctx.t("Sign in")
            intro = ctx.t("Sign in to the staff console with your passkey.")
            button = ctx.t("Sign in with a passkey")
        no_domain = (
            ctx.t(
                "Passkeys cannot work at this address: browsers allow them only on a domain name "
                "(such as relay.example.org), never on an IP address. Ask the person who runs "
                "Cercle to give it a domain name and set PUBLIC_BASE_URL to it."
            )
            if ip_host(self.app.settings.public_base_url)
            else None
        )
        response = ctx.page(
            "passkey.html",
            title,
            mode=mode,
            base=base,
            intro=intro,
            button=button,
            no_domain=no_domain,
        )
        if token:
            _set_cookie(response, token)
        return response

    def _json_session(self, request: Request) -> StaffSession | None:
        with transaction(self.app.engine) as s:
            row = sessions.load(s, request.cookies.get(sessions.COOKIE), self.app.clock.now())
        if row is None or not sessions.csrf_ok(row, request.headers.get("x-csrf-token")):
            return None
        if foreign_origin(request, self.app.settings.public_base_url):
            return None
        return row

    def _json_error(self, row: StaffSession | None, text: T, status: int) -> Response:
        lang = row.lang if row else "fr"
        return _headers(JSONResponse({"error": text.render(lang)}, status_code=status))

    async def _body(self, request: Request) -> Any:
        try:
            return parse_json(await request.body())
        except ValueError:
            return None

    def _keep_challenge(self, row: StaffSession, challenge: str | None) -> None:
        with transaction(self.app.engine) as s:
            row.challenge = challenge
            s.add(row)

    def _signed_in(self, request: Request, row: StaffSession, account: StaffAccount) -> Response:
        sessions.close(self.app.engine, request.cookies.get(sessions.COOKIE))
        token = sessions.open_session(
            self.app.engine, self.app.clock.now(), account.lang, account.id
        )
        response = _headers(JSONResponse({"next": f"{ROOT}/groups"}))
        _set_cookie(response, token)
        return response

    async def signin(self, request: Request) -> Response:
        return self._passkey_page(request, None, "get", f"{ROOT}/signin")

    async def signin_options(self, request: Request) -> Response:
        row = self._json_session(request)
        if row is None:
            return self._json_error(None, T("This page has expired. Reload it and try again."), 403)
        if not sessions.attempt_allowed(
            self.app.engine, self.app.keys, _client(request), self.app.clock.now()
        ):
            too_many = T("Too many attempts. Wait 15 minutes and try again.")
            return self._json_error(row, too_many, 429)
        options, challenge = passkeys.authentication(self.rp)
        self._keep_challenge(row, challenge)
        return _headers(Response(options, media_type="application/json"))

    async def signin_verify(self, request: Request) -> Response:
        row = self._json_session(request)
        if row is None or row.challenge is None:
            return self._json_error(row, T("This page has expired. Reload it and try again."), 403)
        challenge = row.challenge
        self._keep_challenge(row, None)  # one try per challenge
        body = await self._body(request)
        cred_id = passkeys.credential_id_of(body)
        now = self.app.clock.now()
        with transaction(self.app.engine) as s:
            cred = (
                s.exec(
                    select(StaffCredential).where(StaffCredential.credential_id == cred_id)
                ).first()
                if cred_id
                else None
            )
            account = s.get(StaffAccount, cred.staff_id) if cred else None
            if cred is None or account is None:
                return self._json_error(row, T("This passkey is not known here."), 400)
            try:
                cred.sign_count = passkeys.verify_authentication(self.rp, body, challenge, cred)
            except passkeys.PasskeyError:
                return self._json_error(row, T("The passkey could not be verified."), 400)
            cred.last_used_at = now
            s.add(cred)
            s.add(AuditEvent(at=now, actor=accounts.actor_name(account), action="staff_signin"))
        return self._signed_in(request, row, account)

    def _setup_account(self, request: Request) -> StaffAccount | None:
        with Session(self.app.engine) as s:
            return accounts.by_setup_token(
                s, self.app.keys, request.path_params["token"], self.app.clock.now()
            )

    async def setup(self, request: Request) -> Response:
        # Guessing links: once a client is over the limit even a right guess is refused.
        client, now = _client(request), self.app.clock.now()
        limited = sessions.over_limit(self.app.engine, self.app.keys, client, now)
        account = None if limited else self._setup_account(request)
        if account is None:
            if not limited:
                sessions.attempt_allowed(self.app.engine, self.app.keys, client, now)
            row, token = self._anonymous(request, _pick_lang(request, None))
            ctx = Ctx(request, self.app, row, None)
            response = ctx.page(
                "message.html",
                ctx.t("This link does not work"),
                429 if limited else 410,
                text=ctx.t("Too many attempts. Wait 15 minutes and try again.")
                if limited
                else ctx.t(
                    "This setup link is not valid: it was already used, it expired, or a newer "
                    "one replaced it. Ask an admin for a new link."
                ),
            )
            if token:
                _set_cookie(response, token)
            return response
        return self._passkey_page(
            request, account, "create", f"{ROOT}/setup/{request.path_params['token']}"
        )

    async def setup_options(self, request: Request) -> Response:
        row = self._json_session(request)
        account = self._setup_account(request)
        if row is None or account is None:
            return self._json_error(row, T("This link does not work any more."), 403)
        options, challenge = passkeys.registration(self.rp, account)
        self._keep_challenge(row, challenge)
        return _headers(Response(options, media_type="application/json"))

    async def setup_verify(self, request: Request) -> Response:
        row = self._json_session(request)
        account = self._setup_account(request)
        if row is None or account is None or row.challenge is None:
            return self._json_error(row, T("This link does not work any more."), 403)
        challenge = row.challenge
        self._keep_challenge(row, None)
        try:
            cred_id, public_key, count = passkeys.verify_registration(
                self.rp, await self._body(request), challenge
            )
        except passkeys.PasskeyError:
            return self._json_error(row, T("The passkey could not be registered."), 400)
        with transaction(self.app.engine) as s:
            fresh = s.get(StaffAccount, account.id)
            if fresh is None or fresh.setup_hash != account.setup_hash:
                return self._json_error(row, T("This link does not work any more."), 403)
            accounts.finish_setup(s, fresh, cred_id, public_key, count, self.app.clock.now())
        return self._signed_in(request, row, account)

    async def signout(self, ctx: Ctx) -> Response:
        ctx.audit("staff_signout")
        sessions.close(self.app.engine, ctx.request.cookies.get(sessions.COOKIE))
        response = RedirectResponse(f"{ROOT}/signin?lang={ctx.lang}", status_code=303)
        response.delete_cookie(
            sessions.COOKIE, path=ROOT, secure=True, httponly=True, samesite="strict"
        )
        return response

    async def set_lang(self, ctx: Ctx) -> Response:
        lang = ctx.form.get("lang")
        if lang in LANGS and ctx.account is not None:
            with transaction(self.app.engine) as s:
                account = s.get(StaffAccount, ctx.account.id)
                if account is not None:
                    account.lang = lang
                    s.add(account)
        return RedirectResponse(f"{ROOT}/groups", status_code=303)

    # --- groups ------------------------------------------------------------------------------

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
                for g in s.exec(select(Group).order_by(col(Group.name))).all()
            ]
        basics = basics or {
            "lang": ctx.lang,
            "timer": "1w",
            "allow_rename": False,
            "allow_sms": True,
            "allow_media": False,
        }
        return ctx.page(
            "groups.html",
            ctx.t("Groups"),
            status,
            groups=groups,
            basics=basics,
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
                )
            )
        except CercleError as exc:
            return self._groups_page(ctx, 400, _said(ctx, exc), self._basics_values(ctx))
        return _back(f"/groups/{group.id}", "created")

    def _basics_form(self, ctx: Ctx) -> group_admin.GroupBasics:
        return group_admin.GroupBasics(
            ctx.form.get("lang"),
            parse_duration(ctx.form.get("timer", "")) or -1,
            _checked(ctx, "allow_rename"),
            _checked(ctx, "allow_sms"),
            _checked(ctx, "allow_media"),
        )

    def _basics_values(self, ctx: Ctx) -> dict[str, Any]:
        return {
            "lang": ctx.form.get("lang", "fr"),
            "timer": ctx.form.get("timer", "")[:16],
            "allow_rename": _checked(ctx, "allow_rename"),
            "allow_sms": _checked(ctx, "allow_sms"),
            "allow_media": _checked(ctx, "allow_media"),
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
        }
        sessions_text = (
            "" if policy["schedule"] == "always open" else policy["schedule"].replace("; ", "\n")
        )
        return ctx.page(
            "group.html",
            ctx.t("Group {name}", name=group.name),
            status,
            group=group,
            policy=policy,
            basics=basics,
            sessions=sessions_text,
            end_day=(datetime.fromisoformat(ends) - timedelta(seconds=1)).date().isoformat()
            if ends
            else "",
            sms_segments=segments,
            error=error,
            section="groups",
        )

    async def group(self, ctx: Ctx) -> Response:
        return self._group_page(ctx, _group(ctx))

    async def _change(self, ctx: Ctx, change: Callable[[Group], object]) -> Response:
        group = _group(ctx)
        try:
            change(group)
        except CercleError as exc:
            return self._group_page(ctx, group, 400, _said(ctx, exc))
        return _back(f"/groups/{group.id}", "saved")

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
                require_approval=_checked(ctx, "require_approval"),
                premoderate=premoderate,
                exit_word=ctx.form.get("exit_word", "").strip(),
                alert_hold=_checked(ctx, "alert_hold"),
                alert_content=_checked(ctx, "alert_content"),
            )
            group_admin.set_safety(self.app.relay, group.name, choices, self.app.settings.timezone)

        return await self._change(ctx, change)

    async def close_form(self, ctx: Ctx) -> Response:
        group = _group(ctx)
        return ctx.page(
            "close.html", ctx.t("Close {name}?", name=group.name), group=group, section="groups"
        )

    async def close(self, ctx: Ctx) -> Response:
        group = _group(ctx)
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
        return _back("/groups", "closed")

    # --- members -----------------------------------------------------------------------------

    def _members_page(
        self, ctx: Ctx, group: Group, status: int = 200, error: str | None = None
    ) -> Response:
        rows = []
        for m in self.app.relay.roster(group.name):
            address = self.app.relay.address_of(m) or ""
            rows.append(
                {
                    "id": m.id,
                    "pseudonym": m.pseudonym,
                    "role": T(m.role).render(ctx.lang),
                    "channel": CHANNEL_NAMES.get(m.channel, Raw(m.channel)).render(ctx.lang),
                    "state": m.state,
                    "last_active": m.last_active_on,
                    # A web member has no number: nothing to mask, nothing to reveal.
                    "has_number": m.channel != "web",
                    "masked": mask(address) if address.startswith("+") else "••••",
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
        return self._members_page(ctx, _group(ctx))

    async def enrol(self, ctx: Ctx) -> Response:
        group = _group(ctx)
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
            return self._members_page(ctx, group, 400, _said(ctx, exc))
        return _back(f"/groups/{group.id}/members", "enrolled")

    async def remove(self, ctx: Ctx) -> Response:
        group = _group(ctx)
        member = _member(ctx, group)
        self.app.relay.remove_by_admin(group.name, member.pseudonym or "")
        return _back(f"/groups/{group.id}/members", "removed")

    async def ban(self, ctx: Ctx) -> Response:
        group = _group(ctx)
        member = _member(ctx, group)
        group_admin.ban_member(self.app.relay, group.name, member.pseudonym or "", BanReason.OTHER)
        return _back(f"/groups/{group.id}/members", "banned")

    async def reveal(self, ctx: Ctx) -> Response:
        group = _group(ctx)
        member = _member(ctx, group)
        if member.channel == "web":  # a web seat's address is no number: nothing to show
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

    # --- invites -----------------------------------------------------------------------------

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
                    "expires": _when(i.expires_at),
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
        return self._invites_page(ctx, _group(ctx))

    async def invite_create(self, ctx: Ctx) -> Response:
        group = _group(ctx)
        try:
            role = Role(ctx.form.get("role", "member"))
            if role is not Role.MEMBER and not ctx.is_admin:
                raise ctx.refuse(ctx.t("Only admins can do this."))
            seconds = _duration(ctx, "expires")
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
            return self._invites_page(ctx, group, 400, _said(ctx, exc))
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
            # With the web door on, the same code is also a private link (issue 14).
            link=self.app.relay.join_link(code) if self.app.relay.join_link else None,
            expires=_when(self.app.clock.now() + timedelta(seconds=seconds)),
            section="groups",
        )

    async def invite_revoke(self, ctx: Ctx) -> Response:
        group = _group(ctx)
        try:
            group_admin.remove_invite(
                self.app.relay, int(ctx.request.path_params["iid"]), group.name
            )
        except CercleError as exc:
            return self._invites_page(ctx, group, 400, _said(ctx, exc))
        return _back(f"/groups/{group.id}/invites", "revoked")

    # --- deny list, audit, health ------------------------------------------------------------

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
            return self._bans_page(ctx, 400, _said(ctx, exc))
        return _back("/bans", "banned")

    async def unban_number(self, ctx: Ctx) -> Response:
        try:
            lifted = self.app.relay.unban_number(ctx.form.get("number", ""))
        except CercleError as exc:
            return self._bans_page(ctx, 400, _said(ctx, exc))
        if not lifted:
            return self._bans_page(ctx, 400, ctx.t("That number is not banned."))
        return _back("/bans", "unbanned")

    async def audit(self, ctx: Ctx) -> Response:
        q = ctx.request.query_params
        number = query_int(q.get("group"), -1)
        gid = number if number >= 0 else None
        action = q.get("action") or None
        with Session(self.app.engine) as s:
            groups = s.exec(select(Group).order_by(col(Group.name))).all()
            names = {g.id: g.name for g in groups}
            actions = s.exec(
                select(AuditEvent.action).distinct().order_by(col(AuditEvent.action))
            ).all()
            query = select(AuditEvent).order_by(
                col(AuditEvent.at).desc(), col(AuditEvent.id).desc()
            )
            if gid is not None:
                query = query.where(col(AuditEvent.group_id) == gid)
            if action is not None:
                query = query.where(col(AuditEvent.action) == action)
            events = [
                {
                    "at": _when(e.at),
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

    async def health(self, ctx: Ctx) -> Response:
        network = ctx.request.query_params.get("network") == "1"
        values = await health_values(self.app, ctx.lang, network=network)
        return ctx.page("health.html", ctx.t("Health"), section="health", **values)

    async def home(self, request: Request) -> Response:
        return RedirectResponse(f"{ROOT}/groups", status_code=303)

    def routes(self) -> list[BaseRoute]:
        app = self.app

        def s(handler: Handler, admin: bool = False) -> Callable[[Request], Awaitable[Response]]:
            return staff(app, handler, admin=admin)

        g = "/groups/{gid:int}"
        return [
            Route("/", self.home),
            Route("/signin", self.signin),
            Route("/signin/options", self.signin_options, methods=["POST"]),
            Route("/signin/verify", self.signin_verify, methods=["POST"]),
            Route("/setup/{token}", self.setup),
            Route("/setup/{token}/options", self.setup_options, methods=["POST"]),
            Route("/setup/{token}/verify", self.setup_verify, methods=["POST"]),
            Route("/signout", s(self.signout), methods=["POST"]),
            Route("/lang", s(self.set_lang), methods=["POST"]),
            Route("/groups", s(self.groups)),
            Route("/groups", s(self.group_create, admin=True), methods=["POST"]),
            Route(g, s(self.group)),
            Route(g + "/basics", s(self.group_basics, admin=True), methods=["POST"]),
            Route(g + "/schedule", s(self.group_schedule, admin=True), methods=["POST"]),
            Route(g + "/end", s(self.group_end, admin=True), methods=["POST"]),
            Route(g + "/safety", s(self.group_safety, admin=True), methods=["POST"]),
            Route(g + "/close", s(self.close_form, admin=True)),
            Route(g + "/close", s(self.close, admin=True), methods=["POST"]),
            Route(g + "/members", s(self.members)),
            Route(g + "/members", s(self.enrol, admin=True), methods=["POST"]),
            Route(g + "/members/{mid:int}/remove", s(self.remove), methods=["POST"]),
            Route(g + "/members/{mid:int}/ban", s(self.ban, admin=True), methods=["POST"]),
            Route(g + "/members/{mid:int}/reveal", s(self.reveal, admin=True), methods=["POST"]),
            Route(g + "/invites", s(self.invites)),
            Route(g + "/invites", s(self.invite_create), methods=["POST"]),
            Route(g + "/invites/{iid:int}/revoke", s(self.invite_revoke), methods=["POST"]),
            Route("/bans", s(self.bans, admin=True)),
            Route("/bans", s(self.ban_number, admin=True), methods=["POST"]),
            Route("/bans/lift", s(self.unban_number, admin=True), methods=["POST"]),
            Route("/audit", s(self.audit)),
            Route("/health", s(self.health)),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def spoken(number: str) -> str:
    """The organization's number as people read it out (``+1 514-555-0100``)."""
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _short_duration(seconds: int) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"


def console_mount(app: App) -> Mount | None:
    """The console at ``/staff``, or ``None`` (logged) when ``PUBLIC_BASE_URL`` is not set:
    passkeys are bound to that address."""
    base = app.settings.public_base_url
    if not base:
        log.info("staff console off: set PUBLIC_BASE_URL to serve it at /staff")
        return None
    rp = passkeys.RelyingParty.from_base_url(base, app.settings.org_name)
    # No trailing-slash redirects: Starlette builds them from the request's Host.
    console = Starlette(routes=Console(app, rp).routes())
    console.router.redirect_slashes = False
    return Mount(ROOT, app=console)
