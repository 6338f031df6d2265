"""Staff accounts of the web console: add, role, a facilitator's groups, new setup link, list,
remove."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from cercle.bootstrap import App
from cercle.cli.common import JsonOpt, Lang, emit, out, wired
from relay.errors import CercleError

staff_cli = typer.Typer(no_args_is_help=True, help="Staff accounts of the web console.")


class StaffRoleOpt(StrEnum):
    """What a staff account may do in the console."""

    admin = "admin"
    facilitator = "facilitator"


def _setup_link(app: App, token: str) -> str:
    from cercle.console.accounts import SETUP_PATH, SETUP_VALID

    base = app.settings.public_base_url
    if not base:
        raise CercleError("Set PUBLIC_BASE_URL (the console's https address) first.")
    hours = int(SETUP_VALID.total_seconds() // 3600)
    return f"{base}{SETUP_PATH}{token}  (one use, valid {hours} h)"


@staff_cli.command("add")
def staff_add(
    name: Annotated[str, typer.Argument(help="A short name, e.g. marie or intake-2")],
    role: Annotated[StaffRoleOpt, typer.Option(help="admin or facilitator")] = (
        StaffRoleOpt.facilitator
    ),
    group: Annotated[
        list[str] | None,
        typer.Option("--group", help="A group this facilitator sees (repeat for more)"),
    ] = None,
    lang: Annotated[Lang, typer.Option(help="Language of the console")] = Lang.fr,
) -> None:
    """Create a console account and print its one-time setup link (a passkey is made there).
    A facilitator sees only the groups given with --group; an admin sees every group."""
    from cercle.console import access
    from relay.storage.models import StaffRole

    with wired() as app:
        link = _setup_link(app, "…")  # fails before anything is created without the URL
        token = access.add(
            app.engine,
            app.keys,
            app.clock.now(),
            name,
            StaffRole(role.value),
            lang.value,
            group or [],
        )
        link = _setup_link(app, token)
    out.print(
        f"Staff account {name} created. Give them this link privately:\n{link}", soft_wrap=True
    )
    if role is StaffRoleOpt.facilitator and not group:
        out.print(f"{name} sees no group yet: cercle staff groups {name} --add GROUP")


@staff_cli.command("role")
def staff_role(name: str, role: StaffRoleOpt) -> None:
    """Make an account admin or facilitator (from its next request; lowering signs it out)."""
    from cercle.console import access
    from relay.storage.models import StaffRole

    with wired() as app:
        change = access.set_role(app.engine, app.clock.now(), name, StaffRole(role.value))
    out.print(f"{name} is now {role.value}.")
    if change.sessions_ended:
        out.print("Their console sessions were ended.")


@staff_cli.command("groups")
def staff_groups(
    name: str,
    add: Annotated[
        list[str] | None, typer.Option("--add", help="A group to give (repeat for more)")
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="A group to take away (repeat)")
    ] = None,
) -> None:
    """Show, give or take away the groups a facilitator sees (from its next request; taking
    one away signs it out)."""
    from cercle.console import access

    with wired() as app:
        change = access.change_groups(app.engine, app.clock.now(), name, add or [], remove or [])
    out.print(f"{name} sees: {', '.join(change.groups) or '(no group)'}")
    if change.sessions_ended:
        out.print("Their console sessions were ended.")


@staff_cli.command("link")
def staff_link(name: str) -> None:
    """A new setup link for an account (lost passkey). Their old passkeys stop working once
    they register a new one."""
    from cercle.console import accounts

    with wired() as app:
        _setup_link(app, "…")
        token = accounts.new_link(app.engine, app.keys, app.clock.now(), name)
        link = _setup_link(app, token)
    out.print(f"New setup link for {name}:\n{link}", soft_wrap=True)


@staff_cli.command("list")
def staff_list(as_json: JsonOpt = False) -> None:
    """Console accounts, their role, a facilitator's groups, and whether they have a passkey."""
    from dataclasses import asdict

    from cercle.console import accounts

    with wired() as app:
        rows = [asdict(r) for r in accounts.listing(app.engine, app.clock.now())]
    if not as_json:  # a table cell reads "jeudi, mardi"; an admin sees every group
        for row in rows:
            row["groups"] = "(all)" if row["role"] == "admin" else ", ".join(row["groups"])
    emit(rows, as_json, "Staff accounts")


@staff_cli.command("remove")
def staff_remove(name: str) -> None:
    """Delete an account, its passkeys and its sessions."""
    from cercle.console import accounts

    with wired() as app:
        accounts.remove(app.engine, app.clock.now(), name)
    out.print(f"Staff account {name} removed.")
