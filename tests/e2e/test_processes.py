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
from tests.fakes.signal_cli_daemon import run_fake_signal_cli_daemon
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


@pytest.fixture(params=["rest", "daemon"])
def fakes(request: pytest.FixtureRequest) -> Iterator[tuple[FakeSignalServer, FakeTwilio]]:
    """Signal through signal-cli-rest-api or signal-cli's own daemon, and Twilio."""
    run = run_fake_signal_cli_daemon if request.param == "daemon" else run_fake_signal_server
    with run(ORG) as sig, FakeTwilio() as tw:
        yield sig, tw  # type: ignore[misc]


def test_cercle_run_relays_between_signal_and_sms_and_stops_cleanly(
    tmp_path: Path, fakes: tuple[FakeSignalServer, FakeTwilio]
) -> None:
    sig, tw = fakes
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SIGNAL_", "TWILIO_"))},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cercle.db'}",
        "CERCLE_DATA_KEY": generate_key(),
        **({"SIGNAL_CLI": sig.target} if sig.kind == "daemon" else {"SIGNAL_SERVICE": sig.service}),
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
            headers={**inbound.headers(), "Host": "relay.example.org"},  # as the proxy passes it
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


def test_web_members_talk_through_separate_web_and_worker_processes(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SIGNAL_", "TWILIO_"))},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cercle.db'}",
        "CERCLE_DATA_KEY": generate_key(),
        "PUBLIC_BASE_URL": base,
        "PORT": str(port),
        "CERCLE_WEB": "on",
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
    cercle("group", "create", "jeudi", "--lang", "en", "--timer", "1d")
    links = [
        json.loads(cercle("invite", "create", "-g", "jeudi", "--via", "web", "--json"))["link"]
        for _ in range(2)
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cercle.cli", part],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for part in ("web", "worker")
    ]
    tokens: list[str] = []
    try:
        wait_for(lambda: _listening(port), "web up")
        with httpx.Client(base_url=base, timeout=10) as client:
            for link in links:
                seat = client.post(link, data={"agree": "1", "mode": "js"}).json()
                tokens.append(seat["token"])
            reader, writer = ({"Authorization": f"Bearer {t}"} for t in tokens)
            with client.stream("GET", "/c/events", headers=reader, timeout=20) as stream:
                assert client.post("/c/send", data={"text": "across processes"}, headers=writer)
                got = ""
                for line in stream.iter_lines():
                    got += line
                    if "across processes" in line:
                        break
            assert ": across processes" in got
    finally:
        outs = []
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            outs.append(proc.communicate(timeout=30)[0])
    assert [p.returncode for p in procs] == [0, 0], outs
    for secret in (*tokens, *(link.rsplit("/", 1)[1] for link in links), "across processes"):
        assert all(secret not in out for out in outs)
