"""A fake of ``signal-cli -a NUMBER daemon --tcp HOST:PORT|--socket PATH --receive-mode=MODE``.

The protocol, as signal-cli speaks it: JSON-RPC 2.0, one JSON object per line, requests
handled concurrently (answers may come out of order), a request without ``id`` gets no
answer, a line that is not JSON gets -32700 with ``id: null``.

Receiving, as signal-cli does it:

- Signal keeps a queue of messages for the account (:attr:`queued`). signal-cli reads it
  only while it *receives*: ``on-start`` from start to stop; ``on-connection`` while a
  client is connected; ``manual`` while some client is subscribed (``subscribeReceive``).
- In ``on-start`` and ``on-connection`` each connection is subscribed as it opens, and its
  notifications are ``{"method":"receive","params":{envelope, account}}`` (no subscription
  id). In ``manual`` a client subscribes; notifications then carry
  ``{"subscription": N, "result": {envelope, account}}``. Ids come from one counter shared
  by all connections and all subscription kinds.
- Each message is acknowledged to Signal (taken off the queue) *before* it is written to
  the subscribed connections. A connection that has just died loses what was written to
  it (:meth:`cut_during_next_handover` shows that window). End of input on a connection
  unsubscribes it at once.
- With ``on-start`` and nobody connected, messages go to the daemon's stdout: lost for
  Cercle (:attr:`frames_dropped`).

Test API mirrors :class:`tests.fakes.signal_server.FakeSignalServer` (``member``, ``push``,
``sent_to``, ``fail_recipient``, ``require_captcha``, the same record shapes) so the same
transcripts run on both ways in.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import tempfile
import threading
import time
import uuid as uuidlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from tests.fakes.signal_cli_daemon import methods
from tests.fakes.signal_cli_daemon.methods import RpcError
from tests.fakes.signal_cli_daemon.params import OPTIONS, namespace
from tests.fakes.signal_server import (
    _FIRST_TIMESTAMP,
    ORG_NUMBER,
    FakeMember,
    FakeSignalServer,
    SentMessage,
)

MODES = ("on-start", "on-connection", "manual")
# The methods whose call goes to a person (the rest manage the account or read from it).
ADDRESSED_METHODS = ("send", "sendReaction", "remoteDelete", "updateContact", "sendReceipt")
VERSION = "0.14.6"
# Signal's limit per sender-recipient pair: a burst of 60, then one a second.
PAIR_BURST = 60
PAIR_RATE = 1.0


@dataclass(frozen=True)
class _RawLine:
    """A line that is not JSON, written to subscribers as it is."""

    text: str


@dataclass(eq=False)
class _Conn:
    writer: asyncio.StreamWriter
    auto: int | None = None  # the subscription made at connect (on-start, on-connection)
    subs: set[int] = field(default_factory=set)
    calls: set[int] = field(default_factory=set)
    alive: bool = True


@dataclass
class _Bucket:
    tokens: float
    at: float


class FakeSignalCliDaemon:
    """State and behaviour; :func:`run_fake_signal_cli_daemon` serves it."""

    kind = "daemon"

    def __init__(
        self,
        number: str = ORG_NUMBER,
        *,
        receive_mode: str = "manual",
        data_dir: Path | None = None,
    ) -> None:
        if receive_mode not in MODES:
            raise ValueError(f"receive mode must be one of {MODES}")
        self.number = number
        self.receive_mode = receive_mode
        self.version = VERSION
        self.target = ""  # SIGNAL_CLI value once serving: tcp://host:port or unix:path
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-signal-cli-") if not data_dir else None
        self.data_dir = data_dir or Path(self._tmp.name)  # type: ignore[union-attr]
        (self.data_dir / "attachments").mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._clock = itertools.count(_FIRST_TIMESTAMP)
        self._ids = itertools.count(0)
        # Signal's side
        self.queue: deque[object] = deque()
        self.registered: set[str] = set()
        self.unregistered: set[str] = set()
        self.untrusted: set[str] = set()
        self.numbers_by_uuid: dict[str, str] = {}
        self.resolved: set[str] = set()
        self.captcha_token: str | None = None
        self.pair_burst: int | None = PAIR_BURST
        self._buckets: dict[str, _Bucket] = {}
        self._recipient_failures: dict[str, list[str]] = {}
        self.send_failures: list[RpcError] = []  # the next sends' whole-call failures
        self.devices: list[dict[str, Any]] = [{"id": 1, "name": "signal-cli"}]
        # records, read by tests (the REST fake's shapes)
        self.violations: list[str] = []
        self.sent: list[SentMessage] = []
        self.send_attempts: list[dict[str, Any]] = []
        self.reactions: list[dict[str, Any]] = []
        self.remote_deletes: list[dict[str, Any]] = []
        self.timers: dict[str, int] = {}
        self.timer_calls: list[dict[str, Any]] = []
        self.fetched_attachments: list[str] = []
        self.deleted_attachments: list[str] = []  # signal-cli has no method to delete one
        self.challenges: list[dict[str, Any]] = []
        self.trusted: list[tuple[str, dict[str, Any]]] = []
        self.profiles: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.frames_delivered = 0
        self.frames_dropped = 0
        self.frames_lost = 0
        self.connections_opened = 0
        self.subscriptions_opened = 0  # subscribeReceive calls and connect-time subscriptions
        self._cut_next = False
        self.stalled: set[str] = set()  # methods the daemon never answers (tests set it)
        self.send_delay = 0.0  # seconds each ``send`` takes (real signal-cli: 50-300 ms)
        self._conns: list[_Conn] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- test API: Signal's side -----------------------------------------------------------

    def next_timestamp(self) -> int:
        """A fresh, increasing Signal timestamp."""
        with self._lock:
            return next(self._clock)

    def member(
        self, number: str | None, uuid: str | None = None, *, profile_name: str = "Profile Name"
    ) -> FakeMember:
        """A simulated member (a phone) who writes to the org's number."""
        member = FakeMember(self, number, uuid or str(uuidlib.uuid4()), profile_name)  # type: ignore[arg-type]
        if number is not None:
            with self._lock:
                self.registered.add(number)
                self.numbers_by_uuid[member.uuid] = number
        return member

    def phone_of(self, recipient: str) -> str:
        """The number a recipient given by number or account id reaches."""
        return self.numbers_by_uuid.get(recipient, recipient)

    def uuid_of(self, number: str) -> str:
        """The account id of a number (made up, and kept, for numbers no member has)."""
        with self._lock:
            for uuid, known in self.numbers_by_uuid.items():
                if known == number:
                    return uuid
            uuid = str(uuidlib.uuid5(uuidlib.NAMESPACE_OID, number))
            self.numbers_by_uuid[uuid] = number
            return uuid

    def known(self) -> list[tuple[str, str]]:
        """(number, account id) of every recipient signal-cli has resolved."""
        with self._lock:
            return [(n, u) for u, n in self.numbers_by_uuid.items() if n in self.resolved]

    def sent_to(self, recipient: str) -> list[SentMessage]:
        """What the org sent this phone (given by number or account id)."""
        with self._lock:
            return [m for m in self.sent if self.phone_of(m.recipient) == self.phone_of(recipient)]

    def addressed_requests(self) -> list[tuple[str, dict[str, Any]]]:
        """(recipient, params) for every call that reaches someone (``send``, ``sendReaction``,
        ``remoteDelete``, ``updateContact``, ``sendReceipt``), params as signal-cli received
        them: once per recipient named (``recipient`` or ``recipients``, a value or a list)."""
        with self._lock:
            calls = [r["params"] for r in self.requests if r["method"] in ADDRESSED_METHODS]
        found: list[tuple[str, dict[str, Any]]] = []
        for params in calls:
            if not isinstance(params, dict):
                continue
            for key in ("recipient", "recipients"):
                value = params.get(key)
                named = value if isinstance(value, list) else [value]
                found.extend((r, params) for r in named if isinstance(r, str))
        return found

    def fail_next_send(self, status: int, body: Any) -> None:
        """The next ``send`` fails as a whole, the REST fake's ``status`` read as what
        signal-cli would have met: 5xx a network failure while sending (an IOException, which
        SendCommand turns into -32603 "Failed to send message: … (IOException)"), 429 a rate
        limit (-5), anything else a user error (-1). ``body["error"]`` is the text."""
        text = str(body.get("error", "")) if isinstance(body, dict) else str(body)
        if status >= 500:
            failure = RpcError(
                methods.INTERNAL_ERROR, f"Failed to send message: {text} (IOException)"
            )
        elif status == 429:
            failure = RpcError(methods.RATELIMIT_ERROR, text)
        else:
            failure = RpcError(methods.USER_ERROR, text)
        with self._lock:
            self.send_failures.append(failure)

    def fail_recipient(self, number: str, reason: str) -> None:
        """The next send to ``number`` gets this result type (e.g. UNREGISTERED_FAILURE)."""
        with self._lock:
            self._recipient_failures.setdefault(number, []).append(reason)

    def require_captcha(self, token: str = "5fad97ac-7d06-4e44-b18a-b950b20148ff") -> None:  # noqa: S107
        """Signal wants a captcha (proof required) for every send until it is submitted."""
        with self._lock:
            self.captcha_token = token

    def change_identity(self, number: str) -> None:
        """The member's safety number changed: sends fail until the org trusts it."""
        with self._lock:
            self.untrusted.add(number)
            self.resolved.add(number)

    def link_device(self, name: str = "Signal Desktop") -> None:
        """Someone links another device to the org's number."""
        with self._lock:
            self.devices.append({"id": len(self.devices) + 1, "name": name})

    def store_attachment(self, attachment_id: str, content_type: str, data: bytes) -> None:
        """A received attachment, on the daemon's disk as signal-cli keeps it."""
        (self.data_dir / "attachments" / attachment_id).write_bytes(data)

    def read_attachment(self, attachment_id: str) -> bytes | None:
        """The bytes of a stored attachment, or None."""
        if "/" in attachment_id or attachment_id in ("", ".", ".."):
            return None
        path = self.data_dir / "attachments" / attachment_id
        return path.read_bytes() if path.is_file() else None

    @property
    def attachments(self) -> list[str]:
        """Ids of the attachments still on the daemon's disk."""
        return sorted(p.name for p in (self.data_dir / "attachments").iterdir())

    def outcome_for(self, recipient: str) -> tuple[str, str | None, int | None]:
        """(result type, challenge token, retry after) for one send to ``recipient``."""
        number = self.phone_of(recipient)
        with self._lock:
            reasons = self._recipient_failures.get(number)
            if reasons:
                return reasons.pop(0), None, None
            if number in self.untrusted:
                return "IDENTITY_FAILURE", None, None
            if self.captcha_token is not None:
                return "RATE_LIMIT_FAILURE", self.captcha_token, 86400
            if self.pair_burst is not None:
                now = time.monotonic()
                bucket = self._buckets.setdefault(number, _Bucket(self.pair_burst, now))
                bucket.tokens = min(self.pair_burst, bucket.tokens + (now - bucket.at) * PAIR_RATE)
                bucket.at = now
                if bucket.tokens < 1:
                    return "RATE_LIMIT_FAILURE", None, 1
                bucket.tokens -= 1
        return "SUCCESS", None, None

    # --- test API: receiving ----------------------------------------------------------------

    def push(self, frame: dict[str, Any] | str) -> bool:
        """A message reaches Signal for the org's account; True if handed over at once."""
        value: object = frame
        if isinstance(frame, str):
            try:
                value = json.loads(frame)
            except (ValueError, RecursionError):
                # Not JSON: the attack tests' garbled frame reaches the client as a garbled line
                # on the socket, the worst a broken daemon or network could hand over.
                value = _RawLine(frame)
        before = self.frames_delivered
        self._call(self._enqueue, value)
        return self.frames_delivered > before

    @property
    def queued(self) -> int:
        """Messages waiting at Signal (signal-cli is not receiving)."""
        return len(self.queue)

    @property
    def connected(self) -> int:
        """Open connections."""
        return len(self._conns)

    @property
    def subscribed(self) -> int:
        """Connections that messages would be handed to now."""
        return sum(1 for c in self._conns if c.subs or c.auto is not None)

    def cut_during_next_handover(self) -> None:
        """The next message is acknowledged to Signal, then every connection dies before it
        is written: the window in which a message handed over by signal-cli is lost."""
        self._cut_next = True

    def close_websockets(self, code: int = 1000) -> None:
        """Close every connection cleanly (the REST fake's name, for shared transcripts)."""
        self._call(self._close_all, False)

    def abort_websockets(self) -> None:
        """Drop every connection without a goodbye."""
        self._call(self._close_all, True)

    async def wait_connected(self, opened: int = 1, within: float = 5.0) -> None:
        """Wait until ``opened`` receive subscriptions were made in total and one is live."""
        with anyio.fail_after(within):
            while self.subscriptions_opened < opened or not self.subscribed:
                await anyio.sleep(0.01)

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Poll ``predicate`` until true."""
        with anyio.fail_after(within):
            while not predicate():
                await anyio.sleep(0.01)

    def linked_device_says(self, text: str, to: str) -> int:
        """A syncMessage from a device linked to the org's number."""
        return FakeSignalServer.linked_device_says(self, text, to)  # type: ignore[arg-type]

    def error_frame(self, text: str = "Sealed sender message could not be decrypted") -> bool:
        """What a subscriber gets when signal-cli fails on a message it took from Signal.

        The REST fake's method of the same name sends signal-cli-rest-api's own
        ``{"error": …}`` frame; signal-cli's daemon has none. When reading from Signal fails,
        signal-cli logs it and reconnects (ReceiveHelper) and subscribers get nothing; when a
        message cannot be decrypted or handled, its receive handler (JsonReceiveMessageHandler)
        writes the usual ``receive`` notification whose result holds ``exception``
        ({message, type}: the exception's text, which may quote anything, and class) beside
        an envelope without content. A sealed-sender message that fails before its sender is
        known has a null source (JsonMessageEnvelope); see ``FakeMember.cannot_be_decrypted``
        for one whose sender is known.
        """
        ts = self.next_timestamp()
        envelope = {
            "source": None,
            "sourceNumber": None,
            "sourceUuid": None,
            "sourceName": None,
            "sourceDevice": None,
            "timestamp": ts,
            "serverReceivedTimestamp": ts + 60,
            "serverDeliveredTimestamp": ts + 90,
        }
        exception = {"message": text, "type": "InvalidMetadataMessageException"}
        return self.push({"account": self.number, "exception": exception, "envelope": envelope})

    # --- receiving ---------------------------------------------------------------------------

    def _receiving(self) -> bool:
        if self.receive_mode == "on-start":
            return True
        return any(c.subs or c.auto is not None for c in self._conns)

    def _enqueue(self, frame: object) -> None:
        self.queue.append(frame)
        self._pump()

    def _pump(self) -> None:
        while self.queue and self._receiving():
            frame = self.queue.popleft()  # acknowledged to Signal: gone from its queue
            targets = [c for c in self._conns if c.alive and (c.subs or c.auto is not None)]
            if self._cut_next:
                self._cut_next = False
                for conn in targets:
                    self._drop(conn, abort=True)
                self.frames_lost += 1
                continue
            if not targets:
                self.frames_dropped += 1  # on-start with nobody connected: stdout only
                continue
            written = False
            for conn in targets:
                if isinstance(frame, _RawLine):
                    written = self._write_raw(conn, frame.text.encode()) or written
                    continue
                if conn.auto is not None:
                    note = {"jsonrpc": "2.0", "method": "receive", "params": frame}
                    written = self._write(conn, note) or written
                for sub in sorted(conn.subs):
                    params = {"subscription": sub, "result": frame}
                    note = {"jsonrpc": "2.0", "method": "receive", "params": params}
                    written = self._write(conn, note) or written
            if written:
                self.frames_delivered += 1
            else:
                self.frames_lost += 1  # acknowledged, then written to no live connection

    def _write(self, conn: _Conn, message: object) -> bool:
        return self._write_raw(conn, json.dumps(message, separators=(",", ":")).encode())

    def _write_raw(self, conn: _Conn, line: bytes) -> bool:
        if conn.writer.is_closing():
            conn.alive = False
            return False
        conn.writer.write(line.replace(b"\n", b" ") + b"\n")
        return True

    def _drop(self, conn: _Conn, *, abort: bool) -> None:
        conn.alive = False
        conn.subs.clear()
        conn.auto = None
        if conn in self._conns:
            self._conns.remove(conn)
        transport = conn.writer.transport
        if abort:
            transport.abort()
        else:
            transport.close()

    def _close_all(self, abort: bool) -> None:
        for conn in list(self._conns):
            self._drop(conn, abort=abort)

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._loop is None:
            raise RuntimeError("the fake daemon is not running")

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=5)

    # --- the JSON-RPC connection ------------------------------------------------------------

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """One client connection, until end of input."""
        conn = _Conn(writer)
        self._conns.append(conn)
        self.connections_opened += 1
        if self.receive_mode != "manual":
            conn.auto = next(self._ids)
            self.subscriptions_opened += 1
        self._pump()
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ConnectionError, ValueError):
                    break
                if not line:
                    break  # end of input: unsubscribed at once
                task = asyncio.ensure_future(self._line(conn, line.decode("utf-8", "replace")))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            conn.alive = False
            if conn in self._conns:
                self._conns.remove(conn)
            conn.subs.clear()
            conn.auto = None
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                writer.close()

    async def _line(self, conn: _Conn, line: str) -> None:
        if not line.strip():
            self._error(conn, methods.PARSE_ERROR, "Empty input line", None)
            return
        try:
            node = json.loads(line)
        except ValueError as exc:
            self._error(conn, methods.PARSE_ERROR, f"Unexpected character ({exc.msg})", None)
            return
        if isinstance(node, list):
            if not node:
                self._error(conn, methods.INVALID_REQUEST, "invalid request", None)
                return
            answers = [a for a in [self._request(conn, item) for item in node] if a is not None]
            if answers:
                self._write(conn, answers)
            return
        if not isinstance(node, dict):
            kind = {str: "STRING", int: "NUMBER", float: "NUMBER", bool: "BOOLEAN"}.get(
                type(node), "NULL"
            )
            self._error(conn, methods.INVALID_REQUEST, f"unexpected type: {kind}", None)
            return
        if "result" in node or "error" in node:
            return  # a response from the client: signal-cli only logs it
        if node.get("method") in self.stalled:
            await asyncio.Event().wait()  # a hung signal-cli: no answer, ever
        if self.send_delay and node.get("method") == "send":
            await asyncio.sleep(self.send_delay)  # other requests go on meanwhile
        answer = self._request(conn, node)
        if answer is not None:
            self._write(conn, answer)

    def _error(self, conn: _Conn, code: int, message: str, rid: object) -> None:
        error = {"code": code, "message": message, "data": None}
        self._write(conn, {"jsonrpc": "2.0", "error": error, "id": rid})

    def _request(self, conn: _Conn, node: Any) -> dict[str, Any] | None:
        rid = node.get("id") if isinstance(node, dict) else None
        if isinstance(rid, (dict, list)):
            rid = None
        # A malformed request is answered even without an id (with ``id: null``)...
        invalid = _invalid(node)
        if invalid is not None:
            error = {"code": methods.INVALID_REQUEST, "message": invalid, "data": None}
            return {"jsonrpc": "2.0", "error": error, "id": rid}
        method = node["method"]
        with self._lock:
            self.requests.append({"method": method, "params": node.get("params")})
        try:
            result = self._dispatch(conn, method, node.get("params"))
        except RpcError as exc:
            if rid is None:
                return None  # ...but a failed call without id is not.
            error = {"code": exc.code, "message": exc.message, "data": exc.data}
            return {"jsonrpc": "2.0", "error": error, "id": rid}
        if rid is None:
            return None  # a notification: no answer, as signal-cli does
        return {"jsonrpc": "2.0", "result": result, "id": rid}

    def _dispatch(self, conn: _Conn, method: str, params: Any) -> Any:
        if method == "subscribeReceive":
            sub = next(self._ids)
            conn.subs.add(sub)
            self.subscriptions_opened += 1
            self._pump()
            return sub
        if method == "subscribeCallEvents":
            sub = next(self._ids)
            conn.calls.add(sub)
            return sub
        if method in ("unsubscribeReceive", "unsubscribeCallEvents"):
            return self._unsubscribe(conn, method, params)
        if method not in OPTIONS:
            # Registration commands exist only in multi-account mode; unknown names too.
            raise RpcError(methods.METHOD_NOT_FOUND, "Method not implemented")
        if params is not None and not isinstance(params, dict):
            # Commands bind params to a map: an array cannot be.
            raise RpcError(
                methods.INVALID_REQUEST,
                "Cannot deserialize value of type `java.util.LinkedHashMap` from Array value",
            )
        ns = namespace(method, params or {})
        unknown = ns.unknown()
        if unknown:
            with self._lock:
                self.violations.extend(f"{method}: unknown param {k}" for k in unknown)
        return methods.call(self, method, ns)

    def _unsubscribe(self, conn: _Conn, method: str, params: Any) -> Any:
        sub: int | None = None
        if isinstance(params, list) and params:
            sub = params[0] if isinstance(params[0], int) else None
        elif isinstance(params, dict) and isinstance(params.get("subscription"), int):
            sub = params["subscription"]
        if method == "unsubscribeCallEvents":
            if sub is None:
                raise RpcError(
                    methods.USER_ERROR, "Missing subscription parameter with subscription id"
                )
            if sub not in conn.calls:
                raise RpcError(methods.USER_ERROR, "Unknown subscription id")
            conn.calls.discard(sub)
            return {}
        if sub is None:
            # Single-account mode: without an id, one subscription of this connection ends.
            if conn.auto is not None:
                conn.auto = None
            elif conn.subs:
                conn.subs.discard(min(conn.subs))
            return {}
        if sub == conn.auto:
            conn.auto = None
        elif sub in conn.subs:
            conn.subs.discard(sub)
        else:
            raise RpcError(methods.USER_ERROR, "Unknown subscription id")
        return {}


