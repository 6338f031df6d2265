"""Members: enroll vetted numbers, list, remove, and the deny list (ban, unban)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from cercle.bootstrap import App
from cercle.cli.common import JsonOpt, Lang, emit, err, fail, out, wired
from cercle.member_view import view
from relay.messages import Channel
from relay.storage.models import Member, Role

member_cli = typer.Typer(no_args_is_help=True, help="Members (admins enroll vetted numbers).")


class Via(StrEnum):
    """Transports a member can be enrolled on."""

    signal = "signal"
    sms = "sms"


def member_row(app: App, m: Member, show_numbers: bool) -> dict[str, Any]:
    """One row of a roster table (the shared rule: :mod:`cercle.member_view`)."""
    v = view(m, app.relay.address_of(m), reveal=show_numbers)
    return {
        "pseudonym": v.pseudonym,
        "role": v.role,
        "transport": v.channel,
        "lang": v.lang,
        "state": v.state,
        "muted": v.muted,
        "last_active": v.last_active,
        "number": v.number,
    }


@member_cli.command("add")
def member_add(
    number: Annotated[str, typer.Argument(help="The vetted phone number (any common format)")],
    group: Annotated[str, typer.Option("--group", "-g", help="Group name")],
    role: Annotated[Role, typer.Option(help="member, facilitator or admin")] = Role.MEMBER,
    lang: Annotated[Lang, typer.Option(help="Language of what Cercle sends them")] = Lang.fr,
    via: Annotated[Via | None, typer.Option(help="signal or sms (default: see docs)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Enroll a vetted number: they get a pseudonym and the welcome, and must agree."""
    with wired() as app:
        channel, account = _channel_and_account(app, number, via)
        member = app.relay.enroll(number, group, role, lang.value, channel, uuid=account)
        row = member_row(app, member, False)
    emit([row], as_json, "Enrolled")
    if channel == Channel.SIGNAL and account is None:
        err.print(
            "[yellow]Signal did not give this number's account id:[/] until they write, Cercle "
            "reaches them by number; the worker keeps asking."
        )


def _channel_and_account(app: App, number: str, via: Via | None) -> tuple[Channel, str | None]:
    """The member's channel and, for Signal, their account id (see cercle.enrolment)."""
    import anyio

    from cercle.enrolment import channel_and_account

    async def ask() -> tuple[Channel, str | None]:
        try:
            return await channel_and_account(app, number, via.value if via else None)
        finally:
            # The client's connections belong to this short event loop.
            if app.providers.signal is not None:
                await app.providers.signal.client.aclose()

    return anyio.run(ask)


@member_cli.command("list")
def member_list(
    group: Annotated[str, typer.Option("--group", "-g")],
    show_numbers: Annotated[
        bool, typer.Option("--show-numbers", help="Show full numbers (audited)")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List a group's members: pseudonym, role, transport, state, last activity."""
    with wired() as app:
        roster = app.relay.roster(group)
        rows = [member_row(app, m, show_numbers) for m in roster]
        if show_numbers:
            from relay.service.groups import record_numbers_shown

            record_numbers_shown(app.relay, group, len(rows))
    emit(rows, as_json, f"Members of {group}")


@member_cli.command("remove")
def member_remove(
    pseudonym: str,
    group: Annotated[str, typer.Option("--group", "-g")],
) -> None:
    """Remove a member by pseudonym; their number and data are deleted."""
    with wired() as app:
        app.relay.remove_by_admin(group, pseudonym)
        if app.deliverer is not None:
            import anyio

            anyio.run(app.deliverer.drain)
    out.print(f"{pseudonym} removed.")


class BanWhy(StrEnum):
    """Reason codes an admin can record with a ban (a code, never a story)."""

    abuse = "abuse"
    intruder = "intruder"
    safety = "safety"
    other = "other"


@member_cli.command("ban")
def member_ban(
    number: Annotated[str, typer.Argument(help="The number to keep out (any common format)")],
    reason: Annotated[BanWhy, typer.Option(help="A reason code for the audit")] = BanWhy.other,
) -> None:
    """Ban a number from every group: it cannot be enrolled, and any membership it has now is
    removed. Only a keyed hash is used to recognize it (see docs/keys.md)."""
    with wired() as app:
        removed = app.relay.ban_number(number, reason.value)
        if app.deliverer is not None and removed:
            import anyio

            anyio.run(app.deliverer.drain)
    out.print(f"Number banned from every group; {removed} current memberships removed.")


@member_cli.command("unban")
def member_unban(
    number: Annotated[str, typer.Argument(help="The banned number")],
) -> None:
    """Lift a ban: the number can be enrolled again."""
    with wired() as app:
        lifted = app.relay.unban_number(number)
    if not lifted:
        raise fail("That number is not banned.")
    out.print("Ban lifted: the number can be enrolled again.")
