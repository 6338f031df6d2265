"""``cercle doctor``: every check, and how to fix what fails."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from cercle.bootstrap import bootstrap
from cercle.cli.common import JsonOpt, out
from cercle.settings import Settings, SettingsError


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
