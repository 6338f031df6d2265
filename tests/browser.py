"""Real-browser tests of the staff console: Playwright driving Debian's chromium, with a
virtual passkey authenticator (DevTools protocol) and axe-core for accessibility.

A missing browser or Playwright skips with the reason on a developer's machine and fails
under CI (``CI=true``), like the PostgreSQL tests. The console runs in a real uvicorn server
on a free port of ``localhost``, which browsers treat as a secure context (passkeys work).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from cercle.bootstrap import App
from cercle.web import create_app
from tests.console_support import console_env, deployment

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Set to write the screenshots that docs/console.md shows (normal runs leave docs alone).
SCREENSHOTS_ENV = "CERCLE_CONSOLE_SCREENSHOTS"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "console"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


@dataclass
class Live:
    """A console served over HTTP on localhost, and the app behind it."""

    app: App
    base: str
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    """A deployment (SQLite, SMS configured, no worker) with its web app in uvicorn; the CLI
    in this test talks to the same database."""
    port = _free_port()
    base = f"http://localhost:{port}"
    env = console_env(tmp_path, base)
    monkeypatch.chdir(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    app = deployment(tmp_path, base, env)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(app), host="127.0.0.1", port=port, log_config=None, access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the web server did not start"
    yield Live(app, base, env)
    server.should_exit = True
    thread.join(10)
    app.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One chromium per test module (skips, or fails under CI, when it cannot run).

    Not per session: Playwright's synchronous API keeps an event loop running in this thread
    while it is open, and other tests' ``anyio.run`` would then refuse to start."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page_factory(chromium: Any) -> Iterator[Any]:
    """Makes pages with a virtual passkey authenticator (user verified, resident keys)."""
    contexts: list[Any] = []

    def make(width: int = 1000, height: int = 760, locale: str = "en-CA") -> Any:
        context = chromium.new_context(viewport={"width": width, "height": height}, locale=locale)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(5000)
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    "automaticPresenceSimulation": True,
                }
            },
        )
        return page

    yield make
    for context in contexts:
        context.close()


def assert_accessible(page: Any) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]
    assert bad == [], f"{page.url}: {bad}"


def screenshot(page: Any, name: str) -> None:
    """Write ``docs/console/NAME.png`` when asked to (``CERCLE_CONSOLE_SCREENSHOTS=1``)."""
    if os.environ.get(SCREENSHOTS_ENV):
        import io

        from PIL import Image

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = Image.open(io.BytesIO(page.screenshot(scale="css", type="png")))
        # A 32-colour palette keeps each picture small in the repository.
        shot.convert("RGB").quantize(32).save(SCREENSHOTS / f"{name}.png", optimize=True)
