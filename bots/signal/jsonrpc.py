"""JSON-RPC 2.0 over one TCP or UNIX-socket connection, one JSON object per line, as
signal-cli's daemon speaks it.

One :class:`JsonRpcConnection` carries many calls at once: each request has its own id and
a reader task matches answers to callers (signal-cli answers in any order). Notifications
(``receive``) go to a queue. A closed connection fails the calls in flight with a retryable
error; the next call opens a new connection. Nothing here logs a parameter or a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.errors import Reason, RetryableError

log = logging.getLogger(__name__)

# Attachments travel base64 inside one line: allow lines as large as Signal's files.
MAX_LINE_BYTES = 160 * 1024 * 1024
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Target:
    """Where the daemon listens: ``tcp://HOST:PORT`` or ``unix:PATH``."""

    host: str | None = None
    port: int | None = None
    path: str | None = None

    @classmethod
    def parse(cls, value: str) -> Target:
        """Parse ``SIGNAL_CLI``; ValueError says what is wrong."""
        value = value.strip()
        if value.startswith("unix:"):
            path = value.removeprefix("unix:").removeprefix("//")
            if not path:
                raise ValueError("SIGNAL_CLI=unix:PATH needs the socket's path")
            return cls(path=path)
        if value.startswith("tcp://"):
            host, sep, port = value.removeprefix("tcp://").rstrip("/").rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError("SIGNAL_CLI=tcp://HOST:PORT needs a host and a port")
            return cls(host=host.strip("[]"), port=int(port))
        raise ValueError("SIGNAL_CLI must be tcp://HOST:PORT or unix:PATH")

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"tcp://{self.host}:{self.port}"


class JsonRpcError(Exception):
    """An error answer: ``code``, ``message`` (may name a member: never log or copy it) and
    ``data`` (signal-cli puts a send's per-recipient results in ``data.response``)."""

    def __init__(self, code: int, message: str, data: object) -> None:
        super().__init__(f"JSON-RPC error {code}")
        self.code = code
        self.message = message
        self.data = data


class JsonRpcConnection:
    """One connection to the daemon; :meth:`call` opens it when needed.

    ``receives``: whether ``receive`` notifications are kept (in :attr:`notifications`)
    for a receive loop. A connection for calls only sets it False: it then also ends, as it
    opens, the subscription signal-cli gives every new connection in its ``on-start`` and
    ``on-connection`` modes, so that messages are never handed to a connection that does not
    read them (none exists in ``manual`` mode; there the request changes nothing).
    """

    def __init__(self, target: Target, *, timeout: float = 30.0, receives: bool = True) -> None:
        self._target = target
        self._timeout = timeout
        self._receives = receives
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self.notifications: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    @property
    def connected(self) -> bool:
        """Whether the connection is open (in this event loop)."""
        return (
            self._writer is not None
            and not self._writer.is_closing()
            and self._loop is asyncio.get_running_loop()
        )

    async def connect(self) -> None:
        """Open the connection (again); failures are retryable delivery errors."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Made in another event loop (one CLI command each): start afresh in this one.
            self._reset(loop)
        assert self._lock is not None  # noqa: S101 - set by _reset
        async with self._lock:
            if self.connected:
                return
            await self._drop()
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    if self._target.path is not None:
                        reader, writer = await asyncio.open_unix_connection(
                            self._target.path, limit=MAX_LINE_BYTES
                        )
                    else:
                        reader, writer = await asyncio.open_connection(
                            self._target.host, self._target.port, limit=MAX_LINE_BYTES
                        )
            except (OSError, TimeoutError) as exc:
                raise RetryableError(
                    Reason.PROVIDER_DOWN, f"signal-cli: cannot connect ({type(exc).__name__})"
                ) from None
            self._writer = writer
            self.notifications = asyncio.Queue()
            self._reader_task = asyncio.ensure_future(self._read(reader))
            if not self._receives:
                # Without an id: signal-cli runs it and sends no answer.
                writer.write(b'{"jsonrpc":"2.0","method":"unsubscribeReceive"}\n')

    def _reset(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = asyncio.Lock()
        self._writer = None
        self._reader_task = None
        self._pending = {}

    async def call(
        self,
        method: str,
        params: Mapping[str, object] | None = None,
        *,
        wait: float | None = None,
    ) -> Any:
        """Call ``method``; its result, or :class:`JsonRpcError`, or a retryable error when
        the daemon is unreachable, the connection drops or no answer comes in time."""
        await self.connect()
        writer = self._writer
        assert writer is not None  # noqa: S101 - connect() set it
        request_id = next(self._ids)
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params:
            request["params"] = dict(params)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            writer.write(json.dumps(request, separators=(",", ":")).encode() + b"\n")
            await writer.drain()
            async with asyncio.timeout(wait or self._timeout):
                return await future
        except TimeoutError:
            raise RetryableError(Reason.NETWORK, f"signal-cli {method}: timed out") from None
        except (OSError, ConnectionError) as exc:
            raise RetryableError(
                Reason.NETWORK, f"signal-cli {method}: connection lost ({type(exc).__name__})"
            ) from None
        finally:
            self._pending.pop(request_id, None)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Match answers to calls; queue notifications; on end, fail what is in flight."""
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    message = json.loads(line)
                except (ValueError, RecursionError):  # not JSON, or nested past the parser
                    log.warning("signal-cli sent a line that is not JSON; skipped")
                    continue
                if isinstance(message, dict):
                    self._dispatch(message)
        except (OSError, ValueError, asyncio.LimitOverrunError) as exc:
            log.warning("signal-cli connection read failed (%s)", type(exc).__name__)
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionResetError("signal-cli closed the connection"))
            self.notifications.put_nowait(None)  # tells a receive loop the end came
            if self._writer is not None:
                self._writer.close()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" in message:
            receive = message.get("method") == "receive"
            if self._receives and receive and isinstance(message.get("params"), dict):
                self.notifications.put_nowait(message["params"])
            return
        request_id = message.get("id")
        future = self._pending.get(request_id) if isinstance(request_id, int) else None
        if future is None or future.done():
            return
        error = message.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            future.set_exception(
                JsonRpcError(
                    code if isinstance(code, int) else -32603,
                    str(error.get("message") or ""),
                    error.get("data"),
                )
            )
        else:
            future.set_result(message.get("result"))

    async def _drop(self) -> None:
        writer, task = self._writer, self._reader_task
        self._writer = None
        self._reader_task = None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def aclose(self) -> None:
        """Close the connection: signal-cli ends its subscriptions at once."""
        if self._loop is asyncio.get_running_loop():
            await self._drop()
