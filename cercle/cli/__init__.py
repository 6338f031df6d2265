"""``cercle``: run the processes, manage groups and members, keys and the database.

Output is for people (tables) and, with ``--json``, for scripts. Numbers are shown masked
unless an admin explicitly asks, and that request is audited.

Each subject has its own module (``groups``, ``members``, ``invites``, ``keys``, ``signal``,
``staff``, ``database``, ``doctor``, ``processes``); this one assembles them into one command.
"""

from __future__ import annotations

import typer

from cercle.cli import (
    database,
    doctor,
    groups,
    invites,
    keys,
    members,
    processes,
    signal,
    staff,
)
from cercle.logs import configure_logging

cli = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Cercle: a private, pseudonymous relay for support groups.",
)
cli.add_typer(database.db_cli, name="db")
cli.add_typer(groups.group_cli, name="group")
cli.add_typer(members.member_cli, name="member")
cli.add_typer(keys.keys_cli, name="keys")
cli.command()(processes.run)
cli.command()(processes.web)
cli.command()(processes.worker)
cli.command()(processes.sandbox)
cli.command()(processes.check)
cli.command()(doctor.doctor)
cli.add_typer(signal.signal_cli, name="signal")
cli.command("purge")(database.purge_now)
cli.add_typer(invites.invite_cli, name="invite")
cli.add_typer(staff.staff_cli, name="staff")


def main() -> None:
    """Console entry point."""
    configure_logging()
    cli()
