"""Web members and phone members in one group, through the real web process."""

from __future__ import annotations

import pytest

from tests.web.door import Door

pytestmark = pytest.mark.anyio


async def test_a_web_member_joins_from_a_link_and_talks_with_a_phone_member(door: Door) -> None:
    await door.phone("alice", "+15145550121")
    web = await door.join()
    await door.until(lambda: any("now in the group as" in t for t in web.texts))
    name = door.name_in(next(t for t in web.texts if "now in the group as" in t))
    await door.until(lambda: f"{name} has joined the group." in door.texts_of("alice"))

    assert (await web.says("hello from the library")).status_code == 204
    await door.until(lambda: f"{name}: hello from the library" in door.texts_of("alice"))
    await door.phone_says("alice", "welcome!")
    alice = door.texts_of("alice")[0].split()[0]
    await door.until(lambda: any(t.endswith(": welcome!") for t in web.texts))
    assert "hello from the library" in web.texts  # their own words, on their own page
    assert alice
