"""The admin's view of the web door: links from the CLI, web members in lists and counts."""

from __future__ import annotations

import json
import re

import pytest
from sqlmodel import Session, select

from bots.web.config import WebConfig
from cercle.bootstrap import bootstrap
from cercle.settings import Settings
from relay.doors import new_address, new_token
from relay.groups import invites
from relay.messages import Channel
from relay.service import links
from relay.service.relay import GroupSettings
from relay.storage.engine import make_engine
from relay.storage.models import Invite, StaffRole
from tests.cli_support import invoke
from tests.console_support import Desk, desk

__all__ = ["desk"]  # the console's fixture


@pytest.fixture
def web_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("CERCLE_WEB", "on")
    invoke("group", "create", "mardi", "--lang", "en")
    return env


def join_by_link(code: str) -> None:
    app = bootstrap(Settings.from_env())
    assert app.providers.web is not None
    store = app.providers.web.store
    address = new_address()
    joined = links.join(
        app.relay,
        code,
        Channel.WEB,
        address,
        lambda s, m, g: store.new_seat(s, m.id or 0, new_token(), address, 60, app.clock.now()),
    )
    assert joined is not None
    app.close()


def test_invite_create_via_web_prints_a_private_link(web_env: dict[str, str]) -> None:
    code, output = invoke("invite", "create", "-g", "mardi", "--via", "web")

    assert code == 0, output
    found = re.search(r"https://relay\.example\.org/j/([A-Za-z0-9_-]{27,})", output)
    assert found is not None and "JOIN" not in output


def test_invite_via_web_is_refused_while_the_door_is_off(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERCLE_WEB", "off")
    invoke("group", "create", "mardi")

    code, output = invoke("invite", "create", "-g", "mardi", "--via", "web")

    assert code == 1 and "CERCLE_WEB=on" in output
    with Session(make_engine(env["DATABASE_URL"])) as s:
        assert s.exec(select(Invite)).all() == []


def test_member_list_and_group_show_count_web_members(web_env: dict[str, str]) -> None:
    _, output = invoke("invite", "create", "-g", "mardi", "--via", "web", "--json")
    join_by_link(json.loads(output)["link"].rsplit("/", 1)[1])

    _, members = invoke("member", "list", "-g", "mardi", "--json", "--show-numbers")
    _, group = invoke("group", "show", "mardi", "--json")

    [member] = json.loads(members)
    assert member["transport"] == "web" and member["number"] == ""
    assert json.loads(group)[0]["web_members"] == 1


def test_the_consoles_new_invite_page_shows_the_private_link(desk: Desk) -> None:
    # What bootstrap does when CERCLE_WEB=on.
    desk.app.relay.join_link = links.link_maker(
        desk.app.relay, WebConfig("https://relay.example.org").join_link
    )
    desk.app.relay.create_group(GroupSettings("mardi"))
    desk.sign_in("sam", StaffRole.FACILITATOR, groups=["mardi"])

    made = desk.post("/staff/groups/1/invites", expires="48h", role="member", lang="en").text

    code = made.split('class="code"', 1)[1].split(">", 1)[1].split("<", 1)[0]
    token = invites.link_token(desk.app.relay.keys, code)
    assert f"https://relay.example.org/j/{token}" in made and f"/j/{code}" not in made
