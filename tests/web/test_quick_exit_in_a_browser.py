"""The quick exit in a real Chromium: the page leaves for the exit site (another origin, as in
a real deployment) and the browser's console stays free of errors on the way."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn

from cercle.bootstrap import bootstrap
from cercle.edge import server_config
from cercle.settings import Settings
from cercle.web import create_app
from relay.groups import invites
from relay.service import groups as group_admin
from relay.service.relay import GroupSettings
from relay.storage.crypto import generate_key
from relay.storage.engine import upgrade
from tests.browser import chromium
from tests.web.door import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage

__all__ = ["chromium"]  # the fixture

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(base, exit URL on another origin, a join code), with the web process running."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    exit_url = f"http://localhost:{port}/health"  # another origin that answers
    settings = Settings.from_env(
        environ={
            "DATABASE_URL": f"sqlite:///{tmp_path / 'cercle.db'}",
            "CERCLE_DATA_KEY": generate_key(),
            "PUBLIC_BASE_URL": base,
            "CERCLE_WEB": "on",
            "CERCLE_WEB_EXIT_URL": exit_url,
        },
        dotenv_path=tmp_path / "none.env",
    )
    app = bootstrap(settings)
    upgrade(app.engine)
    app.relay.create_group(GroupSettings("mardi", lang="en", timer_seconds=3600))
    server = uvicorn.Server(
        server_config(create_app(app), host="127.0.0.1", port=port, timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    code = group_admin.create_invite(app.relay, "mardi")
    yield base, exit_url, invites.link_token(app.relay.keys, code)
    server.should_exit = True
    thread.join(10)
    app.close()


def test_the_quick_exit_leaves_without_an_error_in_the_console(
    served: tuple[str, str, str], chromium: Browser
) -> None:
    base, exit_url, code = served
    context = chromium.new_context()
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/j/{code}")
    page.get_by_role("button", name="I have read this and I agree").click()
    page.wait_for_url(re.compile(r"/c\?l=en$"))
    page.wait_for_selector("#log", state="attached")
    page.wait_for_timeout(300)  # the page opens its event stream
    posts: list[int] = []
    page.on(
        "response",
        lambda r: posts.append(r.status) if r.url.endswith("/c/exit") else None,
    )

    page.get_by_role("button", name=re.compile("exit", re.IGNORECASE)).first.click()
    page.wait_for_url(exit_url)
    page.wait_for_timeout(300)  # a late CSP report would land by now

    assert errors == []
    assert posts == [204]
    context.close()
