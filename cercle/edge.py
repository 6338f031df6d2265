"""The HTTP server's own limits: uvicorn, with deadlines for reading a request and a bound on
connections.

uvicorn 0.54 closes a connection only when it has been idle between two requests
(``timeout_keep_alive``), and any byte that arrives cancels that timer. A client that sends its
headers one byte every few seconds, or never finishes its body, holds its connection (and a file
descriptor) for ever; forty of them stayed open indefinitely. ``limit_concurrency`` does not help:
it answers 503 to *requests* over the limit, but still accepts the connections, and a slow client
never completes a request. :class:`GuardedH11Protocol` adds what is missing, at the protocol level
where the bytes arrive (docs/decisions/0009-server-read-deadlines.md has the measurements):

- the request's headers must have arrived within ``HEADER_TIMEOUT`` seconds of the connection
  opening or of the previous answer ending, and its body within ``BODY_TIMEOUT`` seconds of the
  headers; a late connection is closed, however steadily it trickles;
- at most ``MAX_CONNECTIONS`` connections are open at once: one more is closed as it arrives.

Header size is bounded by h11 itself (``MAX_HEADER_BYTES``: a bigger header block gets 400) and
body size by the app (:class:`cercle.web.Guard`, 413 before the body is read).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from bots.web.photos import upload_limit

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 10.0  # seconds for the request line and headers: a phone on 2G needs < 2
BODY_TIMEOUT = 15.0  # seconds for a body of at most 64 KiB (cercle.web.MAX_BODY): 4.3 KiB/s
MAX_CONNECTIONS = 500  # open sockets, including web members' event streams; fds stay < 1024
MAX_HEADER_BYTES = 16 * 1024  # request line plus headers
REFUSAL_LOG_EVERY = 60.0  # seconds between two log lines about refused connections
KEEP_ALIVE = 5  # seconds an idle connection is kept between two requests
# A photo posted from the web door's page (up to 8 MB) gets, on top of BODY_TIMEOUT, the time
# to arrive at this rate: a slow mobile link. Only a seated member's post is read that long;
# anyone else's is answered (and the connection closed) from the headers alone.
UPLOAD_RATE = 16 * 1024  # bytes a second


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a read deadline per request and a connection cap.

    Limits are class attributes so that a test can run a server with short ones (a subclass).
    """

    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    upload_rate: float = UPLOAD_RATE
    max_connections: int = MAX_CONNECTIONS
    _last_refusal_logged: float = float("-inf")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_body = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        over = len(self.connections) >= self.max_connections
        super().connection_made(transport)
        if over:
            now = self.loop.time()
            if now - GuardedH11Protocol._last_refusal_logged >= REFUSAL_LOG_EVERY:
                # Once a minute at most: a flood must not flood the log too.
                GuardedH11Protocol._last_refusal_logged = now
                log.warning("connections refused: %d already open", self.max_connections)
            transport.abort()
            return
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._follow()

    def _follow(self) -> None:
        """Move the deadline on with the request: headers, then body, then none."""
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._deadline is None or self._reading_body:
                self._reading_body = False
                self._arm(self.header_timeout)
        elif state is h11.SEND_BODY:
            if not self._reading_body:
                self._reading_body = True
                self._arm(self._body_seconds())
        else:  # the request is in (DONE), or the connection is ending: the app has it now
            self._reading_body = False
            self._disarm()

    def _body_seconds(self) -> float:
        """How long this request's body may take: ``body_timeout``, and for a photo posted
        from the web door's page, the time its declared size takes at ``upload_rate``."""
        scope = getattr(self, "scope", None)
        limit = upload_limit(scope) if scope is not None else None
        if scope is None or limit is None:
            return self.body_timeout
        declared = dict(scope["headers"]).get(b"content-length", b"")
        size = int(declared) if declared.isdigit() else limit  # no length: the most allowed
        return self.body_timeout + min(size, limit) / self.upload_rate

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info("connection closed: request not received in time")
            # Abort, not close: a slow reader must not hold the socket by not reading either.
            self.transport.abort()


def server_config(app: Any, *, host: str, port: int, **limits: Any) -> uvicorn.Config:
    """uvicorn's configuration with Cercle's limits, for ``cercle web`` and ``cercle run``.

    Proxy headers are left alone here (``proxy_headers=False``): which client address a request
    has is the app's decision, made in one place (bots/web/client.py) from the proxies the
    operator trusts (``CERCLE_TRUSTED_PROXIES``).
    """
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=limits.pop("http", GuardedH11Protocol),
        ws="none",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        **limits,
    )


__all__ = ["GuardedH11Protocol", "server_config"]
