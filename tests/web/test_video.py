"""The web door at a video session's start: the member's own link, shown as a button that
opens the room muted under their pseudonym; gone from the page when the session ends."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from relay.messages import Channel, Outgoing
from relay.service.video import end_now, set_video, start_now
from tests.test_video import jitsi_options
from tests.web.door import GROUP, Door
from tests.web.test_no_script import join_without_script

pytestmark = pytest.mark.anyio
SERVER = "https://video.maison.example"


def start_session(door: Door) -> int:
    relay = door.app.relay
    relay.video_url = SERVER
    set_video(relay, GROUP, True)
    return start_now(relay, GROUP, relay.clock.now() + timedelta(hours=1))


async def test_a_browser_gets_its_own_link_as_a_button_and_loses_it_at_the_end(
    door: Door,
) -> None:
    iris = await door.join()
    name = await door.welcomed(iris)

    assert await anyio.to_thread.run_sync(start_session, door) == 1
    await door.until(lambda: any(e.get("link") for e in iris.seen))

    event = next(e for e in iris.seen if e.get("link"))
    link = str(event["link"])
    assert link.startswith(SERVER + "/") and link in str(event["text"])
    assert jitsi_options(link) == {
        "userInfo.displayName": name,
        "config.startWithVideoMuted": True,
        "config.startWithAudioMuted": True,
        "config.prejoinConfig.enabled": True,
    }

    await anyio.to_thread.run_sync(end_now, door.app.relay, GROUP)
    await door.until(
        lambda: any(e["kind"] == "delete" and e["target"] == event["ref"] for e in iris.seen)
    )


async def test_without_script_the_page_shows_a_button_to_the_room(door: Door) -> None:
    browser = await join_without_script(door)
    try:
        await anyio.to_thread.run_sync(start_session, door)

        async def page() -> str:
            return (await browser.get("/c")).text

        shown = await door.until_async(lambda p: 'class="video"' in p, page)
        assert 'target="_blank" rel="noopener noreferrer"' in shown
        assert "Join the video session (camera and microphone off)" in shown
        assert f'href="{SERVER}/' in shown
    finally:
        await browser.aclose()


async def test_the_button_is_only_ever_an_https_link(door: Door) -> None:
    web = door.app.transports[Channel.WEB]
    browser = await join_without_script(door)
    try:
        seat = door.app.relay.roster(GROUP)[-1]
        address = door.app.relay.address_of(seat)
        assert address is not None
        await web.send(
            Outgoing(address=address, text="hi", extra={"video_url": "javascript:alert(1)"})
        )
        shown = (await browser.get("/c")).text
        assert "javascript:" not in shown and 'class="video"' not in shown
    finally:
        await browser.aclose()


async def test_a_browser_that_joins_during_a_session_gets_its_link_after_the_welcome(
    door: Door,
) -> None:
    await anyio.to_thread.run_sync(start_session, door)

    iris = await door.join()
    name = await door.welcomed(iris)
    await door.until(lambda: any(e.get("link") for e in iris.seen))

    link = str(next(e for e in iris.seen if e.get("link"))["link"])
    assert jitsi_options(link)["userInfo.displayName"] == name
