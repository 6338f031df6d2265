"""``cercle``: run the processes, manage groups and members, keys and the database.

Output is for people (tables) and, with ``--json``, for scripts. Numbers are shown masked
unless an admin explicitly asks, and that request is audited.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cercle.bootstrap import App, bootstrap
from cercle.logs import configure_logging
from cercle.settings import Settings, SettingsError
from relay.errors import CercleError
from relay.language.durations import parse_duration
from relay.messages import Channel
from relay.phone import mask
from relay.service.relay import GroupSettings
from relay.storage.crypto import generate_key
from relay.storage.engine import upgrade
from relay.storage.models import Group, Member, Role

cli = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Cercle: a private, pseudonymous relay for support groups.",
)
db_cli = typer.Typer(no_args_is_help=True, help="The database.")
group_cli = typer.Typer(no_args_is_help=True, help="Support groups.")
member_cli = typer.Typer(no_args_is_help=True, help="Members (admins enroll vetted numbers).")
keys_cli = typer.Typer(no_args_is_help=True, help="The data key that encrypts what is stored.")
cli.add_typer(db_cli, name="db")
cli.add_typer(group_cli, name="group")
cli.add_typer(member_cli, name="member")
cli.add_typer(keys_cli, name="keys")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


class Lang(StrEnum):
    """Languages Cercle speaks."""

    fr = "fr"
    en = "en"


class InviteVia(StrEnum):
    """How an invite is handed out."""

    text = "text"
    web = "web"


def _join_link(app: App, code: str) -> str:
    """The private web link for ``code``, or a refusal when the web door is off."""
    config = app.providers.web_config
    if config is None:
        raise CercleError("The web door is off: set CERCLE_WEB=on and PUBLIC_BASE_URL first.")
    return config.join_link(code)


class Via(StrEnum):
    """Transports a member can be enrolled on."""

    signal = "signal"
    sms = "sms"


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a clear error and return the exit to raise."""
    err.print(f"[red]Error:[/] {message}")
    return typer.Exit(code)


