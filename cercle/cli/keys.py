"""The data key: make one, re-key everything under a new one, and check nothing is left."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cercle.cli.common import JsonOpt, emit, err, fail, out, wired
from relay.storage.crypto import generate_key

keys_cli = typer.Typer(no_args_is_help=True, help="The data key that encrypts what is stored.")


@keys_cli.command("generate")
def keys_generate() -> None:
    """Print a new data key for CERCLE_DATA_KEY. Store it in your secret manager."""
    out.print(generate_key())


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
