"""A photo from the page over a slow link, against the server ``cercle web`` runs (cercle.edge),
with its deadlines shortened: a member's photo gets the time its size needs at a slow mobile
rate, while a stranger's post is answered from its headers and closed."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from PIL import Image

from cercle.bootstrap import bootstrap
from cercle.edge import server_config
from cercle.web import create_app
from relay.groups import invites
from relay.service import groups as group_admin
from relay.service.relay import GroupSettings
from relay.storage.engine import upgrade
from tests.attacks.test_slow_clients import BODY_TIMEOUT, Impatient, read_all
from tests.web.door import door_settings, free_port

RATE = 16 * 1024


class ImpatientWithPhotos(Impatient):
    upload_rate = RATE


@dataclass
class Served:
    port: int
    token: str  # a seated member's key

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    app = bootstrap(door_settings(tmp_path, port))
    upgrade(app.engine)
    app.relay.create_group(GroupSettings("mardi", lang="en", timer_seconds=3600, allow_media=True))
    config = server_config(create_app(app), host="127.0.0.1", port=port, http=ImpatientWithPhotos)
    config.timeout_graceful_shutdown = 1
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    link = invites.link_token(app.relay.keys, group_admin.create_invite(app.relay, "mardi"))
    joined = httpx.post(
        f"http://127.0.0.1:{port}/j/{link}", data={"agree": "1", "mode": "js"}, timeout=10
    )
    yield Served(port, joined.json()["token"])
    uv.should_exit = True
    thread.join(10)
    app.close()


def photo_post(port: int, token: str | None, side: int) -> bytes:
    """The raw bytes of a photo post from the page (a PNG of noise, ``side`` pixels square)."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, format="PNG")
    request = httpx.Request(
        "POST",
        f"http://127.0.0.1:{port}/c/send",
        data={"text": "over a slow link", "nonce": "slowlink01"},
        files={"photo": ("photo", out.getvalue(), "image/png")},
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )
    body = request.read()
    head = f"POST /c/send HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
    for name, value in request.headers.items():
        if name.lower() not in ("host", "connection"):
            head += f"{name}: {value}\r\n"
    return (head + "\r\n").encode() + body


def test_a_members_photo_over_a_slow_link_arrives_past_the_plain_body_deadline(
    served: Served,
) -> None:
    raw = photo_post(served.port, served.token, side=180)
    head_end = raw.index(b"\r\n\r\n") + 4
    body = raw[head_end:]
    # Slower than a form may take (BODY_TIMEOUT), faster than the photo rate allows for.
    seconds = BODY_TIMEOUT + 1
    assert len(body) / seconds > RATE
    started = time.monotonic()

    with served.connect() as s:
        s.sendall(raw[:head_end])
        pieces = 20
        step = len(body) // pieces + 1
        for i in range(0, len(body), step):
            s.sendall(body[i : i + step])
            time.sleep(seconds / pieces)
        answer = read_all(s)

    assert time.monotonic() - started > BODY_TIMEOUT
    assert answer.startswith(b"HTTP/1.1 204"), answer[:80]


def test_a_strangers_photo_post_is_answered_from_its_headers_and_closed(served: Served) -> None:
    raw = photo_post(served.port, None, side=8)
    head_end = raw.index(b"\r\n\r\n") + 4
    started = time.monotonic()

    with served.connect() as s:
        s.sendall(raw[:head_end] + raw[head_end : head_end + 100])  # and nothing more
        answer = read_all(s)

    assert answer.startswith(b"HTTP/1.1 403")  # no key, no cookie
    assert time.monotonic() - started < BODY_TIMEOUT
