"""Support groups: create, list, show, change, schedule, end, safety choices and close."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from cercle.bootstrap import App
from cercle.cli.common import JsonOpt, Lang, emit, fail, out, wired
from cercle.cli.members import member_row
from relay.errors import CercleError
from relay.language.durations import parse_duration
from relay.messages import Channel
from relay.service.relay import GroupSettings
from relay.service.video import require_server as require_video_server
from relay.service.video import set_video
from relay.storage.models import Group

group_cli = typer.Typer(no_args_is_help=True, help="Support groups.")


@group_cli.command("create")
def group_create(
    name: Annotated[str, typer.Argument(help="What admins call the group, e.g. tuesday-evening")],
    lang: Annotated[Lang, typer.Option(help="Default language")] = Lang.fr,
    timer: Annotated[str, typer.Option(help="Disappearing timer, e.g. 1d, 1w, 8h")] = "1w",
    allow_rename: Annotated[bool, typer.Option(help="Members may choose their own name")] = False,
    allow_sms: Annotated[bool, typer.Option(help="Accept members on SMS")] = True,
    allow_media: Annotated[bool, typer.Option(help="Relay photos (metadata stripped)")] = False,
    show_name: Annotated[
        bool, typer.Option(help="Show the group's name on web members' page")
    ] = False,
    as_json: JsonOpt = False,
    schedule: Annotated[
        list[str] | None, typer.Option(help='Weekly session, e.g. "tue 19:00-20:30" (repeat)')
    ] = None,
    tz: Annotated[str | None, typer.Option(help="Time zone (default CERCLE_TIMEZONE)")] = None,
    ends: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD")] = None,
    premoderate: Annotated[int, typer.Option(help="Hold a newcomer's first N messages")] = 0,
    require_approval: Annotated[
        bool, typer.Option(help="Invite codes wait for a facilitator's /approve")
    ] = False,
    exit_word: Annotated[str | None, typer.Option(help="The group's default exit word")] = None,
    video: Annotated[
        bool, typer.Option(help="Sessions also meet by video (needs CERCLE_VIDEO_URL)")
    ] = False,
) -> None:
    """Create a support group."""
    seconds = parse_duration(timer)
    if seconds is None:
        raise fail("--timer must be a duration such as 1d, 1w or 8h")
    last_day = _date_option(ends, "--ends") if ends else None
    with wired() as app:
        _check_safety_options(schedule or [], tz, exit_word)
        if video:
            require_video_server(app.relay)  # refuse before anything is created
        group = app.relay.create_group(
            GroupSettings(
                name, lang.value, seconds, allow_rename, allow_sms, allow_media, show_name
            )
        )
        _apply_group_options(
            app, name, schedule or [], tz, last_day, premoderate, require_approval, exit_word
        )
        if video:
            group = set_video(app.relay, name, True)
    emit([_group_row(group)], as_json, "Group created")


def _group_row(g: Group, members: int | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": g.name,
        "lang": g.lang,
        "timer_seconds": g.timer_seconds,
        "allow_rename": g.allow_rename,
        "allow_sms": g.allow_sms,
        "allow_media": g.allow_media,
        "show_name": g.show_name,
        "video": g.video,
        "closed": g.closed_at is not None,
    }
    if members is not None:
        row["members"] = members
    return row


@group_cli.command("list")
def group_list(as_json: JsonOpt = False) -> None:
    """List groups."""
    from sqlmodel import Session, select

    from relay.service.groups import member_counts

    with wired() as app, Session(app.engine) as s:
        counts = member_counts(s)
        rows = [_group_row(g, counts.get(g.id or 0, 0)) for g in s.exec(select(Group)).all()]
    emit(rows, as_json, "Groups")


@group_cli.command("show")
def group_show(name: str, as_json: JsonOpt = False) -> None:
    """Show one group, what its SMS cost lately, and its roster (pseudonyms only)."""
    from sqlmodel import Session

    from relay.service.groups import sms_usage

    with wired() as app:
        roster = app.relay.roster(name)
        with Session(app.engine) as s:
            group = app.relay.group(s, name)
            segments, messages = sms_usage(app.relay, s, group)
        rows = [member_row(app, m, False) for m in roster]
    row = _group_row(group, len(roster))
    row["web_members"] = sum(m.channel == Channel.WEB for m in roster)
    # What SMS costs is counted in segments: admins see it per group.
    row["sms_segments_30d"] = segments
    row["sms_messages_30d"] = messages
    emit([row], as_json, f"Group {name}")
    if not as_json:
        emit(rows, False, "Members")


@group_cli.command("set")
def group_set(
    name: str,
    lang: Annotated[Lang | None, typer.Option(help="Default language")] = None,
    timer: Annotated[str | None, typer.Option(help="Disappearing timer, e.g. 1d, 1w")] = None,
    allow_rename: Annotated[
        bool | None, typer.Option("--allow-rename/--no-allow-rename", help="Own names")
    ] = None,
    allow_sms: Annotated[
        bool | None, typer.Option("--allow-sms/--no-allow-sms", help="Members on SMS")
    ] = None,
    allow_media: Annotated[
        bool | None, typer.Option("--allow-media/--no-allow-media", help="Relay photos")
    ] = None,
    show_name: Annotated[
        bool | None,
        typer.Option("--show-name/--no-show-name", help="The group's name on web members' page"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a group's language, timer (set on every conversation) or what members may do."""
    from relay.service.groups import GroupBasics, set_basics

    seconds = parse_duration(timer) if timer is not None else None
    if timer is not None and seconds is None:
        raise fail("--timer must be a duration such as 1d, 1w or 8h")
    with wired() as app:
        group = set_basics(
            app.relay,
            name,
            GroupBasics(
                lang.value if lang else None,
                seconds,
                allow_rename,
                allow_sms,
                allow_media,
                show_name,
            ),
        )
    emit([_group_row(group)], as_json, "Group changed")


