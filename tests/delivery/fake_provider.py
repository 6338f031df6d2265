"""A tiny loopback messaging provider over HTTP, for reliability tests and benchmarks.

``POST /send`` with ``{"to": …, "text": …}`` records the delivery and answers 201 with a
reference. It can be told to misbehave for a while (5xx, hanging past the client's timeout,
429 with ``Retry-After``) and to refuse some addresses for good (400). ``GET /log`` returns
every delivery in arrival order, with arrival times. Run it in a thread
(:class:`FakeProvider`) or as a process: ``python -m tests.delivery.fake_provider`` prints
its port and serves until killed.

Like Signal's server it can enforce a limit per sender-recipient pair (a bucket of
``pair_burst`` refilled ``pair_rate`` per second for each ``to``; Signal-Server's
``RateLimiters.For.MESSAGES`` is 60 and 1/s), answering as signal-cli-rest-api does when
Signal refuses: 400 with ``[413] Rate limit exceeded``. ``throttle_for`` answers every send
that way for a spell (a rate limit on the whole number). It counts the sends in progress at
once (``max_in_flight``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Script:
    """How the provider behaves: latency, a bad spell, addresses it refuses, a rate limit."""

    latency: float = 0.0
    fail_until: float = 0.0  # time.monotonic() until which requests fail, in rotation
    fail_for: float = 0.0  # or: seconds during which requests fail, from the first request
    permanent: set[str] = field(default_factory=set)
    rate: float | None = None  # messages per second above which it answers 429
    pair_burst: int | None = None  # per-recipient bucket (Signal: 60); None = no pair limit
    pair_rate: float = 1.0  # its refill per second (Signal: 1)
    throttle_for: float = 0.0  # seconds, from the first send, during which every send gets 413
    throttle_until: float = 0.0  # time.monotonic() until which every send gets 413


# What signal-cli-rest-api answers when Signal's server says 413 (rate limit exceeded).
SIGNAL_413 = {"error": "Failed to send message: [413] Rate limit exceeded: 5"}


class _Server(ThreadingHTTPServer):
    # Many concurrent senders connect at once: a listen backlog of 5 (the default) would
    # drop connections and add the kernel's 1 s SYN retry to the measured latency.
    request_queue_size = 256
    daemon_threads = True


class FakeProvider:
    """The provider in a background thread."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.log: list[tuple[str, str]] = []
        self.times: list[float] = []  # time.monotonic() at which each delivery in log arrived
        self.refusals: dict[int, int] = {}
        self.lock = threading.Lock()
        self._turn = itertools.count()
        self._refs = itertools.count(1)
        self._sent_times: list[float] = []
        self._pairs: dict[str, tuple[float, float]] = {}  # to -> (tokens, at)
        self.in_flight = 0
        self.max_in_flight = 0
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where to send."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeProvider:
        """Serve in the background."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Decide the response to one send (status, headers, JSON), counting sends in flight."""
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self._answer(body)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _answer(self, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        s = self.script
        if s.latency:
            time.sleep(s.latency)
        now = time.monotonic()
        if s.throttle_for and not s.throttle_until:
            s.throttle_until = now + s.throttle_for
        if now < s.throttle_until:
            self._refused(413)
            return 400, {}, SIGNAL_413
        if s.fail_for and not s.fail_until:
            s.fail_until = now + s.fail_for  # the first request starts the bad spell
        if now < s.fail_until:
            mode = next(self._turn) % 3
            self._refused(503 if mode == 0 else 429 if mode == 1 else 599)
            if mode == 0:
                return 503, {}, {"error": "unavailable"}
            if mode == 1:
                return 429, {"Retry-After": "0.2"}, {"error": "slow down"}
            time.sleep(1.0)  # longer than the client's timeout
            return 503, {}, {"error": "late"}
        if body["to"] in s.permanent:
            self._refused(400)
            return 400, {}, {"error": "invalid recipient"}
        with self.lock:
            if s.pair_burst is not None and not self._pair_take(body["to"], now):
                self.refusals[413] = self.refusals.get(413, 0) + 1
                return 400, {}, SIGNAL_413
            if s.rate is not None:
                self._sent_times = [t for t in self._sent_times if now - t < 1.0]
                if len(self._sent_times) >= s.rate * 1.05 + 1:  # a little slack, like carriers
                    self.refusals[429] = self.refusals.get(429, 0) + 1
                    return 429, {"Retry-After": "1"}, {"error": "rate"}
                self._sent_times.append(now)
            self.log.append((body["to"], body["text"]))
            self.times.append(now)
            ref = next(self._refs)
        return 201, {}, {"ref": str(ref)}

    def _pair_take(self, to: str, now: float) -> bool:
        """Take one token from ``to``'s bucket (caller holds the lock); False if empty."""
        s = self.script
        assert s.pair_burst is not None
        tokens, at = self._pairs.get(to, (float(s.pair_burst), now))
        tokens = min(float(s.pair_burst), tokens + (now - at) * s.pair_rate)
        if tokens < 1.0 - 1e-9:
            self._pairs[to] = (tokens, now)
            return False
        self._pairs[to] = (tokens - 1.0, now)
        return True

    def _refused(self, status: int) -> None:
        with self.lock:
            self.refusals[status] = self.refusals.get(status, 0) + 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                status, headers, payload = provider.answer(body)
                self._reply(status, headers, payload)

            def do_GET(self) -> None:
                with provider.lock:
                    payload = {
                        "log": provider.log,
                        "times": provider.times,
                        "refusals": provider.refusals,
                        "max_in_flight": provider.max_in_flight,
                    }
                self._reply(200, {}, payload)

            def _reply(self, status: int, headers: dict[str, str], payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                # The client may have given up (timeout): that is the point of the test.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # quiet: deliveries are in provider.log

        return Handler


def main() -> None:
    """Serve as a process: print the port, then serve until killed."""
    latency = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    rate = float(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] != "-" else None
    pair_burst = int(sys.argv[3]) if len(sys.argv) > 3 else None
    pair_rate = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
    script = Script(latency=latency, rate=rate, pair_burst=pair_burst, pair_rate=pair_rate)
    provider = FakeProvider(script)
    print(provider.server.server_address[1], flush=True)
    provider.server.serve_forever()


if __name__ == "__main__":
    main()
