"""Running ``cercle`` commands in tests, as an admin would."""

from __future__ import annotations

from typer.testing import CliRunner

from cercle.cli import cli

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    """Run ``cercle ARGS…``; return the exit code and what it printed."""
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.output
