"""A real Chromium (Debian's) driven by Playwright, for the pages people use.

Use the ``browser`` fixture (one browser per test module; give each test its own context).
Playwright's sync API holds an event loop in the thread while it runs, so keep browser tests
in modules without ``async`` tests: the browser is closed when its module ends.
Where Chromium or Playwright is missing, tests that need them are skipped with the reason on
a developer's machine, and fail under CI (``CI=true``), exactly like the PostgreSQL tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def missing() -> str | None:
    """Why a browser test cannot run here, or ``None``."""
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        return "Chromium is not installed: apt-get install -y chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install -e '.[dev]'"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium for one test module."""
    reason = missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run under CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield launched
        launched.close()
