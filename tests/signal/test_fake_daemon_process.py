"""The fake daemon as its own process, as real-process tests run it: JSON-RPC on a UNIX socket
(or TCP), members driven through the test-only control port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bots.signal.daemon import DaemonClient
from bots.signal.transport import SignalTransport
from relay.messages import Outgoing
from tests.signal.conftest import ALICE, ORG, Inbox, receiving

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def daemon_process(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(SIGNAL_CLI value, control base URL) of a fake daemon running in its own process."""
    sock = tmp_path / "signal-cli.sock"
    control = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.signal_cli_daemon",
            "-a",
            ORG,
            "--socket",
            str(sock),
            "--receive-mode",
            "manual",
            "--control",
            f"127.0.0.1:{control}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        base = f"http://127.0.0.1:{control}"
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{base}/state")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "control port never answered"
                time.sleep(0.05)
        yield f"unix:{sock}", base
    finally:
        proc.terminate()
        proc.wait(10)


async def test_members_write_through_the_control_port_and_cercle_receives(
    daemon_process: tuple[str, str], inbox: Inbox
) -> None:
    target, control = daemon_process
    async with httpx.AsyncClient(base_url=control) as ctl:
        await ctl.post("/members", json={"number": ALICE})
        for n in range(3):
            await ctl.post("/says", json={"number": ALICE, "text": f"waiting {n}"})
        assert (await ctl.get("/state")).json()["queued"] == 3
        transport = SignalTransport(DaemonClient(target, ORG))
        async with receiving(transport, inbox):
            items = await inbox.wait_for(3, within=10)
        assert [i.text for i in items] == ["waiting 0", "waiting 1", "waiting 2"]
        await transport.send(Outgoing(address=ALICE, text="Willow: hello"))
        assert (await ctl.get("/sent", params={"to": ALICE})).json() == ["Willow: hello"]
        await transport.client.aclose()
