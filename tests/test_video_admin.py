"""Turning video on and off, from the command line and the settings: never
without the organization's own server, and never a public service by default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cercle.settings import Settings, SettingsError
from tests.cli_support import invoke

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
