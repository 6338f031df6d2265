"""What happens to one received Signal frame, whichever way it came in.

Every receive source (the websocket of signal-cli-rest-api, signal-cli's own daemon) calls
:meth:`FrameIntake.handle` for each frame, one at a time and in order. A message is written,
sealed, to the durable inbox (the :class:`~relay.transport.InboundStash` the application
gives us) before anything else happens to it; only then are its attachments fetched and the
core given it; then it is marked done, and only after that are the server's copies of the
attachments deleted. A crash anywhere in between loses nothing: the next receiver takes
back what was stashed and not done (:meth:`FrameIntake.take_over`), in order, before it
receives anything new, and the core's de-duplication makes a message handed over twice
count once.

Typing indicators, receipts and the other frames Cercle never relays are not stashed: they
are the bulk of the traffic (each relayed message brings a receipt from every recipient), and
losing one loses nothing anyone would see.

Nothing about a frame's content is logged: kinds, counts and exception *types* only.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import anyio

from bots.signal.envelope import Dropped, DropReason, ParsedMessage, parse_frame
from bots.signal.transport import SignalTransport
from relay.doors import Accept
from relay.transport import InboundStash, Stashed

log = logging.getLogger(__name__)


# Drops too frequent to log above debug level.
_QUIET_DROPS = frozenset({DropReason.TYPING, DropReason.RECEIPT})
# Tries to stash one message while the database is unreachable, and the pause between
# them. Frames behind it wait meanwhile (order is kept; on the daemon they wait in the
# socket), so this is short; after it the message is still handed over, not stashed.
_STASH_TRIES = 5
_STASH_PAUSE = 0.5
RETRY_EVERY = 1.0  # seconds between looks for stashed messages whose hand-over failed


@dataclass
class IntakeStats:
    """Counts only, for health checks and tests: nothing here names a person."""

    connections: int = 0
    frames: int = 0
    accepted: int = 0
    duplicates: int = 0
    failures: int = 0
    taken_over: int = 0
    not_stashed: int = 0
    dropped: Counter[str] = field(default_factory=Counter)


class DedupWindow:
    """The last ``size`` keys seen, in memory (the stash and the core de-duplicate durably)."""

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


class FrameIntake:
    """Stash, then hand over, one frame at a time; and take back what was left stashed.

    ``accept`` is the core's callback; an exception in it for one message is logged with a
    reference, the message stays stashed for a later try, and the caller goes on.
    """

    def __init__(
        self,
        transport: SignalTransport,
        accept: Accept,
        stash: InboundStash,
        *,
        dedup_window: int = 4096,
        frame_timeout: float = 120.0,
        retry_every: float = RETRY_EVERY,
    ) -> None:
        self._transport = transport
        self._accept = accept
        self._stash = stash
        self._dedup = DedupWindow(dedup_window)
        self._frame_timeout = frame_timeout
        self._retry_every = retry_every
        self.stats = IntakeStats()

    async def handle(self, raw: object) -> None:
        """One received frame (``{"envelope": …, "account": …}`` or an error/exception frame),
        as text, bytes, or already decoded JSON.

        Returns once the message is stashed and handed over (or left stashed for a later
        try). Never raises an Exception. Cancelling the caller lets the frame in hand finish.
        """
        self.stats.frames += 1
        result = parse_frame(raw, own_number=self._transport.client.number)
        if isinstance(result, Dropped):
            await self._drop(result)
            return
        kind = result.inbound.kind
        if self._dedup.seen(result.inbound.dedup_key):
            self.stats.duplicates += 1
            log.info("signal frame duplicate: %s", kind)
            return
        text = _frame_text(raw)
        ticket: int | None = None
        # Shielded: a stop lets the frame in hand be stashed and handed over, not half-done.
        deadline = anyio.current_time() + self._frame_timeout
        with anyio.CancelScope(shield=True, deadline=deadline) as scope:
            stashed, ticket = await self._stash_frame(result.inbound.dedup_key, text)
            if stashed and ticket is None:
                self.stats.duplicates += 1
                log.info("signal frame duplicate (stashed or accepted before): %s", kind)
                return
            await self._deliver(result, ticket, attempts=1)
        if scope.cancelled_caught:
            self.stats.failures += 1
            log.error(
                "signal frame %s: not handled in time, reference %s", kind, secrets.token_hex(4)
            )
            if ticket is not None:
                await self._later(ticket, 1)

    async def take_over(self) -> int:
        """Hand over everything stashed and not done, oldest first, including what a
        previous receiver had in hand when it stopped or died. Call it once, when this
        process has just taken the receive lease, before receiving anything new (so each
        member's messages keep their order). Returns how many were taken."""
        return await self._redo(everything=True)

    async def retry_loop(self) -> None:
        """Every ``retry_every`` seconds, hand over stashed messages whose hand-over failed
        and whose backoff has passed. Runs until cancelled; never raises an Exception."""
        while True:
            await anyio.sleep(self._retry_every)
            await self._redo(everything=False)

    async def _redo(self, *, everything: bool) -> int:
        try:
            taken = await self._stash.take(everything=everything)
        except Exception as exc:  # noqa: BLE001  (the database may be down: try later)
            log.warning("signal stash not read (%s)", type(exc).__name__)
            return 0
        left = [item.ticket for item in taken]
        try:
            for item in taken:
                with anyio.CancelScope(shield=True):
                    await self._redo_one(item)
                left.remove(item.ticket)
        finally:
            if left:
                # Stopped half-way: what was taken and not handed over is due again at once.
                with anyio.CancelScope(shield=True):
                    try:
                        await self._stash.release(left)
                    except Exception as exc:  # noqa: BLE001  (their hold runs out instead)
                        log.warning("signal stash not released (%s)", type(exc).__name__)
        if taken:
            self.stats.taken_over += len(taken)
            log.info("signal stash: %d message(s) taken back", len(taken))
        return len(taken)

    async def _redo_one(self, item: Stashed) -> None:
        frame = item.payload.get("frame")
        result = parse_frame(frame, own_number=self._transport.client.number)
        if isinstance(result, Dropped):
            # Stashed by an older version that kept it; nothing to hand over now.
            await self._drop(result)
            await self._done(item.ticket)
            return
        self._dedup.seen(result.inbound.dedup_key)
        await self._deliver(result, item.ticket, attempts=item.attempts)

    async def _stash_frame(self, dedup_key: str, text: str) -> tuple[bool, int | None]:
        """(stashed, ticket): ticket ``None`` with stashed true means already known."""
        for attempt in range(1, _STASH_TRIES + 1):
            try:
                return True, await self._stash.put(dedup_key, {"frame": text})
            except Exception as exc:  # noqa: BLE001  (the database is down: wait, retry)
                log.warning("signal frame not stashed, try %d (%s)", attempt, type(exc).__name__)
                if attempt < _STASH_TRIES:
                    await anyio.sleep(_STASH_PAUSE * attempt)
        # Still handed over (the core may be reachable when the stash was not): better a
        # message relayed without its durable copy than one held back from everyone.
        self.stats.not_stashed += 1
        log.error(
            "signal frame not stashed, handed over anyway, reference %s", secrets.token_hex(4)
        )
        return False, None

    async def _deliver(self, parsed: ParsedMessage, ticket: int | None, attempts: int) -> None:
        """Fetch attachments, hand to the core, mark done, then delete the server's copies."""
        kind = parsed.inbound.kind
        try:
            inbound = await self._transport.to_inbound(parsed, keep_copies=True)
            await self._accept(inbound)
        except Exception as exc:  # noqa: BLE001  (one bad message must not stop the others)
            reference = secrets.token_hex(4)
            self.stats.failures += 1
            # The type only: exception messages can carry content or identifiers.
            log.error(  # noqa: TRY400  (a traceback could show content)
                "signal frame %s: handling failed (%s), reference %s%s",
                kind,
                type(exc).__name__,
                reference,
                ", kept for a later try" if ticket is not None else "",
            )
            if ticket is not None:
                await self._later(ticket, attempts)
            return
        if ticket is not None:
            await self._done(ticket)
        await self._transport.discard_copies(parsed)
        self.stats.accepted += 1
        log.info("signal frame accepted: %s", kind)

    async def _done(self, ticket: int) -> None:
        try:
            await self._stash.done(ticket)
        except Exception as exc:  # noqa: BLE001  (taken back later: the core drops it then)
            log.warning("signal stash: done not recorded (%s)", type(exc).__name__)

    async def _later(self, ticket: int, attempts: int) -> None:
        try:
            await self._stash.later(ticket, attempts)
        except Exception as exc:  # noqa: BLE001  (its hold runs out and it is retried)
            log.warning("signal stash: retry not scheduled (%s)", type(exc).__name__)

    async def _drop(self, dropped: Dropped) -> None:
        self.stats.dropped[dropped.reason] += 1
        level = logging.DEBUG if dropped.reason in _QUIET_DROPS else logging.INFO
        log.log(level, "signal frame dropped: %s", dropped.reason)
        for attachment_id in dropped.attachment_ids:
            await self._transport.discard_attachment(attachment_id)


def _frame_text(raw: object) -> str:
    """A frame as the text to stash (a source may hand over decoded JSON)."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw).decode("utf-8", "replace")
    return json.dumps(raw)