def settings() -> Settings:
    """Settings from the environment, or a clear error naming the variable."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise fail(str(exc)) from exc


@contextmanager
def wired() -> Iterator[App]:
    """An app for one admin command, with errors turned into clear messages."""
    try:
        app = bootstrap(settings())
    except SettingsError as exc:
        raise fail(str(exc)) from exc
    try:
        yield app
    except CercleError as exc:
        raise fail(exc.safe_message) from exc
    finally:
        app.close()


def emit(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    """Print rows as a table, or as JSON."""
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    table = Table(title=title)
    for col in rows[0] if rows else ["(none)"]:
        table.add_column(str(col))
    for row in rows:
        table.add_row(*(str(v) if v is not None else "" for v in row.values()))
    out.print(table)


# --- processes -----------------------------------------------------------------------------


@cli.command()
def run() -> None:
    """Run web and worker in one process (a single machine)."""
    s = settings()
    if not s.any_transport:
        raise fail(
            "No transport is configured. Set SIGNAL_NUMBER and SIGNAL_CLI (or SIGNAL_SERVICE) "
            "for Signal, "
            "and/or TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_NUMBER and PUBLIC_BASE_URL "
            "for SMS (see config/example.env).\nTo try Cercle without a provider, run "
            "`cercle sandbox`.",
            2,
        )
    _serve(s, web=True, worker=True)


@cli.command()
def web() -> None:
    """Serve HTTP: Twilio webhooks, status callbacks and health."""
    _serve(settings(), web=True, worker=False)


@cli.command()
def worker() -> None:
    """Run delivery, the Signal receive loop and the scheduled jobs."""
    _serve(settings(), web=False, worker=True)


def _serve(s: Settings, *, web: bool, worker: bool) -> None:
    """Start the long-lived parts; a refusal at start (a wrong data key) is a clear error."""
    from cercle.serve import serve

    try:
        serve(s, web=web, worker=worker)
    except SettingsError as exc:
        raise fail(str(exc), 2) from exc


@cli.command()
def sandbox() -> None:
    """Rehearse a group in this terminal, with simulated phones (no provider needed)."""
    from cercle.sandbox import run_sandbox

    s = settings()
    lines = None if sys.stdin.isatty() else sys.stdin
    run_sandbox(s, lines)


@cli.command()
def check() -> None:
    """Say what is configured; exit 0 when `cercle run` can start, 2 when CERCLE_DATA_KEY does
    not open the stored data, 3 when no transport is on."""
    from cercle.health import check_data_key

    s = settings()
    out.print(f"database: {s.database_url.split('://')[0]}")
    out.print(f"data key: {'set' if s.data_key else 'NOT SET (cercle keys generate)'}")
    out.print(f"signal: {'on' if s.signal_enabled else 'off'}")
    out.print(f"sms: {'on' if s.sms_enabled else 'off'}")
    if s.data_key is not None:
        with wired() as app:
            finding = check_data_key(app.engine, app.keys)
        if finding.status == "fail":
            summary, fix = finding.text("en")
            raise fail(f"{summary} {fix}", 2)
    if not s.any_transport:
        raise typer.Exit(3)


@cli.command()
def doctor(
    as_json: JsonOpt = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Ask only the database: no Signal, Twilio or URL")
    ] = False,
) -> None:
    """Check configuration, data key, database, Signal, Twilio, the public URL, the clock,
    deliveries and the worker's periodic jobs, and say how to fix each problem.
    Exit 0: all well; 1: warnings; 2: failures."""
    from cercle.health import exit_code

    findings = _diagnose(network=not offline)
    if as_json:
        out.print_json(json.dumps([f.as_dict() for f in findings]))
    else:
        _print_findings(findings)
    raise typer.Exit(exit_code(findings))


def _diagnose(*, network: bool) -> list[Any]:
    import anyio

    from cercle.health import Finding, check_config, config_failure, key_missing, run_checks

    try:
        s = Settings.from_env()
    except SettingsError as exc:
        return [config_failure(str(exc))]
    try:
        app = bootstrap(s)
    except SettingsError as exc:
        return [check_config(s), key_missing(str(exc))]

    async def checks() -> list[Finding]:
        try:
            return await run_checks(app, network=network)
        finally:
            if app.providers.signal is not None:
                await app.providers.signal.client.aclose()

    try:
        return anyio.run(checks)
    finally:
        app.close()


_MARKS = {
    "ok": "[green]ok  [/]",
    "warn": "[yellow]WARN[/]",
    "fail": "[red]FAIL[/]",
    "skip": "[dim]--  [/]",
}


def _print_findings(findings: list[Any]) -> None:
    for f in findings:
        summary, fix = f.text("en")  # operators' tools and scripts read English
        # One line each, unwrapped: people read it, and scripts grep it.
        out.print(f"{_MARKS[f.status]}  {f.check:<11} {summary}", soft_wrap=True)
        if fix and f.status in ("warn", "fail"):
            out.print(f"      {'':<11} [bold]→[/] {fix}", soft_wrap=True)


# --- database and keys ---------------------------------------------------------------------


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (the release process runs this)."""
    with wired() as app:
        upgrade(app.engine)
    out.print("Database is up to date.")


@keys_cli.command("generate")
def keys_generate() -> None:
    """Print a new data key for CERCLE_DATA_KEY. Store it in your secret manager."""
    out.print(generate_key())


# --- groups --------------------------------------------------------------------------------


@group_cli.command("create")
def group_create(
    name: Annotated[str, typer.Argument(help="What admins call the group, e.g. tuesday-evening")],
    lang: Annotated[Lang, typer.Option(help="Default language")] = Lang.fr,
    timer: Annotated[str, typer.Option(help="Disappearing timer, e.g. 1d, 1w, 8h")] = "1w",
    allow_rename: Annotated[bool, typer.Option(help="Members may choose their own name")] = False,
    allow_sms: Annotated[bool, typer.Option(help="Accept members on SMS")] = True,
    allow_media: Annotated[bool, typer.Option(help="Relay photos (metadata stripped)")] = False,
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
) -> None:
    """Create a support group."""
    seconds = parse_duration(timer)
    if seconds is None:
        raise fail("--timer must be a duration such as 1d, 1w or 8h")
    last_day = _date_option(ends, "--ends") if ends else None
    with wired() as app:
        _check_safety_options(schedule or [], tz, exit_word)
        group = app.relay.create_group(
            GroupSettings(name, lang.value, seconds, allow_rename, allow_sms, allow_media)
        )
        _apply_group_options(
            app, name, schedule or [], tz, last_day, premoderate, require_approval, exit_word
        )
    emit([_group_row(group)], as_json, "Group created")


