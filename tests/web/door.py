"""A deployment with the web door on, served by a real uvicorn on a local port.

Phone members are on the sandbox transport (what their phone shows is in ``loop.inbox``); web
members are real HTTP clients of the door: they join from a link, read the event stream and
post to the send form, exactly as the page's script does.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from bots.sandbox.transport import LoopbackTransport
from bots.web.routes import WebDoor
from cercle.bootstrap import App, bootstrap
from cercle.edge import server_config
from cercle.settings import Settings
from cercle.web import create_app
from relay.delivery.sender import Deliverer, DeliveryPolicy
from relay.groups import invites
from relay.messages import Channel, Inbound, InboundKind, Sender
from relay.service import groups as group_admin
from relay.service.relay import GroupSettings
from relay.storage.crypto import generate_key
from relay.storage.engine import upgrade
from relay.storage.models import Role

GROUP = "mardi"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def local_server(asgi: Starlette, port: int) -> uvicorn.Server:
    """The web app served as ``cercle web`` serves it (its limits included) on 127.0.0.1; open
    streams get a second to end on exit."""
    return uvicorn.Server(
        server_config(asgi, host="127.0.0.1", port=port, timeout_graceful_shutdown=1)
    )


def door_settings(
    tmp_path: Path, port: int, database_url: str | None = None, **extra: str
) -> Settings:
    return Settings.from_env(
        environ={
            "DATABASE_URL": database_url or f"sqlite:///{tmp_path / 'cercle.db'}",
            "CERCLE_DATA_KEY": generate_key(),
            "CERCLE_ORG_NAME": "Maison Exemple",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "CERCLE_WEB": "on",
            "CERCLE_WEB_EXIT_URL": f"http://127.0.0.1:{port}/health",
            **extra,
        },
        dotenv_path=tmp_path / "none.env",
    )


_SEND_KEYS = itertools.count(1)


@dataclass
class WebMember:
    """A browser holding a seat (its token), reading its stream into ``seen``."""

    door: Door
    token: str
    lang: str
    seen: list[dict[str, object]] = field(default_factory=list)
    ended: bool = False
    about: dict[str, object] = field(default_factory=dict)
    _scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    @property
    def texts(self) -> list[str]:
        return [str(e["text"]) for e in self.seen if e["kind"] in ("message", "own")]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def says(self, text: str, nonce: str | None = None) -> httpx.Response:
        # Each send gets its own key, as the page's script does: two quick sends must never
        # share one and be taken for a repeat.
        data = {"text": text, "nonce": nonce or f"n{next(_SEND_KEYS):08d}"}
        return await self.door.client.post("/c/send", data=data, headers=self.headers)

    async def read(self, tg: anyio.abc.TaskGroup) -> None:
        """Start reading this member's stream in the background."""
        tg.start_soon(self._read)

    def stop(self) -> None:
        """Stop reading (the browser is closed): new copies wait in the database."""
        self._scope.cancel()

    async def _read(self) -> None:
        with self._scope:
            await self._read_until_ended()

    async def _read_until_ended(self) -> None:
        after = 0
        while not self.ended:
            async with self.door.client.stream(
                "GET", f"/c/events?after={after}", headers=self.headers, timeout=None
            ) as r:
                if r.status_code != 200:
                    self.ended = True
                    return
                event = "message"
                async for line in r.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        if event == "end":
                            self.ended = True
                            return
                        data = json.loads(line[6:])
                        if event == "seat":  # what the page says of the seat (its timer)
                            self.about = data
                            continue
                        self.seen.append(data)
                        after = max(after, int(data["id"]))
                    elif not line:
                        event = "message"
                        if after:
                            await self.door.client.post(
                                "/c/ack", data={"upto": str(after)}, headers=self.headers
                            )