def _invalid(node: Any) -> str | None:
    """Why signal-cli refuses this request before running it (-32600), or None."""
    if not isinstance(node, dict):
        return "invalid request"
    if node.get("params", 0) is None:
        del node["params"]  # signal-cli's workaround for clients sending null
    if node.get("jsonrpc") != "2.0":
        return "only jsonrpc version 2.0 is supported"
    if not isinstance(node.get("method"), str):
        return "method field must be set"
    return None


@contextlib.contextmanager
def run_fake_signal_cli_daemon(
    number: str = ORG_NUMBER,
    *,
    receive_mode: str = "manual",
    socket_path: Path | None = None,
) -> Iterator[FakeSignalCliDaemon]:
    """Serve a fresh fake in a background thread, on 127.0.0.1 (ephemeral TCP port) or on
    the UNIX socket ``socket_path``; ``fake.target`` is the ``SIGNAL_CLI`` value."""
    fake = FakeSignalCliDaemon(number, receive_mode=receive_mode)
    ready = threading.Event()
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        fake._loop = asyncio.get_running_loop()
        if socket_path is not None:
            server = await asyncio.start_unix_server(
                fake.serve_connection, path=str(socket_path), limit=16 * 1024 * 1024
            )
            fake.target = f"unix:{socket_path}"
        else:
            server = await asyncio.start_server(
                fake.serve_connection, "127.0.0.1", 0, limit=16 * 1024 * 1024
            )
            port = server.sockets[0].getsockname()[1]
            fake.target = f"tcp://127.0.0.1:{port}"
        ready.set()
        await stop.wait()
        fake._close_all(True)
        server.close()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    if not ready.wait(5):
        raise RuntimeError("the fake signal-cli daemon did not start")
    try:
        yield fake
    finally:
        loop = fake._loop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(5)
        if fake._tmp is not None:
            fake._tmp.cleanup()
