"""The sandbox shows video links going out at a session's start, and taken back at its end."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from cercle.sandbox import SANDBOX_VIDEO_URL, Sandbox
from cercle.settings import Settings


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env(environ={}, dotenv_path=tmp_path / "none.env")
    console = Console(file=io.StringIO(), width=400, highlight=False, soft_wrap=True)
    sandbox = Sandbox.start(console, settings)
    sandbox.handle_line(":agree")
    yield sandbox
    sandbox.app.close()


def typed(box: Sandbox, line: str) -> str:
    out = box.console.file
    assert isinstance(out, io.StringIO)
    start = len(out.getvalue())
    box.handle_line(line)
    return out.getvalue()[start:]


def test_a_session_start_sends_each_phone_its_own_link_and_the_end_takes_them_back(
    box: Sandbox,
) -> None:
    started = typed(box, ":session 1h")

    assert "A video session starts now: 4 links go out." in started
    for handle in ("fac", "alice", "bruno", "chloe"):
        assert f"→ {handle} receives" in started
    links = [w for w in started.split() if w.startswith(SANDBOX_VIDEO_URL)]
    assert len(links) == 4 and len({link.split("#")[0] for link in links}) == 1
    assert "La séance vidéo commence." in started and "The video session has started." in started

    again = typed(box, "alice: /video")
    assert [w for w in again.split() if w.startswith(SANDBOX_VIDEO_URL)] == [
        link for link in links if link in again
    ]

    ended = typed(box, ":session end")
    assert "The video session has ended." in ended
    assert ended.count("has a message deleted") == 5  # four links, and alice's second one

    after = typed(box, "alice: /video")
    assert "There is no video session now." in after


def test_a_sandbox_session_ends_by_itself_when_its_time_is_up(box: Sandbox) -> None:
    typed(box, ":session 30m")

    typed(box, ":wait 31m")

    assert "There is no video session now." in typed(box, "chloe: /video")


def test_help_shows_the_session_command(box: Sandbox) -> None:
    assert ":session 1h" in typed(box, ":help")
