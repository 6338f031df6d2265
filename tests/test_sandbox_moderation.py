"""The sandbox rehearses moderation: a phone quotes a line its :show lists (``>3``)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from cercle.sandbox import Sandbox
from cercle.settings import Settings


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env(environ={}, dotenv_path=tmp_path / "none.env")
    console = Console(file=io.StringIO(), width=200, highlight=False, soft_wrap=True)
    sandbox = Sandbox.start(console, settings)
    sandbox.handle_line(":agree")
    yield sandbox
    sandbox.app.close()


def typed(box: Sandbox, line: str) -> str:
    """What the sandbox prints for one typed line."""
    out = box.console.file
    assert isinstance(out, io.StringIO)
    start = len(out.getvalue())
    box.handle_line(line)
    return out.getvalue()[start:]


def test_a_facilitator_quotes_a_line_of_show_and_takes_the_message_back(box: Sandbox) -> None:
    box.handle_line("alice: my street is rue Fullum")
    shown = typed(box, ":show fac").splitlines()
    line = next(s for s in shown if s.endswith("my street is rue Fullum"))
    number = line.split(".")[0]

    said = typed(box, f"fac: >{number} /effacer hors sujet")

    assert "→ chloe has a message deleted" in said
    assert "A facilitator removed your message from the group.\n   Reason: hors sujet" in said
    assert typed(box, ":show chloe").rstrip().endswith("(deleted)")


def test_a_line_that_is_not_there_cannot_be_quoted(box: Sandbox) -> None:
    assert "fac's phone has no line 99 (see :show fac)." in typed(box, "fac: >99 /delete")


def test_help_shows_how_to_quote_a_line(box: Sandbox) -> None:
    assert "fac: >3 /delete off topic" in typed(box, ":help")