@dataclass
class Door:
    """The deployment, its loopback phones and an HTTP client of the web process."""

    app: App
    loop: LoopbackTransport
    client: httpx.AsyncClient
    base: str
    tg: anyio.abc.TaskGroup
    web: WebDoor
    phones: dict[str, str] = field(default_factory=dict)
    _n: int = 0

    async def until(self, condition: Callable[[], bool], timeout: float = 5) -> None:
        with anyio.fail_after(timeout):
            while not condition():
                await anyio.sleep(0.02)

    async def until_async(
        self, check: Callable[[str], bool], read: Callable[[], Awaitable[str]], timeout: float = 5
    ) -> str:
        """Read until ``check`` holds (e.g. refresh a page); the last reading."""
        with anyio.fail_after(timeout):
            while not check(value := await read()):
                await anyio.sleep(0.05)
        return value

    def invite(self, lang: str | None = None, role: Role = Role.MEMBER) -> str:
        """A new invite's private link token (what follows ``/j/`` in its link)."""
        return invites.link_token(self.app.relay.keys, self.typed_invite(lang, role))

    def typed_invite(self, lang: str | None = None, role: Role = Role.MEMBER) -> str:
        """A new invite's typed code (what follows ``JOIN``)."""
        return group_admin.create_invite(self.app.relay, GROUP, timedelta(hours=1), role, lang)

    async def join(
        self, code: str | None = None, *, read: bool = True, lang: str | None = None
    ) -> WebMember:
        code = code or self.invite(lang)
        page = await self.client.get(f"/j/{code}")
        assert page.status_code == 200, page.status_code
        r = await self.client.post(f"/j/{code}", data={"agree": "1", "mode": "js"})
        assert r.status_code == 200, r.status_code
        seat = r.json()
        member = WebMember(self, seat["token"], seat["lang"])
        if read:
            await member.read(self.tg)
        return member

    async def phone(self, handle: str, number: str, role: Role = Role.MEMBER) -> None:
        relay = self.app.relay
        await anyio.to_thread.run_sync(
            lambda: relay.enroll(number, GROUP, role, "en", Channel.SANDBOX)
        )
        self.phones[handle] = number
        await self.phone_says(handle, "AGREE")
        await self.until(lambda: any("now in the group" in t for t in self.texts_of(handle)))

    async def phone_says(
        self, handle: str, text: str | None, kind: InboundKind = InboundKind.MESSAGE, **kw: str
    ) -> str:
        """Send from a phone; returns the message's ref (what a later delete names)."""
        self._n += 1
        ref = str(1767225600000 + self._n)
        inbound = Inbound(
            channel=Channel.SANDBOX,
            sender=Sender(address=self.phones[handle]),
            dedup_key=f"phone:{self._n}",
            kind=kind,
            text=text,
            ref=ref,
            **kw,  # type: ignore[arg-type]
        )
        await anyio.to_thread.run_sync(self.app.relay.accept, inbound)
        return ref

    def texts_of(self, handle: str) -> list[str]:
        return [d.text for d in self.loop.inbox.get(self.phones[handle], [])]

    @staticmethod
    def name_in(texts: list[str]) -> str:
        """The pseudonym a welcome line gave."""
        for text in texts:
            found = re.search(r"now in the group as (\w+)", text)
            if found is not None:
                return found.group(1)
        raise AssertionError("no welcome yet")

    async def welcomed(self, member: WebMember) -> str:
        """Wait for a web member's welcome line; their pseudonym."""
        await self.until(lambda: any("now in the group as" in t for t in member.texts))
        return self.name_in(member.texts)


async def run_door(
    tmp_path: Path, database_url: str | None = None, **extra: str
) -> AsyncIterator[Door]:
    """Serve the web app and run the delivery engine until the test ends (``extra``: more
    settings, e.g. ``CERCLE_TRUSTED_PROXIES``)."""
    port = free_port()
    settings = door_settings(tmp_path, port, database_url, **extra)
    app = bootstrap(settings)
    upgrade(app.engine)
    loop = LoopbackTransport()
    app.transports[Channel.SANDBOX] = loop
    app.deliverer = Deliverer(app.relay, app.transports, DeliveryPolicy())
    app.relay.create_group(GroupSettings(GROUP, lang="en", timer_seconds=3600))
    asgi = create_app(app)
    server = local_server(asgi, port)
    stop = anyio.Event()
    base = f"http://127.0.0.1:{port}"
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        tg.start_soon(app.deliverer.run, stop, 0.05)
        while not server.started:
            await anyio.sleep(0.01)
        async with (
            httpx.AsyncClient(base_url=base, timeout=10) as client,
            anyio.create_task_group() as readers,
        ):
            yield Door(app, loop, client, base, readers, asgi.state.web_door)
            readers.cancel_scope.cancel()
        stop.set()
        server.should_exit = True
    app.close()


ALICE_NUMBER = "+15145550121"


@pytest.fixture
async def door(tmp_path: Path) -> AsyncIterator[Door]:
    """A served deployment with the web door on, for one test."""
    async for d in run_door(tmp_path):
        yield d
