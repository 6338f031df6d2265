"""Invite codes and private web links: make, list, revoke."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from cercle.bootstrap import App
from cercle.cli.common import JsonOpt, Lang, emit, fail, out, wired
from relay.errors import CercleError
from relay.language.durations import parse_duration
from relay.service.links import link_maker
from relay.storage.models import Role

invite_cli = typer.Typer(no_args_is_help=True, help="Invite codes (JOIN <code> to the number).")


class InviteVia(StrEnum):
    """How an invite is handed out."""

    text = "text"
    web = "web"


def _join_link(app: App, code: str) -> str:
    """The private web link for ``code``, or a refusal when the web door is off."""
    config = app.providers.web_config
    if config is None:
        raise CercleError("The web door is off: set CERCLE_WEB=on and PUBLIC_BASE_URL first.")
    return link_maker(app.relay, config.join_link)(code)


@invite_cli.command("create")
def invite_create(
    group: Annotated[str, typer.Option("--group", "-g", help="Group name")],
    expires: Annotated[str, typer.Option(help="How long it is valid, e.g. 48h, 7d")] = "48h",
    role: Annotated[Role, typer.Option(help="member, facilitator or admin")] = Role.MEMBER,
    lang: Annotated[
        Lang | None, typer.Option(help="Language (default: that of JOIN or REJOINDRE)")
    ] = None,
    via: Annotated[
        InviteVia, typer.Option(help="text (JOIN <code>) or web (a private link)")
    ] = InviteVia.text,
    as_json: JsonOpt = False,
) -> None:
    """Make a one-time code; give it privately to a vetted person, who texts JOIN <code>
    (or, with --via web, opens a private link in a browser)."""
    from datetime import timedelta

    from relay.service import groups as group_admin

    seconds = parse_duration(expires)
    if seconds is None:
        raise fail("--expires must be a duration such as 48h or 7d")
    with wired() as app:
        if via == InviteVia.web:
            _join_link(app, "")  # refuses before making a code when the web door is off
        code = group_admin.create_invite(
            app.relay, group, timedelta(seconds=seconds), role, lang.value if lang else None
        )
        link = _join_link(app, code) if via == InviteVia.web else None
    if as_json:
        shown = {"code": code, "group": group, "expires_in_seconds": seconds}
        out.print_json(json.dumps({**shown, **({"link": link} if link else {})}))
        return
    # The code is shown once: only its keyed hash is stored.
    if link is not None:
        out.print(f"Private link: [bold]{link}[/]  (one person, valid {expires})", soft_wrap=True)
        out.print("Give it privately; once opened and agreed to, it stops working.")
        return
    out.print(f"Invite code: [bold]{code}[/]  (one person, valid {expires})")
    out.print(f"They text: JOIN {code}   (in French: REJOINDRE {code})")


@invite_cli.command("list")
def invite_list(
    group: Annotated[str, typer.Option("--group", "-g", help="Group name")],
    as_json: JsonOpt = False,
) -> None:
    """Codes of a group that can still be used (never the codes themselves)."""
    from sqlmodel import Session

    from relay.groups.invites import live_invites

    with wired() as app, Session(app.engine) as s:
        g = app.relay.group(s, group)
        rows = [
            {
                "id": i.id,
                "role": i.role,
                "lang": i.lang or "",
                "created_by": i.created_by,
                "created_at": i.created_at,
                "expires_at": i.expires_at,
            }
            for i in live_invites(s, g.id or 0, app.clock.now())
        ]
    emit(rows, as_json, f"Live invite codes of {group}")


@invite_cli.command("revoke")
def invite_revoke(
    invite_id: Annotated[int, typer.Argument(help="The id shown by `cercle invite list`")],
) -> None:
    """Make a code unusable now (it was lost, or given to the wrong person)."""
    from relay.service.groups import remove_invite

    with wired() as app:
        remove_invite(app.relay, invite_id)
    out.print(f"Invite {invite_id} revoked.")
