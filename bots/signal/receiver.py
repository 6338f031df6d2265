"""The Signal receive loop: the backend's receive session → parsed → ``accept``.

The session is signal-cli-rest-api's websocket ``GET /v1/receive/{number}`` or a
subscription on signal-cli's own daemon (see :mod:`bots.signal.seam`). The loop never ends
on its own: after any close, clean or not, it reconnects at once, then with short jittered
backoff while connections keep failing. Nothing about a frame's
content is logged: drop reasons, kinds, counts, close codes and exception *types* only.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from bots.signal.envelope import Dropped, DropReason, ParsedMessage, parse_frame
from bots.signal.transport import SignalTransport
from relay.messages import Inbound

log = logging.getLogger(__name__)

Accept = Callable[[Inbound], Awaitable[None]]

# Drops too frequent to log above debug level.
_QUIET_DROPS = frozenset({DropReason.TYPING, DropReason.RECEIPT})


class Backoff:
    """Capped exponential backoff with full jitter; the first retry is (nearly) at once."""

    def __init__(self, initial: float, maximum: float, factor: float = 2.0) -> None:
        self._initial = initial
        self._maximum = maximum
        self._factor = factor
        self._attempt = 0

    def next(self) -> float:
        """The delay before the next attempt."""
        ceiling = min(self._maximum, self._initial * self._factor**self._attempt)
        self._attempt += 1
        # Jitter so that many receivers (or a restart) do not reconnect in lockstep.
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311  (not for security)

    def reset(self) -> None:
        """Start over after a healthy connection."""
        self._attempt = 0


@dataclass
class ReceiverStats:
    """Counts only, for health checks and tests: nothing here names a person."""

    connections: int = 0
    frames: int = 0
    accepted: int = 0
    duplicates: int = 0
    failures: int = 0
    dropped: Counter[str] = field(default_factory=Counter)


class DedupWindow:
    """The last ``size`` keys seen, in memory (the core de-duplicates durably too)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._keys: OrderedDict[str, None] = OrderedDict()

    def seen(self, key: str) -> bool:
        """Whether ``key`` was seen before; remembers it either way."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return True
        self._keys[key] = None
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return False


class SignalReceiver:
    """Receives the org number's messages and hands each one to ``accept``.

    ``accept`` is the core's callback; an exception in it for one frame is logged with a
    reference and the loop goes on. Run with ``await receiver.run()`` (in a task group);
    :meth:`stop` ends it after the frame in hand, if any, is handled.
    """

    def __init__(
        self,
        transport: SignalTransport,
        accept: Accept,
        *,
        dedup_window: int = 4096,
        backoff_initial: float = 0.1,
        backoff_max: float = 10.0,
        healthy_after: float = 30.0,
        frame_timeout: float = 120.0,
        keepalive_interval: float | None = 20.0,
    ) -> None:
        self._transport = transport
        self._client = transport.client
        self._accept = accept
        self._dedup = DedupWindow(dedup_window)
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._healthy_after = healthy_after
        self._frame_timeout = frame_timeout
        self._keepalive = keepalive_interval
        self._scope: anyio.CancelScope | None = None
        self._stopped = False
        self.stats = ReceiverStats()

    def stop(self) -> None:
        """Stop receiving; :meth:`run` returns once the frame in hand is handled."""
        self._stopped = True
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> None:
        """Receive until :meth:`stop`; reconnects after every close or failure."""
        with anyio.CancelScope() as scope:
            self._scope = scope
            while not self._stopped:
                await self._session()
                delay = self._backoff.next()
                log.info("signal receive: reconnecting in %.2f s", delay)
                await anyio.sleep(delay)
        self._scope = None

    async def _session(self) -> None:
        """One receive session, from connect to close. Never raises an Exception."""
        opened = anyio.current_time()
        try:
            async with self._client.receive_frames(keepalive=self._keepalive) as frames:
                self.stats.connections += 1
                log.info("signal receive: connected")
                async for frame in frames:
                    # A frame arrived: the connection works, so reconnect at once next time.
                    self._backoff.reset()
                    await self._handle(frame)
        except Exception as exc:  # noqa: BLE001  (the loop must outlive any failure)
            log.warning("signal receive: connection failed (%s)", _type_names(exc))
        if anyio.current_time() - opened >= self._healthy_after:
            self._backoff.reset()

    async def _handle(self, raw: object) -> None:
        """One frame: parse, de-duplicate, fetch attachments, hand to the core."""
        self.stats.frames += 1
        result = parse_frame(raw, own_number=self._client.number)
        if isinstance(result, Dropped):
            await self._drop(result)
            return
        kind = result.inbound.kind
        if self._dedup.seen(result.inbound.dedup_key):
            self.stats.duplicates += 1
            log.info("signal frame duplicate: %s", kind)
            return
        # Shielded: stop() lets the frame in hand finish rather than lose it half-way.
        deadline = anyio.current_time() + self._frame_timeout
        with anyio.CancelScope(shield=True, deadline=deadline) as scope:
            await self._deliver(result)
        if scope.cancelled_caught:
            reference = secrets.token_hex(4)
            self.stats.failures += 1
            log.error("signal frame %s: not handled in time, reference %s", kind, reference)

    async def _deliver(self, parsed: ParsedMessage) -> None:
        """Hand one message to the core; failures are logged here with a reference."""
        try:
            inbound = await self._transport.to_inbound(parsed)
            await self._accept(inbound)
        except Exception as exc:  # noqa: BLE001  (one bad frame must not stop the others)
            reference = secrets.token_hex(4)
            self.stats.failures += 1
            # The type only: exception messages can carry content or identifiers.
            log.error(  # noqa: TRY400  (a traceback could show content)
                "signal frame %s: handling failed (%s), reference %s",
                parsed.inbound.kind,
                type(exc).__name__,
                reference,
            )
            return
        self.stats.accepted += 1
        log.info("signal frame accepted: %s", parsed.inbound.kind)

    async def _drop(self, dropped: Dropped) -> None:
        self.stats.dropped[dropped.reason] += 1
        level = logging.DEBUG if dropped.reason in _QUIET_DROPS else logging.INFO
        log.log(level, "signal frame dropped: %s", dropped.reason)
        for attachment_id in dropped.attachment_ids:
            await self._transport.discard_attachment(attachment_id)


def _type_names(exc: BaseException) -> str:
    """Exception type names, unwrapping groups; never the messages."""
    if isinstance(exc, BaseExceptionGroup):
        return ", ".join(sorted({_type_names(e) for e in exc.exceptions}))
    return type(exc).__name__
