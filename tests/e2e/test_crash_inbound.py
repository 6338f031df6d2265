"""A web process killed right after answering Twilio loses no message: SIGKILL, restart, and
the message (a photo, which only the worker handles) arrives once, even when Twilio retries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, func, select

from cercle.bootstrap import bootstrap
from cercle.settings import Settings
from relay.messages import Channel
from relay.service.relay import GroupSettings
from relay.storage.crypto import generate_key
from relay.storage.engine import make_engine, upgrade
from relay.storage.models import PendingInbound, Role
from tests.e2e.test_processes import _listening, free_port, wait_for
from tests.fakes.signal_server import jpeg_with_gps
from tests.fakes.twilio_server import FakeTwilio

pytestmark = pytest.mark.slow
PUBLIC = "https://relay.example.org"
ORG, BOB, CAROL = "+15145550120", "+15145550141", "+15145550142"


def test_killing_the_web_process_after_the_200_loses_no_message(tmp_path: Path) -> None:
    with FakeTwilio() as tw:
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SIGNAL_", "TWILIO_"))},
            "DATABASE_URL": f"sqlite:///{tmp_path / 'cercle.db'}",
            "CERCLE_DATA_KEY": generate_key(),
            "TWILIO_ACCOUNT_SID": tw.account_sid,
            "TWILIO_AUTH_TOKEN": tw.auth_token,
            "TWILIO_NUMBER": ORG,
            "TWILIO_API_BASE": tw.base_url,
            "PUBLIC_BASE_URL": PUBLIC,
            "PORT": str(port),
            "CERCLE_SMS_RATE": "50",
            "CERCLE_SMS_BURST": "10",
        }

        def start(*args: str) -> subprocess.Popen[str]:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cercle.cli", *args],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            wait_for(lambda: _listening(port), "the web process")
            return proc

        def post(hook_from: str, body: str, **kw: object) -> int:
            hook = tw.inbound(f"{PUBLIC}/twilio/sms", hook_from, body, **kw)  # type: ignore[arg-type]
            return httpx.post(
                f"http://127.0.0.1:{port}{hook.path_and_query}",
                content=hook.body,
                headers={**hook.headers(), "Host": "relay.example.org"},  # as the proxy passes it
            ).status_code

        # Set up in this process (faster than three CLI processes; the CLI has its own tests).
        app = bootstrap(Settings.from_env(environ=env, dotenv_path=tmp_path / "none.env"))
        upgrade(app.engine)
        app.relay.create_group(GroupSettings("mardi", "en", 86400, allow_media=True))
        for number in (BOB, CAROL):
            app.relay.enroll(number, "mardi", Role.MEMBER, "en", Channel.SMS)
        app.close()

        web = start("web")  # the web process alone: no worker takes the photo meanwhile
        try:
            assert post(BOB, "AGREE") == 200
            assert post(CAROL, "AGREE") == 200
            message_sid, url, media_sid = tw.add_media("image/jpeg", jpeg_with_gps())
            photo = {"media": [(url, "image/jpeg")], "message_sid": message_sid}
            assert post(BOB, "look at this", **photo) == 200
        finally:
            web.send_signal(signal.SIGKILL)
            web.wait(10)
        engine = make_engine(env["DATABASE_URL"])
        with Session(engine) as s:
            assert s.exec(select(func.count()).select_from(PendingInbound)).one() == 1
        assert tw.cdn_saw_credentials(media_sid) is None  # nothing fetched yet

        run = start("run")
        try:
            wait_for(lambda: any("look at this" in m.body for m in tw.sent_to(CAROL)), "photo")
            assert post(BOB, "look at this", **photo) == 200  # Twilio retries the webhook
            wait_for(lambda: tw.media_deleted(media_sid), "media deleted at Twilio")
            wait_for(lambda: _queued(engine) == 0, "inbox emptied", timeout=15)
        finally:
            run.send_signal(signal.SIGTERM)
            run.wait(30)
        engine.dispose()
        assert [m.body for m in tw.sent_to(CAROL)].count(
            next(m.body for m in tw.sent_to(CAROL) if "look at this" in m.body)
        ) == 1
        assert not any("look at this" in m.body for m in tw.sent_to(BOB))


def _queued(engine: object) -> int:
    with Session(engine) as s:  # type: ignore[arg-type]
        return int(s.exec(select(func.count()).select_from(PendingInbound)).one())
