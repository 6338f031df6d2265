"""docs/threat-model.md names the tests that show each control: every one must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "threat-model.md"


def test_every_test_the_threat_model_cites_exists() -> None:
    cited = set(re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", DOC.read_text(encoding="utf-8")))

    assert len(cited) > 80
    missing = [
        f"{path}::{name}"
        for path, name in sorted(cited)
        if not re.search(rf"^(async )?def {name}\(", (ROOT / path).read_text(), re.MULTILINE)
    ]
    assert missing == []


def test_every_file_the_threat_model_cites_exists() -> None:
    files = set(re.findall(r"`(tests/[\w/]+\.py)", DOC.read_text(encoding="utf-8")))

    assert [f for f in sorted(files) if not (ROOT / f).is_file()] == []