@group_cli.command("schedule")
def group_schedule(
    name: str,
    add: Annotated[
        list[str] | None, typer.Option(help='A weekly session, e.g. "tue 19:00-20:30" (repeat)')
    ] = None,
    remove: Annotated[list[str] | None, typer.Option(help="A session to remove")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove every session first")] = False,
    always_open: Annotated[
        bool, typer.Option("--always-open", help="No sessions: open at any time")
    ] = False,
    tz: Annotated[str | None, typer.Option(help="IANA time zone, e.g. America/Toronto")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show or change a group's weekly sessions (outside them, members' messages wait)."""
    from relay.service import groups as group_admin

    with wired() as app:
        if add or remove or clear or always_open or tz:
            group_admin.set_schedule(
                app.relay,
                name,
                add=tuple(add or ()),
                remove=tuple(remove or ()),
                clear=clear,
                always_open=always_open,
                tz=tz,
                default_tz=app.settings.timezone,
            )
        info = group_admin.describe_policy(app.relay, name)
    keys = ("group", "schedule", "tz", "open_now", "next_session")
    emit([{k: info[k] for k in keys}], as_json, f"Open hours of {name}")


@group_cli.command("end")
def group_end(
    name: str,
    on: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (group's time zone)")] = None,
    after_sessions: Annotated[
        int | None, typer.Option(help="End when the N-th session from now ends")
    ] = None,
    never: Annotated[bool, typer.Option("--never", help="Open-ended again")] = False,
) -> None:
    """Make a group time-limited: notices a week and a day before, then it closes."""
    from relay.service import groups as group_admin

    last_day = _date_option(on, "--on") if on else None
    with wired() as app:
        ends = group_admin.set_end(
            app.relay,
            name,
            on=last_day,
            after_sessions=after_sessions,
            never=never,
            default_tz=app.settings.timezone,
        )
        info = group_admin.describe_policy(app.relay, name)
    if ends is None:
        out.print(f"Group {name} is open-ended.")
    else:
        out.print(f"Group {name} ends at {info['ends_at']}.")


@group_cli.command("safety")
def group_safety(
    name: str,
    require_approval: Annotated[
        bool | None,
        typer.Option(
            "--require-approval/--no-require-approval",
            help="Invite codes wait for a facilitator's /approve",
        ),
    ] = None,
    premoderate: Annotated[
        int | None, typer.Option(help="Hold a newcomer's first N messages (0: off)")
    ] = None,
    exit_word: Annotated[str | None, typer.Option(help="The group's default exit word")] = None,
    no_exit_word: Annotated[
        bool, typer.Option("--no-exit-word", help="Remove the group's default exit word")
    ] = False,
    alert_hold: Annotated[
        bool | None,
        typer.Option(
            "--alert-hold/--alert-relay",
            help="Hold messages that raise an alert for a facilitator, or relay them",
        ),
    ] = None,
    alert_content: Annotated[
        bool | None,
        typer.Option(
            "--alert-content/--no-alert-content", help="Quote the message in staff alerts"
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show or change admission and safety choices: approval, pre-moderation, exit word,
    alerts."""
    from relay.service import groups as group_admin

    with wired() as app:
        choices = group_admin.SafetyChoices(
            require_approval=require_approval,
            premoderate=premoderate,
            exit_word="" if no_exit_word else exit_word,
            alert_hold=alert_hold,
            alert_content=alert_content,
        )
        if choices != group_admin.SafetyChoices():
            group_admin.set_safety(app.relay, name, choices, app.settings.timezone)
        info = group_admin.describe_policy(app.relay, name)
    keys = (
        "group",
        "require_approval",
        "premoderate",
        "exit_word",
        "alert_hold",
        "alert_content",
        "live_invites",
        "ends_at",
    )
    emit([{k: info[k] for k in keys}], as_json, f"Safety choices of {name}")


@group_cli.command("video")
def group_video(
    name: str,
    on: Annotated[
        bool | None, typer.Option("--on/--off", help="Sessions also meet by video, or not")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a group's sessions also meet by video on the organization's own Jitsi Meet
    (CERCLE_VIDEO_URL), or stop: --off ends a running session's room at once."""
    if on is None:
        raise fail("Say --on or --off.")
    with wired() as app:
        group = set_video(app.relay, name, on)
    emit([_group_row(group)], as_json, "Group changed")


@group_cli.command("close")
def group_close(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: everyone is removed")] = False,
) -> None:
    """Close a group: members get a closing message with resources and their data is deleted."""
    if not yes:
        raise fail("Closing removes every member and deletes their data. Add --yes to confirm.")
    with wired() as app:
        n = app.relay.close_group(name)
        if app.deliverer is not None:
            import anyio

            anyio.run(app.deliverer.drain)
    out.print(f"Group {name} closed; {n} members removed.")


def _date_option(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise fail(f"{option} must be a date such as 2027-03-31") from exc


def _check_safety_options(specs: list[str], tz: str | None, exit_word: str | None) -> None:
    """Refuse bad options before anything is created."""
    from relay.groups.schedule import parse_schedule, zone
    from relay.safety.quick_exit import exit_word_key

    for spec in specs:
        parse_schedule(spec)
    if tz is not None:
        zone(tz)
    if exit_word and exit_word_key(exit_word) is None:
        raise CercleError("An exit word is a single word of 3 to 32 letters or digits.")


def _apply_group_options(
    app: App,
    name: str,
    specs: list[str],
    tz: str | None,
    last_day: date | None,
    premoderate: int,
    require_approval: bool,
    exit_word: str | None,
) -> None:
    from relay.service import groups as group_admin

    default_tz = app.settings.timezone
    if specs or tz:
        group_admin.set_schedule(app.relay, name, add=tuple(specs), tz=tz, default_tz=default_tz)
    if premoderate or require_approval or exit_word:
        group_admin.set_safety(
            app.relay,
            name,
            group_admin.SafetyChoices(
                require_approval=require_approval or None,
                premoderate=premoderate or None,
                exit_word=exit_word,
            ),
            default_tz,
        )
    if last_day is not None:
        group_admin.set_end(app.relay, name, on=last_day, default_tz=default_tz)
