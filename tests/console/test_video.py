"""Video sessions in the console: an admin turns a group's video on or off on its page;
never without the organization's own server."""

from __future__ import annotations

from sqlmodel import Session, select

from relay.service.relay import GroupSettings
from relay.storage.models import AuditEvent, StaffRole
from tests.console_support import Desk

SERVER = "https://video.maison.example"


def test_an_admin_turns_video_on_in_the_console_and_it_is_audited(desk: Desk) -> None:
    desk.app.relay.create_group(GroupSettings("mardi"))
    desk.app.relay.video_url = SERVER
    desk.sign_in("marie", StaffRole.ADMIN)

    r = desk.post("/staff/groups/1/video", video="on")

    assert r.status_code == 303
    page = desk.web.get("/staff/groups/1").text
    assert 'name="video" checked' in page
    with Session(desk.app.engine) as s:
        audited = s.exec(select(AuditEvent).where(AuditEvent.action == "video")).one()
    assert (audited.actor, audited.detail) == ("staff:marie", "on")
    desk.post("/staff/groups/1/video")  # unticked
    assert 'name="video" checked' not in desk.web.get("/staff/groups/1").text


def test_the_console_says_video_cannot_be_turned_on_without_the_server(desk: Desk) -> None:
    desk.app.relay.create_group(GroupSettings("mardi"))
    desk.sign_in("marie", StaffRole.ADMIN)

    page = desk.web.get("/staff/groups/1").text
    r = desk.post("/staff/groups/1/video", video="on")

    assert "video cannot be turned on" in page
    assert r.status_code == 400 and "CERCLE_VIDEO_URL" in r.text
    assert 'name="video" checked' not in desk.web.get("/staff/groups/1").text


def test_a_facilitator_cannot_turn_video_on(desk: Desk) -> None:
    desk.app.relay.create_group(GroupSettings("mardi"))
    desk.app.relay.video_url = SERVER
    desk.sign_in("lea", StaffRole.FACILITATOR)

    r = desk.post("/staff/groups/1/video", video="on")

    assert r.status_code in (403, 404)
    with desk.app.engine.connect() as c:
        assert c.exec_driver_sql('SELECT video FROM "group"').scalar() in (0, False)