def _group_row(g: Group, members: int | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": g.name,
        "lang": g.lang,
        "timer_seconds": g.timer_seconds,
        "allow_rename": g.allow_rename,
        "allow_sms": g.allow_sms,
        "allow_media": g.allow_media,
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
        rows = [_member_row(app, m, False) for m in roster]
    row = _group_row(group, len(roster))
    row["web_members"] = sum(m.channel == Channel.WEB for m in roster)
    # What SMS costs is counted in segments: admins see it per group.
    row["sms_segments_30d"] = segments
    row["sms_messages_30d"] = messages
    emit([row], as_json, f"Group {name}")
    if not as_json:
        emit(rows, False, "Members")


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


# --- members -------------------------------------------------------------------------------


def _member_row(app: App, m: Member, show_numbers: bool) -> dict[str, Any]:
    address = app.relay.address_of(m) or ""
    shown = address if show_numbers else (mask(address) if address.startswith("+") else "••••")
    if m.channel == Channel.WEB:
        shown = ""  # a web member has no number; their seat's address means nothing to anyone
    return {
        "pseudonym": m.pseudonym,
        "role": m.role,
        "transport": m.channel,
        "lang": m.lang,
        "state": m.state,
        "muted": m.muted_until is not None,
        "last_active": m.last_active_on,
        "number": shown,
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
        row = _member_row(app, member, False)
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
        rows = [_member_row(app, m, show_numbers) for m in roster]
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


signal_cli = typer.Typer(no_args_is_help=True, help="The Signal number.")
cli.add_typer(signal_cli, name="signal")


@signal_cli.command("challenge")
def signal_challenge(
    token: Annotated[str, typer.Argument(help="The challenge token from the facilitators' alert")],
    captcha: Annotated[str, typer.Argument(help="The signalcaptcha://… value you solved")],
) -> None:
    """Lift a Signal rate limit by submitting a solved captcha (see docs/signal.md)."""
    _with_signal(lambda app, client: client.submit_rate_limit_challenge(token, captcha))
    out.print("Challenge accepted: Signal should let Cercle send again.")


@signal_cli.command("register")
def signal_register(
    captcha: Annotated[
        str, typer.Option(help="The signalcaptcha://… link of a solved registration captcha")
    ],
    voice: Annotated[bool, typer.Option("--voice", help="Get the code by a call, not SMS")] = False,
) -> None:
    """Register SIGNAL_NUMBER with signal-cli-rest-api: Signal sends it a code (docs/signal.md).
    On signal-cli's own daemon, says which signal-cli command to run instead."""
    _with_signal(lambda app, client: client.register(captcha, voice=voice))
    way = "a call" if voice else "SMS"
    out.print(f"Signal is sending a code by {way} to SIGNAL_NUMBER.")
    out.print("Then run: cercle signal verify CODE   (add --pin PIN if the number has one)")


@signal_cli.command("verify")
def signal_verify(
    code: Annotated[str, typer.Argument(help="The six-digit code Signal sent")],
    pin: Annotated[
        str | None, typer.Option(help="The registration lock PIN, if the number has one")
    ] = None,
) -> None:
    """Finish the registration with the code Signal sent."""
    _with_signal(lambda app, client: client.verify(code, pin))
    out.print("The number is registered. Next: cercle signal profile, then cercle signal status.")


@signal_cli.command("profile")
def signal_profile() -> None:
    """Give the number its neutral profile now: CERCLE_PROFILE_NAME (default "Info") and
    CERCLE_PROFILE_AVATAR (the worker sets them at every start too)."""
    from cercle.worker import present_neutral_profile

    if not _with_signal(lambda app, client: present_neutral_profile(app)):
        raise fail("Signal refused the profile: is the number registered? (cercle signal status)")
    out.print("Profile set: the number shows the name in CERCLE_PROFILE_NAME.")


@signal_cli.command("status")
def signal_status(as_json: JsonOpt = False) -> None:
    """The service's mode, registered accounts, linked devices (loud warning for any other than
    signal-cli), the profile name, and whether Signal asks for a captcha."""
    from cercle.health import check_outbox

    async def gather(app: App, client: Any) -> dict[str, Any]:
        about = await client.about()
        accounts = await client.accounts()
        registered = client.number in accounts
        devices = await client.devices() if registered else []
        waiting = check_outbox(app.engine, app.clock.now()).detail["waiting_for_captcha"]
        return {
            "mode": about.mode,
            "version": about.version,
            "registered": registered,
            "accounts": len(accounts),
            "devices": [{"id": d.id, "name": d.name, "primary": d.is_primary} for d in devices],
            "profile_name": app.settings.profile_name,
            "profile_avatar": app.settings.profile_avatar is not None,
            "captcha_pending": waiting,
        }

    status = _with_signal(gather)
    if as_json:
        out.print_json(json.dumps(status))
    else:
        _print_signal_status(status)
    others = [d for d in status["devices"] if not d["primary"]]
    if status["mode"] not in ("json-rpc", "daemon") or not status["registered"] or others:
        raise typer.Exit(1)


@signal_cli.command("unlink")
def signal_unlink(
    device_id: Annotated[
        int, typer.Argument(help="The device number `cercle signal status` shows")
    ],
) -> None:
    """Unlink another device (a phone, a Signal Desktop) from the organization's number."""
    _with_signal(lambda app, client: client.remove_device(device_id))
    out.print(f"Device {device_id} unlinked. Check with: cercle signal status")


def _print_signal_status(status: dict[str, Any]) -> None:
    if status["mode"] == "daemon":
        out.print(f"service: signal-cli {status['version']}, its own daemon (SIGNAL_CLI)")
    else:
        ok = status["mode"] == "json-rpc"
        mode_note = "" if ok else "  [red]← Cercle needs MODE=json-rpc[/]"
        version = status["version"]
        out.print(f"service: signal-cli-rest-api {version}, mode {status['mode']}{mode_note}")
    if status["registered"]:
        out.print("number: registered")
    else:
        out.print("number: [red]NOT registered[/] (cercle signal register --captcha LINK)")
    out.print(f"accounts on the service: {status['accounts']}")
    for device in status["devices"]:
        role = "signal-cli (Cercle)" if device["primary"] else "[red]OTHER DEVICE[/]"
        out.print(f"device {device['id']}: {device['name']}  {role}", soft_wrap=True)
    if any(not d["primary"] for d in status["devices"]):
        out.print(
            "[bold red]DANGER: another device is linked to the organization's number.[/] "
            "Whoever holds it sees every member's number and every message. Unlink it "
            "(docs/signal.md §2).",
            soft_wrap=True,
        )
    avatar = "with avatar" if status["profile_avatar"] else "no avatar"
    out.print(f"profile: {status['profile_name']!r}, {avatar} (set by cercle signal profile)")
    if status["captcha_pending"]:
        out.print(
            f"[yellow]Signal asks for a captcha:[/] {status['captcha_pending']} deliveries wait "
            "(cercle signal challenge TOKEN CAPTCHA; the token is in the worker's log).",
            soft_wrap=True,
        )
    else:
        out.print("rate-limit challenge: none pending")


def _with_signal(work: Callable[[App, Any], Awaitable[Any]]) -> Any:
    """Run ``work(app, client)`` against the configured way to Signal, with clear errors."""
    import anyio

    from bots.signal import SignalServiceError
    from relay.errors import DeliveryError

    with wired() as app:
        if app.providers.signal is None:
            raise CercleError(
                "Signal is not configured (SIGNAL_NUMBER with SIGNAL_CLI or SIGNAL_SERVICE)."
            )
        client = app.providers.signal.client

        async def main() -> Any:
            try:
                return await work(app, client)
            finally:
                await client.aclose()

        try:
            return anyio.run(main)
        except SignalServiceError as exc:
            raise fail(str(exc)) from exc
        except DeliveryError as exc:
            service = "signal-cli" if app.settings.signal_cli else "signal-cli-rest-api"
            raise fail(f"{service} refused ({exc.reason}): read its log.") from exc


# --- retention, deny list, key rotation --------------------------------------------------


@cli.command("purge")
def purge_now(as_json: JsonOpt = False) -> None:
    """Run the retention jobs now and report what they removed (the worker runs them every
    minute). Safe to run at any time, as often as you like."""
    from cercle.worker import RETENTION_EVERY, retention_policy
    from relay.privacy import retention
    from relay.storage import job_runs

    with wired() as app:
        report = retention.purge(app.engine, app.clock.now(), retention_policy(app))
        # Shown by `cercle doctor` and the console like a worker's round (a failure raised).
        job_runs.record(app.engine, "retention", app.clock.now(), ok=True, every=RETENTION_EVERY)
    rows = [
        {"kind": kind.value, "removed": n, "what": retention.DESCRIPTIONS[kind]}
        for kind, n in report.counts.items()
    ]
    emit(rows, as_json, f"Purged ({report.total} rows)")


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


def _left_rows(left: dict[str, int]) -> list[dict[str, Any]]:
    return [{"column": name, "left_under_another_key": n} for name, n in left.items()]


@keys_cli.command("rotate")
def keys_rotate(
    batch: Annotated[int, typer.Option(min=1, help="Rows per transaction")] = 200,
    as_json: JsonOpt = False,
) -> None:
    """Re-encrypt everything and rebuild every lookup hash under CERCLE_DATA_KEY, reading old
    rows with CERCLE_DATA_KEY_PREVIOUS. Resumable: run it again to continue. Exit 1 if
    anything is left under another key (see docs/keys.md)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from relay.privacy import rotation

    with wired() as app:
        if app.keys.previous is None:
            err.print(
                "[yellow]CERCLE_DATA_KEY_PREVIOUS is not set:[/] rows sealed under the old key "
                "cannot be read and will be reported as left over."
            )
        todo = rotation.plan(app.engine, app.keys)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=err, disable=as_json) as bar:
            task = bar.add_task("Re-keying", total=sum(todo.values()))
            report = rotation.rotate(
                app.engine,
                app.keys,
                batch=batch,
                progress=lambda table, n: bar.update(
                    task, advance=n, description=f"Re-keying {table}"
                ),
            )
        left = rotation.remaining(app.engine, app.keys)
    unreadable = sum(report.unreadable.values())
    emit(_left_rows(left), as_json, f"Re-keyed {sum(report.rotated.values())} rows")
    if unreadable:
        err.print(
            f"[red]{unreadable} rows open under neither key.[/] Is CERCLE_DATA_KEY_PREVIOUS "
            "the key these rows were sealed with?"
        )
    if any(left.values()):
        raise fail("Some values are still under another key: run `cercle keys rotate` again.")
    if not as_json:
        out.print("Nothing is left under the old key. You can now remove CERCLE_DATA_KEY_PREVIOUS.")


@keys_cli.command("verify")
def keys_verify(as_json: JsonOpt = False) -> None:
    """Count what is still under another key than CERCLE_DATA_KEY; exit 1 if anything is."""
    from relay.privacy import rotation

    with wired() as app:
        left = rotation.remaining(app.engine, app.keys)
    emit(_left_rows(left), as_json, "Values under another key")
    if any(left.values()):
        raise typer.Exit(1)


# --- open hours, end dates, safety choices and invites (issue 7) -------------------------------


def _date_option(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise fail(f"{option} must be a date such as 2027-03-31") from exc


def _check_safety_options(specs: list[str], tz: str | None, exit_word: str | None) -> None:
    """Refuse bad options before anything is created."""
    from relay.groups.schedule import parse_schedule, zone
    from relay.safety.guards import exit_word_key

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


invite_cli = typer.Typer(no_args_is_help=True, help="Invite codes (JOIN <code> to the number).")
cli.add_typer(invite_cli, name="invite")


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


# --- group settings and staff accounts for the console (issue 13) ----------------------------


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
                lang.value if lang else None, seconds, allow_rename, allow_sms, allow_media
            ),
        )
    emit([_group_row(group)], as_json, "Group changed")


staff_cli = typer.Typer(no_args_is_help=True, help="Staff accounts of the web console.")
cli.add_typer(staff_cli, name="staff")


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
    lang: Annotated[Lang, typer.Option(help="Language of the console")] = Lang.fr,
) -> None:
    """Create a console account and print its one-time setup link (a passkey is made there)."""
    from cercle.console import accounts
    from relay.storage.models import StaffRole

    with wired() as app:
        link = _setup_link(app, "…")  # fails before anything is created without the URL
        token = accounts.add(
            app.engine, app.keys, app.clock.now(), name, StaffRole(role.value), lang.value
        )
        link = _setup_link(app, token)
    out.print(
        f"Staff account {name} created. Give them this link privately:\n{link}", soft_wrap=True
    )


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
    """Console accounts, their role, and whether they have a passkey."""
    from dataclasses import asdict

    from cercle.console import accounts

    with wired() as app:
        rows = [asdict(r) for r in accounts.listing(app.engine, app.clock.now())]
    emit(rows, as_json, "Staff accounts")


@staff_cli.command("remove")
def staff_remove(name: str) -> None:
    """Delete an account, its passkeys and its sessions."""
    from cercle.console import accounts

    with wired() as app:
        accounts.remove(app.engine, app.clock.now(), name)
    out.print(f"Staff account {name} removed.")


def main() -> None:
    """Console entry point."""
    configure_logging()
    cli()


if __name__ == "__main__":
    main()
