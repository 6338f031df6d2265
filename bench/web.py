"""The web door: live browsers one web process holds, and push latency to them.

``PYTHONPATH=. .venv/bin/python -m bench.web [--members 300] [--database-url URL]``

One web process (uvicorn, the real app) serves N web members, each holding its event stream
open as the page's script does (one HTTP client per member in this same process, so the
figures are a floor for the server). Copies are then stored as a delivery worker stores them:
from another thread with no direct wake-up (as a worker in another process: the SQLite poll
or PostgreSQL NOTIFY), and through the transport (a worker in the same process, ``cercle
run``). Latency is from storing a copy to the member's client reading it.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from bots.web.transport import WebTransport
from cercle.bootstrap import App, bootstrap
from cercle.settings import Settings
from cercle.web import create_app
from relay.doors import CopyKind, new_address, new_token
from relay.groups import invites
from relay.messages import Channel, Outgoing
from relay.service import groups as group_admin
from relay.service import links
from relay.service.relay import GroupSettings
from relay.service.web_seats import WebStore
from relay.storage.crypto import generate_key
from relay.storage.engine import upgrade
from tests.web.door import free_port, local_server


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _join(app: App, members: int) -> list[tuple[str, str]]:
    """Web members joined by link, as (token, address)."""
    assert app.providers.web is not None
    store = app.providers.web.store
    seats: list[tuple[str, str]] = []
    for _ in range(members):
        token, address = new_token(), new_address()
        code = group_admin.create_invite(app.relay, "bench")
        links.join(
            app.relay,
            invites.link_token(app.relay.keys, code),
            Channel.WEB,
            address,
            lambda s, m, g, t=token, a=address: store.new_seat(
                s, m.id or 0, t, a, g.timer_seconds, app.clock.now()
            ),
        )
        seats.append((token, address))
    return seats


def _latency(label: str, members: int, took: list[float]) -> tuple[str, str]:
    q = statistics.quantiles(took, n=100)
    return (
        f"push latency, {label}, {members} connected",
        f"p50 {statistics.median(took):.0f} ms, p99 {q[98]:.0f} ms",
    )


@dataclass
class _Measure:
    seats: list[tuple[str, str]]
    arrived: dict[str, float]
    transport: WebTransport
    store: WebStore
    samples: int

    async def one_way(self, label: str, via_transport: bool) -> tuple[str, str]:
        """Latency of single copies to members picked across the room."""
        took: list[float] = []
        members = len(self.seats)
        for i in range(self.samples):
            _, address = self.seats[(i * 7919) % members]
            text = f"bench {label} {i}"
            sent = time.perf_counter()
            if via_transport:
                await self.transport.send(Outgoing(address=address, text=text))
            else:
                await anyio.to_thread.run_sync(
                    lambda a=address, t=text: self.store.put(a, CopyKind.MESSAGE, t)
                )
            with anyio.fail_after(10):
                while text not in self.arrived:
                    await anyio.sleep(0.001)
            took.append((self.arrived[text] - sent) * 1000)
            # Not in step with the poll: a copy comes at any moment of its interval.
            await anyio.sleep(random.uniform(0.01, 0.3))
        return _latency(label, members, took)

    async def fan_out(self) -> tuple[str, str]:
        """A group message: one copy for every member, stored as the worker would."""
        members = len(self.seats)
        sent = time.perf_counter()
        for i, (_, address) in enumerate(self.seats):
            await self.transport.send(Outgoing(address=address, text=f"bench all {i}"))
        stored = time.perf_counter()
        with anyio.fail_after(60):
            while sum(k.startswith("bench all") for k in self.arrived) < members:
                await anyio.sleep(0.005)
        last = max(v for k, v in self.arrived.items() if k.startswith("bench all"))
        return (
            f"fan-out to all {members}: stored one by one, then read by the last browser",
            f"{(stored - sent) * 1000:.0f} ms to store, last read "
            f"{(last - sent) * 1000:.0f} ms after the first store",
        )


async def run(members: int, samples: int, url: str | None) -> list[tuple[str, str]]:
    tmp = tempfile.TemporaryDirectory()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings.from_env(
        environ={
            "DATABASE_URL": url or f"sqlite:///{Path(tmp.name) / 'web.db'}",
            "CERCLE_DATA_KEY": generate_key(),
            "PUBLIC_BASE_URL": base,
            "CERCLE_WEB": "on",
        },
        dotenv_path=Path(tmp.name) / "none.env",
    )
    app = bootstrap(settings)
    upgrade(app.engine)
    app.relay.create_group(GroupSettings("bench", lang="en", timer_seconds=3600))
    assert app.providers.web is not None
    transport, store = app.providers.web, app.providers.web.store
    seats = _join(app, members)
    asgi = create_app(app)
    server = local_server(asgi, port)
    door = asgi.state.web_door
    arrived: dict[str, float] = {}
    rss_before = _rss_mib()
    rows: list[tuple[str, str]] = []

    async def reader(client: httpx.AsyncClient, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with client.stream("GET", "/c/events", headers=headers, timeout=None) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    text = json.loads(line[6:])["text"]
                    if text.startswith("bench "):
                        arrived.setdefault(text, time.perf_counter())

    limits = httpx.Limits(max_connections=members + 20, max_keepalive_connections=members + 20)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        while not server.started:
            await anyio.sleep(0.01)
        async with (
            httpx.AsyncClient(base_url=base, limits=limits) as client,
            anyio.create_task_group() as readers,
        ):
            started = time.perf_counter()
            for token, _ in seats:
                readers.start_soon(reader, client, token)
            with anyio.fail_after(120):
                while door.hub.connected < members:
                    await anyio.sleep(0.05)
            rows.append(
                (
                    "web members connected to one process",
                    f"{door.hub.connected} of {members} in "
                    f"{time.perf_counter() - started:.1f} s; process RSS +"
                    f"{_rss_mib() - rss_before:.0f} MiB (server and clients together)",
                )
            )
            await anyio.sleep(3)  # the welcome lines are read and acknowledged

            measure = _Measure(seats, arrived, transport, store, samples)
            rows.append(await measure.one_way("worker in another process", via_transport=False))
            rows.append(await measure.one_way("worker in this process", via_transport=True))
            rows.append(await measure.fan_out())
            readers.cancel_scope.cancel()
        server.should_exit = True
    app.close()
    tmp.cleanup()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--database-url", help="a fresh PostgreSQL database URL")
    args = parser.parse_args()
    rows = anyio.run(run, args.members, args.samples, args.database_url)
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
