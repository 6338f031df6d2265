"""End to end: a video session's start reaches a Signal member through signal-cli's REST API,
an SMS member through Twilio, and a web member in Chromium as a button; its end takes the
Signal and web copies back."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

from relay.groups import invites
from relay.service import groups as group_admin
from relay.service.video import end_now, set_video, start_now
from tests.browser import assert_accessible, chromium
from tests.e2e.test_web_door import BOB, FAC, Mixed, enroll_phones, mixed, pseudonym
from tests.test_video import jitsi_options

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = ["chromium", "mixed"]  # the fixtures

SERVER = "https://video.maison.example"


def links(texts: list[str]) -> list[str]:
    return [w for t in texts for w in t.split() if w.startswith(SERVER)]


def test_each_door_gets_its_own_muted_link_and_the_end_takes_back_what_it_can(
    mixed: Mixed, chromium: Browser
) -> None:
    m = mixed
    enroll_phones(m)
    fac, bob = pseudonym(m.signal_texts(FAC)), pseudonym(m.sms_texts(BOB))
    page = chromium.new_context().new_page()
    code = group_admin.create_invite(m.app.relay, "mardi")
    page.goto(f"{m.base}/j/{invites.link_token(m.app.relay.keys, code)}")
    page.get_by_role("button", name="I have read this and I agree").click()
    page.get_by_text(re.compile("now in the group as")).wait_for()
    carol = pseudonym([page.inner_text("#log")])

    m.app.relay.video_url = SERVER
    set_video(m.app.relay, "mardi", True)
    assert start_now(m.app.relay, "mardi", m.app.clock.now() + timedelta(hours=1)) == 3

    m.wait(lambda: bool(links(m.signal_texts(FAC))) and bool(links(m.sms_texts(BOB))))
    button = page.get_by_role("link", name="Join the video session (camera and microphone off)")
    button.wait_for()
    assert_accessible(page)
    to_fac, to_bob = links(m.signal_texts(FAC)), links(m.sms_texts(BOB))
    to_carol = button.get_attribute("href")
    assert len(to_fac) == len(to_bob) == 1 and to_carol is not None
    assert button.get_attribute("rel") == "noopener noreferrer"
    assert button.get_attribute("target") == "_blank"
    for link, name in ((to_fac[0], fac), (to_bob[0], bob), (to_carol, carol)):
        assert jitsi_options(link)["userInfo.displayName"] == name
        assert jitsi_options(link)["config.startWithAudioMuted"] is True
        assert link.split("#")[0] == to_fac[0].split("#")[0]

    sent = next(s.timestamp for s in m.signal.sent_to(FAC) if SERVER in s.message)
    assert end_now(m.app.relay, "mardi")
    button.wait_for(state="detached")  # gone from the page
    m.wait(lambda: any(int(d["timestamp"]) == sent for d in m.signal.remote_deletes))
    page.context.close()
