"""A web member's page in a real Chromium: words true for the web, a page that passes a
glance, and a page that goes quiet once the seat is gone.

The deployment of :mod:`tests.web.door` (a real uvicorn, the delivery engine, loopback phones)
runs in a portal thread while Playwright drives the page from the test.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from relay.messages import InboundKind
from relay.service import groups as group_admin
from tests.browser import assert_accessible, chromium
from tests.web.door import ALICE_NUMBER, GROUP, Door, run_door

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["chromium"]  # the fixture

# Words that speak of a phone: none may reach a member who joined from a web page.
PHONE_WORDS = re.compile(
    r"\b(numbers?|num[ée]ros?|phones?|t[ée]l[ée]phones?|sms|textos?|t[ée]l[ée]phoner)\b",
    re.IGNORECASE,
)
FAREWELL = {"en": "Your key to this page", "fr": "Votre clé pour cette page"}
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "web"
AGREE = {"en": "I have read this and I agree", "fr": "J'ai lu ces textes et j'accepte"}
# Commands whose answers a member reads on the page (the crisis lines are left out: they are
# phone numbers to call, true for everyone).
ASKED = {
    "en": ("/help", "/mydata", "/whoami", "/rules", "/report", "/leave"),
    "fr": ("/aide", "/mesdonnees", "/moi", "/regles", "/signaler", "/quitter"),
}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Door, BlockingPortal]]:
    with start_blocking_portal() as portal:
        serving = portal.wrap_async_context_manager(asynccontextmanager(run_door)(tmp_path))
        with serving as door:
            yield door, portal


def phone_words(text: str) -> list[str]:
    return PHONE_WORDS.findall(text)


def says(page: Page, text: str, *, answered: bool = True) -> None:
    """Type and send, then wait for the member's own line (and an answer to a command)."""
    before = page.locator("#log p").count()
    page.fill("#text", text)
    page.keyboard.press("Enter")
    until(lambda: page.locator("#log p").count() > before + int(answered))


def until(condition: Callable[[], bool], timeout: float = 5) -> None:
    """Poll from here (the page's policy forbids the evaluated strings Playwright polls with)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth"))


def shot(page: Page, name: str) -> None:
    """Write docs/web/NAME.png when asked to (``CERCLE_WEB_SCREENSHOTS=1``)."""
    if os.environ.get("CERCLE_WEB_SCREENSHOTS"):
        import io

        from PIL import Image

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        picture = Image.open(io.BytesIO(page.screenshot(scale="css", type="png")))
        picture.convert("RGB").quantize(32).save(SCREENSHOTS / f"{name}.png", optimize=True)


def joined(door: Door, chromium: Browser, lang: str) -> Page:
    """A page at 360 px that has agreed to ``door``'s invite in ``lang``."""
    context = chromium.new_context(viewport={"width": 360, "height": 740}, locale=lang)
    page = context.new_page()
    page.set_default_timeout(5000)
    page.goto(f"{door.base}/j/{door.invite(lang)}")
    page.get_by_role("button", name=AGREE[lang]).click()
    page.wait_for_url(re.compile(r"/c\?l=" + lang))
    page.locator("#log p").first.wait_for()
    return page


def web_pseudonym(door: Door) -> str:
    web = [m for m in door.app.relay.roster(GROUP) if m.channel == "web"]
    return web[0].pseudonym or ""


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_web_member_reads_only_words_true_for_a_web_page(
    served: tuple[Door, BlockingPortal], chromium: Browser, lang: str
) -> None:
    door, _ = served
    read: list[str] = []

    # The join page: the welcome, what is kept, the web notice.
    context = chromium.new_context(locale=lang)
    preview = context.new_page()
    preview.goto(f"{door.base}/j/{door.invite(lang)}")
    read.append(preview.inner_text("body"))
    context.close()

    page = joined(door, chromium, lang)
    for command in ASKED[lang]:
        says(page, command)
    read.append(page.inner_text("body"))

    # Removed: the farewell names the key, not a number; then the page calls nothing more.
    calls: list[str] = []
    refused: list[str] = []
    page.on("request", lambda r: calls.append(r.url))
    page.on("response", lambda r: refused.append(r.url) if r.status >= 400 else None)
    door.app.relay.remove_by_admin(GROUP, web_pseudonym(door))
    until(lambda: page.inner_text("#status") != "")
    read.append(page.inner_text("body"))
    assert FAREWELL[lang] in page.inner_text("#log")  # shown before the page ends
    after_end = len(calls)
    time.sleep(1.5)
    assert calls[after_end:] == []
    assert refused == []  # nothing asked of a seat that is gone

    spoken = "\n".join(read)
    assert phone_words(spoken) == [], spoken
    assert re.search(r"\b(key|clé)\b", spoken)
    page.context.close()


@pytest.mark.slow
def test_the_chat_page_passes_a_glance(
    served: tuple[Door, BlockingPortal], chromium: Browser
) -> None:
    door, portal = served
    portal.call(door.phone, "alice", ALICE_NUMBER)
    page = joined(door, chromium, "en")

    # The timer is in words, filled in by the page's script; nothing names the group.
    until(lambda: "(1 hour)" in page.inner_text("#timer"))
    shown = page.inner_text("body")
    assert GROUP not in shown
    assert not re.search(r"support|soutien", shown, re.IGNORECASE)

    # A phone member writes: announced in the live region, the name apart, with a time.
    ref = portal.call(door.phone_says, "alice", "hello from the bus")
    live = page.locator("#log[aria-live=polite]")
    said = live.locator("p", has_text="hello from the bus")
    said.wait_for()
    assert said.locator(".who").inner_text() == door.name_in(door.texts_of("alice"))
    assert said.locator(".body").inner_text() == "hello from the bus"
    assert re.fullmatch(r"\d{1,2}:\d{2}( ?[AP]M)?", said.locator("time").inner_text())
    who_style = said.locator(".who").evaluate(
        "e => [getComputedStyle(e).fontWeight, getComputedStyle(e).color,"
        " getComputedStyle(e.closest('p').querySelector('.body')).color]"
    )
    assert int(who_style[0]) >= 600 and who_style[1] != who_style[2]

    # An edit keeps the name apart from the new words.
    edit = functools.partial(door.phone_says, kind=InboundKind.EDIT, edit_ref=ref)
    portal.call(edit, "alice", "hello from the bus!")
    until(lambda: said.locator(".body").inner_text() == "hello from the bus!")
    assert said.locator(".who").count() == 1

    says(page, "I'm here. Reading for now.", answered=False)
    portal.call(door.phone_says, "alice", "Take your time, we're glad you came.")
    live.locator("p", has_text="glad you came").wait_for()
    shot(page, "chat-phone")
    page.set_viewport_size({"width": 1100, "height": 760})
    shot(page, "chat-desktop")
    page.set_viewport_size({"width": 360, "height": 740})

    # 360 px: nothing scrolls sideways, even a long unbroken word; nothing serious for axe.
    portal.call(door.phone_says, "alice", "x" * 300)
    live.locator("p", has_text="xxxx").wait_for()
    assert no_horizontal_scroll(page)
    assert_accessible(page)
    page.set_viewport_size({"width": 1100, "height": 760})
    assert_accessible(page)

    # A group that chooses to show its name gets it as the page's heading.
    group_admin.set_basics(door.app.relay, GROUP, group_admin.GroupBasics(show_name=True))
    page.reload()
    until(lambda: page.locator("#heading").inner_text() == GROUP)
    assert page.locator("#heading").is_visible()
    page.context.close()
