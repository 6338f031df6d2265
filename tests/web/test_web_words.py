"""What a web member reads from the core, in the words of a web page: what Cercle holds about
them, a code typed into the page, the notice before the group ends, the group's close."""

from __future__ import annotations

import re
from datetime import timedelta

import anyio
import pytest

from relay.service import groups as group_admin
from relay.service import jobs
from tests.web.door import GROUP, Door, WebMember

pytestmark = pytest.mark.anyio

PHONE = re.compile(r"\b(numbers?|num[ée]ros?|phones?|t[ée]l[ée]phones?|sms|textos?)\b", re.I)


async def answer(door: Door, member: WebMember, text: str) -> str:
    """What the page shows after ``text``."""
    before = len(member.texts)
    await member.says(text)
    await door.until(lambda: len(member.texts) >= before + 2)
    return member.texts[-1]


@pytest.mark.parametrize("lang", ["en", "fr"])
async def test_mydata_speaks_of_a_key_and_hides_the_groups_name(door: Door, lang: str) -> None:
    member = await door.join(lang=lang)
    await door.until(lambda: len(member.texts) >= 1)

    said = await answer(door, member, "/mydata" if lang == "en" else "/mesdonnees")

    assert PHONE.findall(said) == [], said
    assert re.search(r"scrambled form of the key|forme brouillée de la clé", said)
    assert GROUP not in said


async def test_mydata_names_the_group_that_chose_to_show_its_name(door: Door) -> None:
    group_admin.set_basics(door.app.relay, GROUP, group_admin.GroupBasics(show_name=True))
    member = await door.join(lang="en")
    await door.until(lambda: len(member.texts) >= 1)

    assert f"• group: {GROUP}" in await answer(door, member, "/mydata")


async def test_a_code_typed_into_the_page_is_not_about_a_number(door: Door) -> None:
    member = await door.join(lang="en")
    await door.until(lambda: len(member.texts) >= 1)

    said = await answer(door, member, f"JOIN {door.typed_invite()}")

    assert said.startswith("This page is already in a group, so that code was not used")


async def test_the_notice_before_the_end_and_the_close_speak_of_the_page(door: Door) -> None:
    member = await door.join(lang="en")
    await door.until(lambda: len(member.texts) >= 1)
    relay = door.app.relay
    group_admin.set_end(relay, GROUP, on=(relay.clock.now() + timedelta(days=3)).date())

    await anyio.to_thread.run_sync(jobs.run_due, relay)
    await door.until(lambda: any("This group ends on" in t for t in member.texts))
    await anyio.to_thread.run_sync(relay.close_group, GROUP)
    await door.until(lambda: member.ended)

    notice = next(t for t in member.texts if "This group ends on" in t)
    assert "this page will show a last message" in notice and PHONE.findall(notice) == []
    farewell = next(t for t in member.texts if "now closed" in t)
    assert "Your key to this page and your data have been deleted." in farewell
