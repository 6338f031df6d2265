"""The organization's Signal number presents a neutral profile, set when the worker starts."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from cercle.bootstrap import App, bootstrap
from cercle.settings import Settings, SettingsError
from cercle.worker import present_neutral_profile
from relay.storage.crypto import generate_key
from tests.fakes.signal_server import FakeSignalServer
from tests.signal.conftest import BOTH_WAYS

pytestmark = pytest.mark.anyio


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 200, 200)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def make_app(tmp_path: Path, fake: FakeSignalServer) -> Iterator[object]:
    made: list[App] = []

    def make(**env: str) -> App:
        values = {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'cercle.db'}",
            "CERCLE_DATA_KEY": generate_key(),
            **(
                {"SIGNAL_CLI": fake.target}
                if fake.kind == "daemon"
                else {"SIGNAL_SERVICE": fake.service}
            ),
            "SIGNAL_NUMBER": fake.number,
            **env,
        }
        app = bootstrap(Settings.from_env(values, dotenv_path=tmp_path / "none.env"))
        made.append(app)
        return app

    yield make
    for app in made:
        app.close()


@BOTH_WAYS
async def test_the_default_profile_is_a_neutral_name_without_a_picture(
    make_app, fake: FakeSignalServer
) -> None:  # type: ignore[no-untyped-def]
    app = make_app()

    assert await present_neutral_profile(app) is True

    assert fake.profiles == [{"name": "Info"}]


@BOTH_WAYS
async def test_the_name_and_avatar_come_from_settings(
    make_app, fake: FakeSignalServer, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    avatar = tmp_path / "leaf.png"
    avatar.write_bytes(png())
    app = make_app(CERCLE_PROFILE_NAME="Rendez-vous", CERCLE_PROFILE_AVATAR=str(avatar))

    await present_neutral_profile(app)

    [body] = fake.profiles
    assert body["name"] == "Rendez-vous"
    assert base64.b64decode(body["base64_avatar"]) == png()


async def test_a_refused_profile_is_logged_without_the_number_and_the_worker_carries_on(
    make_app, fake: FakeSignalServer, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    app = make_app(SIGNAL_NUMBER="+15145550199")  # not the fake's account: answered 400

    assert await present_neutral_profile(app) is False

    assert fake.profiles == []
    assert "signal profile not set" in caplog.text
    assert "15145550199" not in caplog.text


def test_a_missing_avatar_file_or_an_unknown_time_zone_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="CERCLE_PROFILE_AVATAR"):
        Settings.from_env(
            {"CERCLE_PROFILE_AVATAR": str(tmp_path / "nope.png")}, dotenv_path=tmp_path / "x"
        )
    with pytest.raises(SettingsError, match="CERCLE_TIMEZONE"):
        Settings.from_env({"CERCLE_TIMEZONE": "Mars/Olympus"}, dotenv_path=tmp_path / "x")
