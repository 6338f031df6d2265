"""Slow clients against the HTTP server: ``python -m bench.slowloris [--stock] [--clients 40]``.

Starts a server process on loopback (Cercle's configuration, or ``--stock`` uvicorn with its
defaults), opens N connections that send their headers one byte every second and never finish
them (or, with ``--body``, finish the headers and trickle a body), and meanwhile asks for a page
as a normal client. Prints, every few seconds, how many slow connections are still open, the
server's open file descriptors and resident memory, and the normal client's answer time. Bounded:
at most ``--seconds`` of trickling, loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

SERVER = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from cercle.edge import server_config

async def page(request):
    return PlainTextResponse("ok")

app = Starlette(routes=[Route("/", page, methods=["GET", "POST"])])
port = int(sys.argv[2])
if sys.argv[1] == "stock":
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http="h11")
else:
    config = server_config(app, host="127.0.0.1", port=port)
uvicorn.Server(config).run()
"""


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(mode: str, port: int) -> subprocess.Popen[bytes]:
    """The server in its own process, once it accepts connections."""
    proc = subprocess.Popen([sys.executable, "-c", SERVER, mode, str(port)])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.1)
        else:
            return proc
    proc.kill()
    raise RuntimeError("server did not start")


def still_open(sock: socket.socket) -> bool:
    """Whether the server has not closed this connection (no EOF, no reset)."""
    sock.setblocking(False)
    try:
        return sock.recv(1024) != b""  # data (a 400 or 408) means it answered: closing
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def normal_request(port: int) -> float | None:
    """Seconds for a normal GET, or None when it failed."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            answer = s.recv(1024)
    except OSError:
        return None
    return time.monotonic() - started if answer.startswith(b"HTTP/1.1 200") else None


def server_figures(pid: int) -> tuple[int, int]:
    """(open file descriptors, resident memory in KiB) of the server process."""
    fds = sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return fds, rss


def run(mode: str, clients: int, seconds: float, body: bool) -> list[str]:
    """The run's lines of figures."""
    port = free_port()
    proc = start_server(mode, port)
    lines = []
    try:
        fds0, rss0 = server_figures(proc.pid)
        lines.append(f"{mode}: before: fds {fds0}, rss {rss0} KiB")
        socks = []
        for _ in range(clients):
            s = socket.create_connection(("127.0.0.1", port))
            if body:
                s.sendall(
                    b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 60000\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
                )
            else:
                s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
            socks.append(s)
        started = time.monotonic()
        all_closed = None
        next_report = 0.0
        while time.monotonic() - started < seconds:
            for s in socks:
                with contextlib.suppress(OSError):
                    s.send(b"a" if body else b"X")
            elapsed = time.monotonic() - started
            open_now = sum(still_open(s) for s in socks)
            if open_now == 0 and all_closed is None:
                all_closed = elapsed
            if elapsed >= next_report:
                fds, rss = server_figures(proc.pid)
                normal = normal_request(port)
                answer = f"{normal * 1000:.0f} ms" if normal is not None else "FAILED"
                lines.append(
                    f"{mode}: t={elapsed:4.1f}s open {open_now}/{clients}, server fds {fds}, "
                    f"rss {rss} KiB, normal GET {answer}"
                )
                next_report += 5
            if all_closed is not None and elapsed > all_closed + 1:
                break
            time.sleep(1)
        closed = f"{all_closed:.1f} s" if all_closed is not None else f"not within {seconds} s"
        lines.append(f"{mode}: all {clients} slow connections closed: {closed}")
        for s in socks:
            s.close()
    finally:
        proc.terminate()
        proc.wait(10)
    return lines


def main() -> None:
    """Print the figures for one server configuration."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--stock", action="store_true", help="uvicorn 0.54 with its defaults")
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--body", action="store_true", help="trickle a body, not headers")
    args = parser.parse_args()
    mode = "stock" if args.stock else "cercle"
    for line in run(mode, args.clients, args.seconds, args.body):
        print(line, flush=True)


if __name__ == "__main__":
    main()
