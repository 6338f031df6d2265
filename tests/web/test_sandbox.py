"""Rehearsing with a browser on the web door: ``:add NAME --web`` in the sandbox."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cercle.sandbox import run_sandbox
from cercle.settings import Settings


def test_a_web_member_in_the_rehearsal_talks_with_the_phones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    script = [
        ":agree",
        ":add dana en --web",
        "dana: hello from a browser",
        "alice: hi dana",
        "fac: /who",
        ":quit",
    ]
    out = io.StringIO()

    run_sandbox(Settings(), script, out)

    shown = out.getvalue()
    assert "→ dana's page shows:" in shown and "now in the group as" in shown
    assert ": hello from a browser" in shown
    assert ": hi dana" in shown.split("→ dana's page shows:")[-1]
    assert ", web, " in shown  # /who shows the channel (fac reads French)
