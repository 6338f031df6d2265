"""The console's staff page, for admins: accounts, their role and a facilitator's groups.

It calls the same functions as ``cercle staff`` (:mod:`cercle.console.access`), inside the
signed-in admin's :func:`relay.core.actor.acting_as`, so the audit trail names who changed
what. An admin cannot lower or remove their own account here (the command line can), so the
console never locks out the person using it. Ids in the address (``sid``) are checked by the
console's scope before these handlers run.
"""

from __future__ import annotations

from dataclasses import asdict

from sqlmodel import Session, col, select
from starlette.responses import RedirectResponse, Response

from cercle.console import access, accounts
from cercle.console.context import Ctx
from relay.errors import CercleError
from relay.language.i18n import LANGS, gettext
from relay.storage.models import Group, StaffAccount, StaffRole

PATH = "/accounts"


def _done(root: str, done: str) -> Response:
    return RedirectResponse(f"{root}{PATH}?done={done}", status_code=303)


def _chosen_groups(ctx: Ctx, groups: list[Group]) -> list[str]:
    """The open groups ticked in the form (one checkbox ``group-ID`` each)."""
    return [g.name for g in groups if ctx.form.get(f"group-{g.id}") == "on"]


def _open_groups(ctx: Ctx) -> list[Group]:
    with Session(ctx.app.engine) as s:
        return list(
            s.exec(
                select(Group).where(col(Group.closed_at).is_(None)).order_by(col(Group.name))
            ).all()
        )


def _account(ctx: Ctx) -> StaffAccount:
    with Session(ctx.app.engine) as s:
        account = s.get(StaffAccount, int(ctx.request.path_params["sid"]))
    if account is None:  # checked before: removed in between
        raise ctx.refuse(ctx.t("There is no staff account here."), 404)
    return account


def _not_yourself(ctx: Ctx, account: StaffAccount) -> None:
    if ctx.account is not None and account.id == ctx.account.id:
        raise ctx.refuse(
            ctx.t("You cannot change your own role or remove your own account here."), 400
        )


def _setup_link(ctx: Ctx, token: str) -> str:
    return f"{ctx.app.settings.public_base_url}{accounts.SETUP_PATH}{token}"


class StaffPages:
    """The staff page's handlers (wired by the console's routes, admins only)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def page(self, ctx: Ctx, status: int = 200, error: str | None = None) -> Response:
        """The list of accounts, with a form to change each and one to add an account."""
        groups = _open_groups(ctx)
        now = ctx.app.clock.now()
        with Session(ctx.app.engine) as s:
            ids = {a.name: a.id for a in s.exec(select(StaffAccount)).all()}
        me = ctx.account.name if ctx.account is not None else None
        rows = [
            asdict(row) | {"id": ids[row.name], "me": row.name == me}
            for row in accounts.listing(ctx.app.engine, now)
        ]
        return ctx.page(
            "accounts.html",
            ctx.t("Staff accounts"),
            status,
            accounts=rows,
            groups=groups,
            langs=LANGS,
            error=error,
            section="accounts",
        )

    async def listing(self, ctx: Ctx) -> Response:
        return self.page(ctx)

    def _made(self, ctx: Ctx, name: str, token: str) -> Response:
        return ctx.page(
            "account_made.html",
            ctx.t("Setup link for {name}", name=name),
            name=name,
            link=_setup_link(ctx, token),
            section="accounts",
        )

    async def create(self, ctx: Ctx) -> Response:
        name = ctx.form.get("name", "").strip()
        try:
            role = StaffRole(ctx.form.get("role", StaffRole.FACILITATOR))
            chosen = _chosen_groups(ctx, _open_groups(ctx))
            if role is StaffRole.ADMIN:
                chosen = []  # an admin sees every group: ticked boxes mean nothing
            lang = ctx.form.get("lang", ctx.lang)
            token = access.add(
                ctx.app.engine, ctx.app.keys, ctx.app.clock.now(), name, role, lang, chosen
            )
        except ValueError:
            return self.page(ctx, 400, ctx.t("Choose a role from the list."))
        except CercleError as exc:
            return self.page(ctx, 400, gettext(ctx.lang, exc.safe_message))
        return self._made(ctx, name, token)

    async def role(self, ctx: Ctx) -> Response:
        account = _account(ctx)
        _not_yourself(ctx, account)
        try:
            role = StaffRole(ctx.form.get("role", ""))
        except ValueError:
            return self.page(ctx, 400, ctx.t("Choose a role from the list."))
        change = access.set_role(ctx.app.engine, ctx.app.clock.now(), account.name, role)
        return _done(self.root, "access_ended" if change.sessions_ended else "saved")

    async def groups(self, ctx: Ctx) -> Response:
        account = _account(ctx)
        open_groups = _open_groups(ctx)
        chosen = set(_chosen_groups(ctx, open_groups))
        with Session(ctx.app.engine) as s:
            current = set(access.group_names(s, account))
        try:
            change = access.change_groups(
                ctx.app.engine,
                ctx.app.clock.now(),
                account.name,
                add=sorted(chosen - current),
                # a closed group has no box: only groups shown in the form can be unticked
                remove=sorted((current - chosen) & {g.name for g in open_groups}),
            )
        except CercleError as exc:
            return self.page(ctx, 400, gettext(ctx.lang, exc.safe_message))
        return _done(self.root, "access_ended" if change.sessions_ended else "saved")

    async def link(self, ctx: Ctx) -> Response:
        account = _account(ctx)
        token = accounts.new_link(ctx.app.engine, ctx.app.keys, ctx.app.clock.now(), account.name)
        return self._made(ctx, account.name, token)

    async def remove(self, ctx: Ctx) -> Response:
        account = _account(ctx)
        _not_yourself(ctx, account)
        if ctx.form.get("confirm", "").strip() != account.name:
            return self.page(
                ctx, 400, ctx.t("The name you typed is not the account's name: nothing changed.")
            )
        accounts.remove(ctx.app.engine, ctx.app.clock.now(), account.name)
        return _done(self.root, "account_removed")
