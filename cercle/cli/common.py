"""What every ``cercle`` command shares: output, errors, settings and the wired app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cercle.bootstrap import App, bootstrap
from cercle.settings import Settings, SettingsError
from relay.errors import CercleError

out = Console(highlight=False)


err = Console(stderr=True, highlight=False)


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


class Lang(StrEnum):
    """Languages Cercle speaks."""

    fr = "fr"
    en = "en"


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
