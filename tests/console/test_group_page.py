"""The group page says what is true of this Cercle: SMS ticked only where SMS is set up, and
the group's choice to show its name on web members' page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session
from starlette.testclient import TestClient

from cercle.web import create_app
from relay.service.relay import GroupSettings
from relay.storage.models import Group, StaffRole
from tests.console_support import Desk, console_env, deployment

PUBLIC = "https://relay.example.org"


def group(desk: Desk) -> Group:
    with Session(desk.app.engine) as s:
        return desk.app.relay.group(s, "mardi")


@pytest.fixture
def signal_only(tmp_path: Path) -> Iterator[Desk]:
    """A console whose deployment has no SMS provider."""
    env = {k: v for k, v in console_env(tmp_path, PUBLIC).items() if not k.startswith("TWILIO")}
    app = deployment(tmp_path, PUBLIC, env)
    with TestClient(
        create_app(app), base_url=PUBLIC, raise_server_exceptions=False, follow_redirects=False
    ) as web:
        yield Desk(app, web)
    app.close()


def test_without_an_sms_provider_the_group_page_says_sms_is_not_set_up(
    signal_only: Desk,
) -> None:
    signal_only.app.relay.create_group(GroupSettings("mardi"))
    signal_only.sign_in("marie", StaffRole.ADMIN)

    page = signal_only.web.get("/staff/groups/1").text
    creating = signal_only.web.get("/staff/groups").text

    for shown in (page, creating):
        assert 'checkbox" name="allow_sms"' not in shown and 'name="allow_sms" value' in shown
        assert "SMS is not set up on this Cercle" in shown


def test_saving_the_group_without_sms_keeps_its_own_sms_choice(signal_only: Desk) -> None:
    signal_only.app.relay.create_group(GroupSettings("mardi", allow_sms=True))
    signal_only.sign_in("marie", StaffRole.ADMIN)

    r = signal_only.post("/staff/groups/1/basics", lang="fr", timer="2d", allow_sms="on")

    assert r.status_code == 303
    assert group(signal_only).allow_sms is True


def test_with_sms_set_up_the_box_is_there_to_tick(desk: Desk) -> None:
    desk.app.relay.create_group(GroupSettings("mardi"))
    desk.sign_in("marie", StaffRole.ADMIN)

    page = desk.web.get("/staff/groups/1").text

    assert 'checkbox" name="allow_sms"' in page and "SMS is not set up" not in page


def test_an_admin_chooses_to_show_the_groups_name_on_the_web_page(desk: Desk) -> None:
    desk.app.relay.create_group(GroupSettings("mardi"))
    desk.sign_in("marie", StaffRole.ADMIN)
    assert (
        'name="show_name" aria-describedby="show-name-help">'
        in desk.web.get("/staff/groups/1").text
    )  # not ticked

    r = desk.post("/staff/groups/1/basics", lang="fr", timer="2d", show_name="on")

    assert r.status_code == 303
    assert group(desk).show_name is True
    assert (
        'name="show_name" aria-describedby="show-name-help" checked>'
        in desk.web.get("/staff/groups/1").text
    )


def test_the_console_has_a_neutral_icon(desk: Desk) -> None:
    desk.sign_in("marie", StaffRole.ADMIN)

    page = desk.web.get("/staff/groups").text
    icon = desk.web.get("/staff/static/icon.svg")

    assert 'rel="icon" href="/staff/static/icon.svg"' in page
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")
    assert b"<svg" in icon.content and b"<text" not in icon.content
