"""What a glance at the chat page reads, with script or without: the timer in words, names
apart from words with a time, and the group's name only if the group chose to show it."""

from __future__ import annotations

import re

import pytest

from relay.service import groups as group_admin
from tests.web.door import ALICE_NUMBER, GROUP, Door
from tests.web.test_no_script import join_without_script

pytestmark = pytest.mark.anyio


async def test_the_page_without_script_shows_the_timer_names_and_times(door: Door) -> None:
    await door.phone("alice", ALICE_NUMBER)
    browser = await join_without_script(door)
    await door.phone_says("alice", "are you there?")

    async def page() -> str:
        return (await browser.get("/c")).text

    text = await door.until_async(lambda t: "are you there?" in t, page)
    alice = door.name_in(door.texts_of("alice"))

    assert "timer passes (1 hour)." in text and "()" not in text
    assert re.search(
        rf'<span class="who">{alice}</span> <time datetime="[^"]+">\d\d:\d\d UTC</time>'
        r'</span> <span class="body">are you there\?</span>',
        text,
    )
    assert GROUP not in text and not re.search("support", text, re.IGNORECASE)
    assert '<h1 id="heading" class="visually-hidden">' in text
    await browser.aclose()


async def test_a_group_that_chooses_it_shows_its_name_as_the_heading(door: Door) -> None:
    group_admin.set_basics(door.app.relay, GROUP, group_admin.GroupBasics(show_name=True))
    browser = await join_without_script(door)

    text = (await browser.get("/c")).text

    assert f'<h1 id="heading">{GROUP}</h1>' in text
    await browser.aclose()


async def test_the_stream_tells_the_script_the_timer_in_words(door: Door) -> None:
    member = await door.join(lang="fr")
    await door.until(lambda: bool(member.about))

    assert member.about == {
        "disappear": "Les messages quittent cette page quand le délai du groupe est passé "
        "(1 heure).",
        "name": None,
    }


async def test_the_page_before_the_script_knows_the_seat_shows_no_empty_brackets(
    door: Door,
) -> None:
    text = (await door.client.get("/c?l=en")).text

    assert "timer passes.<" in text
    assert "()" not in text
