"""`cercle run` as an operator starts it: a real process between the two fake providers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from relay.storage.crypto import generate_key
from tests.fakes.signal_server import FakeSignalServer, run_fake_signal_server
from tests.fakes.twilio_server import FakeTwilio

pytestmark = pytest.mark.slow
PUBLIC = "https://relay.example.org"
ORG = "+15145550120"
ALICE, ALICE_UUID, BOB = "+15145550121", "7d1f6a52-0000-4000-8000-000000000021", "+15145550122"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def fakes() -> Iterator[tuple[FakeSignalServer, FakeTwilio]]:
    with run_fake_signal_server(ORG) as sig, FakeTwilio() as tw:
        yield sig, tw


def test_cercle_run_relays_between_signal_and_sms_and_stops_cleanly(
    tmp_path: Path, fakes: tuple[FakeSignalServer, FakeTwilio]
) -> None:
    sig, tw = fakes
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SIGNAL_", "TWILIO_"))},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cercle.db'}",
        "CERCLE_DATA_KEY": generate_key(),
        "SIGNAL_SERVICE": sig.service,
        "SIGNAL_NUMBER": ORG,
        "TWILIO_ACCOUNT_SID": tw.account_sid,
        "TWILIO_AUTH_TOKEN": tw.auth_token,
        "TWILIO_NUMBER": ORG,
        "TWILIO_API_BASE": tw.base_url,
        "PUBLIC_BASE_URL": PUBLIC,
        "PORT": str(port),
        "CERCLE_SIGNAL_RATE": "50",
        "CERCLE_SMS_RATE": "50",
        "CERCLE_SMS_BURST": "10",
    }

    def cercle(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cercle.cli", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    cercle("db", "upgrade")
    cercle("group", "create", "mardi", "--lang", "en", "--timer", "1d")
    cercle("member", "add", ALICE, "--group", "mardi", "--lang", "en", "--via", "signal")
    cercle("member", "add", BOB, "--group", "mardi", "--lang", "en", "--via", "sms")
    roster = json.loads(cercle("member", "list", "--group", "mardi", "--json"))
    names = {row["transport"]: row["pseudonym"] for row in roster}

    proc = subprocess.Popen(
        [sys.executable, "-m", "cercle.cli", "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(
            lambda: (
                httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
                if _listening(port)
                else False
            ),
            "health",
        )
        wait_for(lambda: len(tw.sent_to(BOB)) >= 5 and len(sig.sent_to(ALICE)) >= 4, "welcome")
        assert sig.timers == {ALICE: 86400}

        sig.member(ALICE, ALICE_UUID).says("AGREE")
        inbound = tw.inbound(f"{PUBLIC}/twilio/sms", BOB, "AGREE")
        answer = httpx.post(
            f"http://127.0.0.1:{port}{inbound.path_and_query}",
            content=inbound.body,
            headers=inbound.headers(),
        )
        assert answer.status_code == 200
        wait_for(lambda: any("now in the group" in m.body for m in tw.sent_to(BOB)), "bob in")

        sig.member(ALICE, ALICE_UUID).says("hello from signal")
        wait_for(
            lambda: any(m.body == f"{names['signal']}: hello from signal" for m in tw.sent_to(BOB)),
            "relayed to sms",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    for secret in (ALICE, BOB, ALICE_UUID, "hello from signal"):
        assert secret not in out and secret.lstrip("+") not in out


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
