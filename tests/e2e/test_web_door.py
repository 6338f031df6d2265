"""End to end: Signal, SMS and web members in one group, with a real Chromium on the page.

Cercle's real web process (uvicorn), delivery engine and Signal receive loop run between a
fake Signal server and a fake Twilio; one web member uses Chromium through Playwright (the
page's script on), the other a browser without script (a cookie, refresh, a form).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from cercle.bootstrap import App, bootstrap
from cercle.providers import signal_receiver
from cercle.settings import Settings
from cercle.web import create_app
from relay.groups import invites
from relay.messages import Channel
from relay.service import groups as group_admin
from relay.service.relay import GroupSettings
from relay.storage.engine import upgrade
from relay.storage.models import Role
from tests.browser import assert_accessible, chromium
from tests.e2e.test_mixed_group import providers_env
from tests.fakes.signal_cli_daemon import run_fake_signal_cli_daemon
from tests.fakes.signal_server import FakeSignalServer, run_fake_signal_server
from tests.fakes.twilio_server import FakeTwilio
from tests.web.door import free_port, local_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = ["chromium"]  # the fixture

ORG = "+15145550120"
FAC, FAC_UUID = "+15145550123", "7d1f6a52-0000-4000-8000-000000000023"
BOB = "+15145550122"


@dataclass
class Mixed:
    """The deployment, served on a local port, and the two fake providers."""

    app: App
    base: str
    signal: FakeSignalServer
    twilio: FakeTwilio
    portal: BlockingPortal

    def wait(self, condition: Callable[[], bool], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.02)

    def sms(self, from_: str, body: str) -> None:
        hook = self.twilio.inbound(f"{self.base}/twilio/sms", from_, body)
        r = httpx.post(self.base + hook.path_and_query, content=hook.body, headers=hook.headers())
        assert r.status_code == 200

    def signal_texts(self, number: str) -> list[str]:
        return [m.message for m in self.signal.sent_to(number)]

    def sms_texts(self, number: str) -> list[str]:
        return [m.body for m in self.twilio.sent_to(number)]

    def fac_says(self, text: str) -> None:
        self.signal.member(FAC, FAC_UUID).says(text)


@asynccontextmanager
async def serving(app: App, port: int) -> AsyncIterator[None]:
    """The web process, the delivery engine and the Signal receiver, until the block ends."""
    receiver = signal_receiver(app.providers, app.relay)
    assert receiver is not None and app.deliverer is not None
    server = local_server(create_app(app), port)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        tg.start_soon(app.deliverer.run, stop, 0.02)
        tg.start_soon(receiver.run)
        while not server.started:
            await anyio.sleep(0.01)
        yield
        stop.set()
        receiver.stop()
        server.should_exit = True


@pytest.fixture(params=["rest", "daemon"])
def mixed(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Mixed]:
    """Signal (through signal-cli-rest-api or signal-cli's own daemon), SMS and the web door."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    run = run_fake_signal_cli_daemon if request.param == "daemon" else run_fake_signal_server
    with (
        run(ORG) as signal,
        FakeTwilio() as twilio,
        start_blocking_portal() as portal,
    ):
        settings = Settings.from_env(
            environ={
                "DATABASE_URL": f"sqlite:///{tmp_path / 'cercle.db'}",
                **providers_env(signal, twilio, base),
                "CERCLE_WEB": "on",
                "CERCLE_WEB_EXIT_URL": f"{base}/health",
            },
            dotenv_path=tmp_path / "none.env",
        )
        app = bootstrap(settings)
        upgrade(app.engine)
        app.relay.create_group(GroupSettings("mardi", lang="en", timer_seconds=86400))
        with portal.wrap_async_context_manager(serving(app, port)):
            m = Mixed(app, base, signal, twilio, portal)
            m.wait(lambda: signal.subscribed > 0)
            yield m
        app.close()
        assert signal.violations == []


def enroll_phones(m: Mixed) -> None:
    m.signal.member(FAC, FAC_UUID)
    m.app.relay.enroll(FAC, "mardi", Role.FACILITATOR, "en", Channel.SIGNAL, uuid=FAC_UUID)
    m.app.relay.enroll(BOB, "mardi", Role.MEMBER, "en", Channel.SMS)
    m.wait(lambda: len(m.signal_texts(FAC)) >= 4 and len(m.sms_texts(BOB)) >= 5)
    m.fac_says("AGREE")
    m.sms(BOB, "AGREE")
    m.wait(lambda: any("now in the group" in t for t in m.sms_texts(BOB)))
    m.wait(lambda: any("now in the group" in t for t in m.signal_texts(FAC)))


def pseudonym(texts: list[str]) -> str:
    for t in texts:
        if found := re.search(r"now in the group as (\w+)", t):
            return found.group(1)
    raise AssertionError("no welcome")


def said_apart(name: str, words: str, page: str) -> bool:
    """Whether the no-script page shows ``words`` under ``name``, the two set apart."""
    return (
        f'<span class="who">{name}</span>' in page and f'<span class="body">{words}</span>' in page
    )


def test_signal_sms_and_web_members_talk_under_pseudonyms_only(
    mixed: Mixed, chromium: Browser
) -> None:
    m = mixed
    enroll_phones(m)
    m.fac_says("/invite")
    m.wait(lambda: any("/j/" in t for t in m.signal_texts(FAC)))
    link = re.search(r"(http://\S+/j/[A-Za-z0-9_-]{27,})", m.signal_texts(FAC)[-1])
    assert link is not None

    # Carol opens the link in Chromium and agrees.
    context = chromium.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(link.group(1))
    assert page.title() == "Notes"
    assert_accessible(page)
    page.get_by_role("button", name="I have read this and I agree").click()
    page.wait_for_url(re.compile(r"/c\?l=en$"))
    page.get_by_text(re.compile("now in the group as")).wait_for()
    carol = pseudonym([page.inner_text("#log")])
    assert page.evaluate("sessionStorage.length") >= 1
    assert page.evaluate("localStorage.length") == 0  # not remembered unless asked

    # Dan joins from a browser without script: a cookie, refresh to read, a form to send.
    dan_browser = httpx.Client(base_url=m.base)
    code = group_admin.create_invite(m.app.relay, "mardi")
    link = invites.link_token(m.app.relay.keys, code)
    dan_browser.post(f"/j/{link}", data={"agree": "1", "mode": "form"})
    m.wait(lambda: "now in the group as" in dan_browser.get("/c").text)
    dan = pseudonym([dan_browser.get("/c").text])

    # Carol writes; the Signal, SMS and no-script members read it under her pseudonym.
    page.fill("#text", "hello from the library computer")
    page.keyboard.press("Enter")
    said = f"{carol}: hello from the library computer"
    m.wait(lambda: said in m.signal_texts(FAC) and said in m.sms_texts(BOB))
    # His page sets the name apart from the words.
    m.wait(lambda: said_apart(carol, "hello from the library computer", dan_browser.get("/c").text))

    # SMS and Signal reach the page at once; markup shows as text and never runs.
    m.sms(BOB, "hi from a flip phone")
    bob = pseudonym(m.sms_texts(BOB))
    page.locator("#log p", has_text="hi from a flip phone").locator(
        f".who:text-is('{bob}')"
    ).wait_for()
    m.fac_says('<img src=x onerror=alert("x")><script>alert(1)</script>')
    page.get_by_text("<script>alert(1)</script>", exact=False).wait_for()
    assert dialogs == [] and page.locator("#log img, #log script").count() == 0

    assert_accessible(page)

    # Nobody sees a number, a Signal account or a token: only pseudonyms.
    shown = page.inner_text("#log") + dan_browser.get("/c").text
    for secret in (FAC, FAC_UUID, BOB, ORG):
        assert secret not in shown
    for number in (FAC, BOB):
        texts = m.signal_texts(FAC) + m.sms_texts(BOB)
        assert all(number not in t for t in texts if not t.startswith("Welcome"))

    # A facilitator removes the no-script member: his page ends, his seat is gone.
    m.fac_says(f"/remove {dan}")
    m.wait(lambda: "no longer in the group" in dan_browser.get("/c").text, timeout=5)
    dan_browser.close()

    # The quick exit: a neutral page, nothing stored, no way back.
    page.keyboard.press("Escape")
    page.wait_for_url(f"{m.base}/health")
    assert page.evaluate("sessionStorage.length + localStorage.length") == 0
    page.go_back()
    assert "/c" not in page.url and "/j/" not in page.url
    context.close()
