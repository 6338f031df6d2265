"""Signing in to the staff console: passkey sign-in, the one-time setup link that makes a
passkey, signing out and choosing the console's language."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from bots.web.client import TrustedProxies
from cercle.bootstrap import App
from cercle.bounds import parse_json
from cercle.console import accounts, passkeys, sessions
from cercle.console.context import (
    ROOT,
    Ctx,
    client_host,
    foreign_origin,
    headers,
    pick_lang,
    set_cookie,
)
from cercle.health.passkey_host import ip_host
from relay.language.i18n import LANGS, T
from relay.storage.engine import transaction
from relay.storage.models import (
    AuditEvent,
    StaffAccount,
    StaffCredential,
    StaffSession,
)


class Auth:
    """Sign-in, setup and sign-out for one wired app and relying party."""

    def __init__(self, app: App, rp: passkeys.RelyingParty) -> None:
        self.app = app
        self.rp = rp
        self.proxies = TrustedProxies.parse(app.settings.trusted_proxies)

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
        lang = pick_lang(
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
            set_cookie(response, token)
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
        return headers(JSONResponse({"error": text.render(lang)}, status_code=status))

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
        response = headers(JSONResponse({"next": f"{ROOT}/groups"}))
        set_cookie(response, token)
        return response

    async def signin(self, request: Request) -> Response:
        return self._passkey_page(request, None, "get", f"{ROOT}/signin")

    async def signin_options(self, request: Request) -> Response:
        row = self._json_session(request)
        if row is None:
            return self._json_error(None, T("This page has expired. Reload it and try again."), 403)
        if not sessions.attempt_allowed(
            self.app.engine, self.app.keys, client_host(request, self.proxies), self.app.clock.now()
        ):
            too_many = T("Too many attempts. Wait 15 minutes and try again.")
            return self._json_error(row, too_many, 429)
        options, challenge = passkeys.authentication(self.rp)
        self._keep_challenge(row, challenge)
        return headers(Response(options, media_type="application/json"))

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
        # Guessing links: once a client is over its own limit even a right guess is refused;
        # other clients are not affected.
        client, now = client_host(request, self.proxies), self.app.clock.now()
        limited = sessions.over_limit(self.app.engine, self.app.keys, client, now)
        account = None if limited else self._setup_account(request)
        if account is None:
            if not limited:
                sessions.attempt_allowed(self.app.engine, self.app.keys, client, now)
            row, token = self._anonymous(request, pick_lang(request, None))
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
                set_cookie(response, token)
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
        return headers(Response(options, media_type="application/json"))

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
