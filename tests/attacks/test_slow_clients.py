"""Slow and oversized requests against the web process, over real sockets on loopback.

The server is the one ``cercle web`` runs (cercle.edge), with its deadlines shortened so that
each test takes a few seconds: what is checked is that the deadline holds however a client
trickles, and that a normal visitor is served meanwhile.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from cercle.bootstrap import bootstrap
from cercle.edge import GuardedH11Protocol, server_config
from cercle.web import MAX_BODY, create_app
from relay.storage.engine import upgrade
from tests.web.door import door_settings, free_port

HEADER_TIMEOUT, BODY_TIMEOUT, MAX_CONNECTIONS = 1.0, 2.0, 60


class Impatient(GuardedH11Protocol):
    """Cercle's protocol with test-sized limits."""

    header_timeout = HEADER_TIMEOUT
    body_timeout = BODY_TIMEOUT
    max_connections = MAX_CONNECTIONS


@dataclass
class Server:
    port: int
    host: str

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def get(self, path: str = "/health", extra: bytes = b"") -> bytes:
        """A normal visitor's whole answer."""
        with self.connect() as s:
            s.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nConnection: close\r\n".encode()
                + extra
                + b"\r\n"
            )
            return read_all(s)


def read_all(s: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset after its answer ends it too)."""
    answer = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := s.recv(65536):
            answer += chunk
    return answer


def closed_by_server(s: socket.socket) -> bool:
    """Whether the server has closed this connection (EOF or reset), without waiting."""
    s.setblocking(False)
    try:
        return s.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    settings = door_settings(tmp_path, port)
    app = bootstrap(settings)
    upgrade(app.engine)
    config = server_config(create_app(app), host="127.0.0.1", port=port, http=Impatient)
    config.timeout_graceful_shutdown = 1
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert uv.started
    yield Server(port, f"127.0.0.1:{port}")
    uv.should_exit = True
    thread.join(10)
    app.close()


def trickle_until_closed(socks: list[socket.socket], byte: bytes, limit: float) -> float:
    """Send one byte on each open socket every 0.2 s until the server has closed all of them
    (or ``limit`` seconds pass); the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if all(closed_by_server(s) for s in socks):
            return time.monotonic() - started
        for s in socks:
            with contextlib.suppress(OSError):
                s.send(byte)
        time.sleep(0.2)
    return float("inf")


def test_forty_clients_that_never_finish_their_headers_are_dropped_while_others_are_served(
    server: Server,
) -> None:
    slow = [server.connect() for _ in range(40)]
    for s in slow:
        s.sendall(f"GET /health HTTP/1.1\r\nHost: {server.host}\r\n".encode())

    served_meanwhile = server.get()
    took = trickle_until_closed(slow, b"X", limit=HEADER_TIMEOUT + 3)

    assert served_meanwhile.startswith(b"HTTP/1.1 200")
    # A byte every 0.2 s does not move the deadline: closed at HEADER_TIMEOUT, give or take.
    assert took <= HEADER_TIMEOUT + 1.5
    assert server.get().startswith(b"HTTP/1.1 200")
    for s in slow:
        s.close()


def test_a_client_that_trickles_its_body_is_dropped(server: Server) -> None:
    slow = [server.connect() for _ in range(10)]
    for s in slow:
        s.sendall(
            f"POST /c/send HTTP/1.1\r\nHost: {server.host}\r\nContent-Length: 4000\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\ntext=".encode()
        )

    served_meanwhile = server.get()
    took = trickle_until_closed(slow, b"a", limit=BODY_TIMEOUT + 3)

    assert served_meanwhile.startswith(b"HTTP/1.1 200")
    assert took <= BODY_TIMEOUT + 1.5
    for s in slow:
        s.close()


def test_an_idle_connection_that_never_sends_a_byte_is_dropped(server: Server) -> None:
    idle = server.connect()

    took = trickle_until_closed([idle], b"", limit=HEADER_TIMEOUT + 3)

    assert took <= HEADER_TIMEOUT + 1.5
    idle.close()


def test_connections_over_the_cap_are_closed_at_once_and_service_resumes(
    server: Server,
) -> None:
    held = [server.connect() for _ in range(MAX_CONNECTIONS)]
    time.sleep(0.2)  # the server has accepted them all

    extra = server.connect()
    extra.settimeout(2)
    try:
        refused = extra.recv(1) == b""
    except OSError:  # reset
        refused = True

    assert refused
    for s in held:
        s.close()
    time.sleep(0.2)
    assert server.get().startswith(b"HTTP/1.1 200")


def test_headers_over_16_kib_are_refused(server: Server) -> None:
    # Whole, in one write: measured by the app's guard.
    whole = server.get(extra=b"X-Padding: " + b"a" * 20_000 + b"\r\n")
    # In pieces: h11 refuses a header block that grows past its bound before it ends.
    with server.connect() as s:
        s.sendall(f"GET /health HTTP/1.1\r\nHost: {server.host}\r\n".encode())
        for _ in range(40):
            try:
                s.sendall(b"X-Padding: " + b"a" * 1000 + b"\r\n")
            except OSError:
                break
            time.sleep(0.005)
        pieces = read_all(s)

    assert whole.split(b"\r\n")[0] == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert pieces.split(b"\r\n")[0] == b"HTTP/1.1 400 Bad Request"


def test_a_body_over_the_limit_is_refused_before_it_is_read(server: Server) -> None:
    with server.connect() as s:
        # Declared too big: answered 413 at once, though no byte of the body was sent.
        s.sendall(
            f"POST /c/send HTTP/1.1\r\nHost: {server.host}\r\n"
            f"Content-Length: {MAX_BODY * 100}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\n".encode()
        )
        declared = read_all(s)
    with server.connect() as s:
        # Undeclared (chunked) and too big: refused once the limit is passed.
        s.sendall(
            f"POST /c/send HTTP/1.1\r\nHost: {server.host}\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\n".encode()
        )
        chunk, chunked = b"a" * 16384, b""
        for _ in range(10):  # 160 KiB offered; stop sending once the server answers
            try:
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                break
            if select.select([s], [], [], 0.1)[0]:
                break
        chunked = read_all(s)

    assert declared.split(b"\r\n")[0] == b"HTTP/1.1 413 Request Entity Too Large"
    assert b"connection: close" in declared.lower()
    assert chunked.split(b"\r\n")[0] == b"HTTP/1.1 413 Request Entity Too Large"
