"""The Signal receive loop: the backend's receive session → :class:`FrameIntake`.

The session is signal-cli-rest-api's websocket ``GET /v1/receive/{number}`` or a
subscription on signal-cli's own daemon (see :mod:`bots.signal.seam`). Each frame goes to
:class:`bots.signal.intake.FrameIntake`, which stashes it durably before anything else and
then hands it to the core. The loop never ends on its own: after any close, clean or not, it
reconnects at once, then with short jittered backoff while connections keep failing.
Nothing about a frame's content is logged: close codes, counts and exception *types* only.
"""

from __future__ import annotations

import logging
import random

import anyio

from bots.signal.intake import RETRY_EVERY, DedupWindow, FrameIntake, IntakeStats
from bots.signal.transport import SignalTransport
from relay.doors import Accept
from relay.transport import InboundStash

log = logging.getLogger(__name__)

__all__ = ["Accept", "Backoff", "DedupWindow", "SignalReceiver"]


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


class SignalReceiver:
    """Receives the org number's messages; each frame goes through one :class:`FrameIntake`
    (stashed in ``stash``, then handed to ``accept``).

    Run with ``await receiver.run()`` (in a task group), only in the process that holds the
    receive lease: it first takes back what was stashed and not handed over, then connects.
    :meth:`stop` ends it after the frame in hand, if any, is stashed and handed over.
    """

    def __init__(
        self,
        transport: SignalTransport,
        accept: Accept,
        stash: InboundStash,
        *,
        dedup_window: int = 4096,
        backoff_initial: float = 0.1,
        backoff_max: float = 10.0,
        healthy_after: float = 30.0,
        frame_timeout: float = 120.0,
        keepalive_interval: float | None = 20.0,
        retry_every: float = RETRY_EVERY,
    ) -> None:
        self._transport = transport
        self._client = transport.client
        self.intake = FrameIntake(
            transport,
            accept,
            stash,
            dedup_window=dedup_window,
            frame_timeout=frame_timeout,
            retry_every=retry_every,
        )
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._healthy_after = healthy_after
        self._keepalive = keepalive_interval
        self._scope: anyio.CancelScope | None = None
        self._stopped = False

    @property
    def stats(self) -> IntakeStats:
        """Counts of frames, connections, hand-overs and drops (nothing names a person)."""
        return self.intake.stats

    def stop(self) -> None:
        """Stop receiving; :meth:`run` returns once the frame in hand is handled."""
        self._stopped = True
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> None:
        """Take back what was left stashed, then receive until :meth:`stop`; reconnects
        after every close or failure."""
        with anyio.CancelScope() as scope:
            self._scope = scope
            await self.intake.take_over()
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.intake.retry_loop)
                while not self._stopped:
                    await self._session()
                    delay = self._backoff.next()
                    log.info("signal receive: reconnecting in %.2f s", delay)
                    await anyio.sleep(delay)
                tg.cancel_scope.cancel()
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
                    await self.intake.handle(frame)
        except Exception as exc:  # noqa: BLE001  (the loop must outlive any failure)
            log.warning("signal receive: connection failed (%s)", _type_names(exc))
        if anyio.current_time() - opened >= self._healthy_after:
            self._backoff.reset()


def _type_names(exc: BaseException) -> str:
    """Exception type names, unwrapping groups; never the messages."""
    if isinstance(exc, BaseExceptionGroup):
        return ", ".join(sorted({_type_names(e) for e in exc.exceptions}))
    return type(exc).__name__
