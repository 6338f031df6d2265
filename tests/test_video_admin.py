"""Turning video on and off, from the command line, the console and the settings: never
without the organization's own server, and never a public service by default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from cercle.settings import Settings, SettingsError
from relay.service.relay import GroupSettings
from relay.storage.models import AuditEvent, StaffRole
from tests.cli_support import invoke
from tests.console_support import Desk, desk  # noqa: F401 - a fixture

SERVER = "https://video.maison.example"


def test_without_cercle_video_url_there_is_no_video_server(tmp_path: Path) -> None:
    settings = Settings.from_env(environ={}, dotenv_path=tmp_path / "none.env")

    assert settings.video_url is None


def test_cercle_video_url_is_read_without_its_trailing_slash(tmp_path: Path) -> None:
    settings = Settings.from_env(
        environ={"CERCLE_VIDEO_URL": SERVER + "/"}, dotenv_path=tmp_path / "none.env"
    )

    assert settings.video_url == SERVER


@pytest.mark.parametrize("bad", ["http://video.maison.example", "video.maison.example"])
def test_a_video_url_that_is_not_https_stops_the_start_naming_the_variable(
    tmp_path: Path, bad: str
) -> None:
    with pytest.raises(SettingsError, match="CERCLE_VIDEO_URL must be the https address"):
        Settings.from_env(environ={"CERCLE_VIDEO_URL": bad}, dotenv_path=tmp_path / "none.env")


def test_creating_a_video_group_without_the_server_is_refused_and_creates_nothing(
    env: dict[str, str],
) -> None:
    code, output = invoke("group", "create", "mardi", "--video")

    said = " ".join(output.split())  # the terminal wraps long lines
    assert code == 1
    assert "set CERCLE_VIDEO_URL" in said and "never uses a public video service" in said
    assert json.loads(invoke("group", "list", "--json")[1]) == []


def test_turning_video_on_without_the_server_is_refused(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")

    code, output = invoke("group", "video", "mardi", "--on")

    assert code == 1 and "CERCLE_VIDEO_URL" in output
    assert json.loads(invoke("group", "list", "--json")[1])[0]["video"] is False


def test_with_the_server_a_group_is_created_meeting_by_video_and_can_stop(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERCLE_VIDEO_URL", SERVER)

    code, output = invoke("group", "create", "mardi", "--video", "--json")
    assert code == 0, output
    assert json.loads(output)[0]["video"] is True

    code, output = invoke("group", "video", "mardi", "--off", "--json")
    assert code == 0 and json.loads(output)[0]["video"] is False
    code, output = invoke("group", "video", "mardi", "--on", "--json")
    assert code == 0 and json.loads(output)[0]["video"] is True


def test_the_video_command_needs_on_or_off(env: dict[str, str]) -> None:
    invoke("group", "create", "mardi")

    code, output = invoke("group", "video", "mardi")

    assert code == 1 and "--on or --off" in output


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
