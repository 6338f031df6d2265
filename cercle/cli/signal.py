"""The Signal number: register, verify, profile, status, unlink devices, lift rate limits."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

from cercle.bootstrap import App
from cercle.cli.common import JsonOpt, fail, out, wired
from relay.errors import CercleError

signal_cli = typer.Typer(no_args_is_help=True, help="The Signal number.")


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
