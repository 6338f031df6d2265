"""The delivery engine: claims outbox rows under a lease, sends them, records what happened.

Rows for one recipient go out in order: only the oldest open row of each recipient (its
"head") can be claimed, so a timer reset always lands before the messages queued after it,
and an edit never overtakes the message it edits. A worker that dies mid-send leaves its rows
in ``sending``; once their lease expires any worker claims them again (at-least-once).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import anyio
from sqlalchemy import Engine, and_, bindparam, func, or_, select, true, update
from sqlmodel import Session, col

from relay.clock import Clock
from relay.delivery import recall
from relay.delivery.outbox import (
    ADDRESS_CONTEXT,
    NOTIFY_CHANNEL,
    OutboxWriter,
    open_payload,
    watch_outbox,
)
from relay.delivery.pacing import Pace, Pacer
from relay.delivery.recipient_pacing import Planned, RecipientPacer
from relay.errors import (
    DeliveryError,
    IdentityChangedError,
    PermanentError,
    RateLimitedError,
    Reason,
    RecipientGoneError,
    RetryableError,
)
from relay.messages import Attachment, Channel, Outgoing, QuoteOut, SendReceipt
from relay.storage.crypto import DataKeys
from relay.storage.engine import is_postgres, listen, transaction
from relay.storage.models import Inbound, Member, Outbox, OutboxBody, OutboxKind, OutboxState
from relay.transport import Transport

log = logging.getLogger(__name__)

_HEAD_STATES = (OutboxState.PENDING, OutboxState.SENDING, OutboxState.RETRY, OutboxState.HELD)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try. Backoff is exponential with full jitter, capped."""

    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 8
    base_backoff: float = 2.0
    max_backoff: float = 900.0
    batch: int = 50
    concurrency: int = 16
    # Per-channel send rate shared by all workers; channels not listed are not paced.
    paces: Mapping[str, Pace] = field(default_factory=dict)
    # Per-recipient pace on a channel (Signal: per sender-recipient pair), shared by all
    # workers; such a channel also needs an entry in `paces` (its whole-number ceiling).
    recipient_paces: Mapping[str, Pace] = field(default_factory=dict)
    # Sends in flight at once per channel in this worker (default: `concurrency`, shared).
    channel_concurrency: Mapping[str, int] = field(default_factory=dict)
    # How long a channel rests after a rate limit that did not say for how long.
    rate_limit_pause: float = 5.0
    # How far ahead (seconds) a worker takes send slots on a paced channel and sleeps until
    # each: long enough that the channel's schedule never runs dry between two claims, short
    # enough that a 429 stops everyone quickly. Far shorter than the lease.
    pace_lookahead: float = 1.0

    def __post_init__(self) -> None:
        if self.pace_lookahead < 0:
            raise ValueError("the pacing lookahead cannot be negative")
        if set(map(str, self.recipient_paces)) - set(map(str, self.paces)):
            raise ValueError("a channel paced per recipient needs a channel pace (its ceiling)")
        if any(n < 1 for n in self.channel_concurrency.values()):
            raise ValueError("sends in flight per channel must be at least 1")

    @property
    def lookahead(self) -> float:
        """The pacing lookahead, never more than a quarter of the lease: a row must not wait
        for its slot so long that its lease runs out and another worker sends it too."""
        return min(self.pace_lookahead, self.lease.total_seconds() / 4)

    def backoff(self, attempts: int) -> float:
        """Seconds to wait before attempt ``attempts + 1``."""
        ceiling = min(self.max_backoff, self.base_backoff * (2 ** max(attempts - 1, 0)))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


@dataclass(frozen=True)
class Job:
    """A claimed row, resolved to what the transport needs."""

    row_id: int
    recipient_id: int
    channel: Channel
    kind: OutboxKind
    message: Outgoing  # for timers and trust rows, only the address matters
    timer_seconds: int | None
    report_failure: bool
    # On a paced channel: the send slot this job was given (clock time); it sleeps until then.
    not_before: datetime | None = None
    # A copy of a member's message, which a facilitator may remove while it waits to go out.
    revocable: bool = False


class _Bell:
    """Wakes the delivery loop early; rung from any thread (e.g. the thread that committed
    a fan-out), heard in the loop's thread. Needs the asyncio backend to be heard across
    threads; on another backend only rings from the loop's own thread are heard."""

    def __init__(self) -> None:
        self.rung = False
        self._event = anyio.Event()
        self._thread = threading.get_ident()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    def ring(self) -> None:
        """Wake the loop (safe from any thread; never blocks)."""
        if threading.get_ident() == self._thread:
            self._ring()
        elif self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                self._loop.call_soon_threadsafe(self._ring)

    def _ring(self) -> None:
        self.rung = True
        self._event.set()

    async def doze(self, seconds: float, stop: anyio.Event) -> None:
        """Sleep up to ``seconds``, less if rung (since ``rung`` was cleared) or
        stopped."""
        if self.rung:
            return
        self._event = anyio.Event()
        with anyio.move_on_after(seconds):
            async with anyio.create_task_group() as tg:

                async def until(event: anyio.Event) -> None:
                    await event.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(until, stop)
                tg.start_soon(until, self._event)


class Service(Protocol):
    """What the sender needs of the relay service (:class:`relay.service.relay.Relay`):
    where a member is reached, and whom to tell when a message fails for good."""

    @property
    def engine(self) -> Engine:
        """The database."""
        ...

    @property
    def keys(self) -> DataKeys:
        """Opens sealed addresses and payloads."""
        ...

    @property
    def clock(self) -> Clock:
        """The time."""
        ...

    def delivery_address(self, member: Member) -> str | None:
        """Where to send to ``member``."""
        ...

    def report_failure(self, recipient_id: int, reason: Reason) -> None:
        """Tell the recipient's group staff that a message could not reach them."""
        ...


Bell = _Bell  # also wakes the SMS inbox loop (cercle.providers)


class Deliverer:
    """Sends what the outbox holds through the transports this process has."""

    def __init__(
        self,
        relay: Service,
        transports: Mapping[Channel, Transport],
        policy: DeliveryPolicy | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.relay = relay
        self.engine: Engine = relay.engine
        self.keys: DataKeys = relay.keys
        self.clock = relay.clock
        self.transports = dict(transports)
        self.policy = policy or DeliveryPolicy()
        self.worker_id = worker_id or secrets.token_hex(8)
        self.pacer = Pacer(self.engine, self.clock, self.policy.paces)
        self.recipients = RecipientPacer(self.policy.recipient_paces)
        # Seconds until a paced channel is worth claiming again (set by each claim round).
        self.wait_hint: float | None = None
        # Set while `run` is running (it owns them).
        self._limiters: dict[str, anyio.CapacityLimiter] | None = None
        self._bell: _Bell | None = None
        self._stopping: anyio.Event | None = None
        self._in_flight = 0
        # Channels a provider rate-limited, as this process knows: until when to hold back.
        self._resting: dict[str, datetime] = {}
        self._held = recall.StillHeld(self._still_held)

    # --- claiming -------------------------------------------------------------------------

    def claim(self, limit: int | None = None, channels: Sequence[str] | None = None) -> list[Job]:
        """Lease up to ``limit`` due head rows on ``channels`` (default: all of ours).

        Only the oldest open row of each recipient is a candidate. Candidates are re-checked
        by the UPDATE that leases them, which returns only the rows this worker won: two
        workers can never both hold a row. On PostgreSQL the candidates are locked first with
        ``FOR UPDATE SKIP LOCKED`` so concurrent claimers pick disjoint rows instead of
        queueing behind each other; on SQLite the UPDATE runs under the single writer lock.
        A head row stays the head until it is final (new rows have larger ids and final rows
        never reopen), so re-checking that it is still *due* is enough.

        This ignores pacing: the delivery loop uses :meth:`claim_paced`.
        """
        limit = limit or self.policy.batch
        chosen = [str(c) for c in (channels if channels is not None else self.transports)]
        if not chosen or limit <= 0:
            return []
        with transaction(self.engine) as s:
            now = self.clock.now()
            ids = self._candidates(s, limit, chosen, now)
            return self._jobs(s, self._lease(s, ids, now)) if ids else []

    def claim_paced(self, lookahead: float | None = None, limit: int | None = None) -> list[Job]:
        """Claim what the channels' shared pacing allows, each row with its send slot.

        Unpaced channels (the sandbox) are claimed together, with no slot. On each paced
        channel the rows are claimed and their slots taken in one transaction that holds the
        channel's pacing row, so a worker takes exactly as many slots as rows it won and the
        channel's schedule stays one unbroken line spaced ``1/rate`` apart across workers.
        Slots reach at most ``lookahead`` seconds ahead (default: the policy's); 0 means only
        what may go out right now. Sets :attr:`wait_hint` when a paced channel must wait.
        """
        self.wait_hint = None
        ahead = self.policy.lookahead if lookahead is None else lookahead
        limit = self.policy.batch if limit is None else min(limit, self.policy.batch)
        if limit <= 0:
            return []
        free = [str(c) for c in self.transports if not self.pacer.paced(str(c))]
        jobs = self.claim(limit=limit, channels=free) if free else []
        for channel in (str(c) for c in self.transports if self.pacer.paced(str(c))):
            jobs.extend(self._claim_channel(channel, limit, ahead))
        return jobs

    def _claim_channel(self, channel: str, limit: int, lookahead: float) -> list[Job]:
        # A read-only look first: an idle or waiting worker takes no lock and writes nothing.
        offer = self.pacer.available(channel, limit, lookahead)
        if offer.tokens == 0:
            self._hint(offer.wait)
            return []
        per_recipient = self.recipients.paced(channel)
        with transaction(self.engine) as s:
            now = self.clock.now()
            ready = self.recipients.ready(channel, now, lookahead) if per_recipient else None
            ids = self._candidates(s, offer.tokens, [channel], now, ready)
            if not ids:
                if per_recipient:
                    self._hint(lookahead / 2)  # recipients' paces may allow them by then
                return []
            # Candidates first, then the pacing row: a worker never holds the pacing row
            # while it waits for anything else, and on PostgreSQL it only holds rows that
            # other claimers skip. Recipients' paces are read under the pacing row's lock.
            row, now = self.pacer.lock(s, channel)
            planned = self.recipients.plan(s, channel, ids, now, lookahead) if per_recipient else []
            if per_recipient:
                ids = [p.row_id for p in planned]
                if not ids:  # their recipients were paced meanwhile: look again later
                    self._hint(lookahead / 2)
                    return []
            offer = self.pacer.plan(row, now, len(ids), lookahead)
            if offer.tokens == 0:
                self._hint(offer.wait)
                return []
            jobs = self._jobs(s, self._lease(s, ids[: offer.tokens], now))
            grant = self.pacer.spend(s, row, now, len(jobs), lookahead)
            self._hint(grant.wait)
            jobs = [replace(j, not_before=t) for j, t in zip(jobs, grant.slots, strict=True)]
            if per_recipient:
                jobs = self._pace_recipients(s, channel, jobs, planned, now)
            return jobs

    def _pace_recipients(
        self, s: Session, channel: str, jobs: list[Job], planned: list[Planned], now: datetime
    ) -> list[Job]:
        """Each job goes at the later of its channel slot and its recipient's; the
        recipients' paces record the sends of the rows won."""
        by_row = {p.row_id: p for p in planned}
        won = [by_row[j.row_id] for j in jobs]
        self.recipients.spend(s, channel, won, now)
        return [
            replace(j, not_before=max(j.not_before or p.slot, p.slot))
            for j, p in zip(jobs, won, strict=True)
        ]

    def _candidates(
        self, s: Session, limit: int, channels: list[str], now: datetime, ready: Any = None
    ) -> list[int]:
        """Ids of due rows that may go out now: trust rows, then recipients' head rows
        (``ready``: an extra filter on head rows, e.g. their recipient's pace)."""
        due = self._due(now)
        # A trust row must overtake the held row it unblocks, so it skips the queue.
        trust = select(col(Outbox.id)).where(
            col(Outbox.kind) == OutboxKind.TRUST, due, col(Outbox.channel).in_(channels)
        )
        heads = (
            select(col(Outbox.recipient_id), func.min(col(Outbox.id)).label("head"))
            .where(
                col(Outbox.state).in_(_HEAD_STATES),
                col(Outbox.channel).in_(channels),
                col(Outbox.kind) != OutboxKind.TRUST,
            )
            .group_by(col(Outbox.recipient_id))
            .subquery()
        )
        query = (
            select(col(Outbox.id))
            .join(heads, col(Outbox.id) == heads.c.head)
            .where(due, true() if ready is None else ready)
            .order_by(col(Outbox.id))
            .limit(limit)
        )
        if is_postgres(self.engine):
            trust = trust.with_for_update(skip_locked=True, of=Outbox)
            query = query.with_for_update(skip_locked=True, of=Outbox)
        ids = list(s.execute(trust.limit(limit)).scalars())
        return (
            ids + list(s.execute(query.limit(limit - len(ids))).scalars())
            if len(ids) < limit
            else ids
        )

    @staticmethod
    def _due(now: datetime) -> Any:
        return or_(
            col(Outbox.state) == OutboxState.PENDING,
            and_(col(Outbox.state) == OutboxState.RETRY, col(Outbox.next_attempt_at) <= now),
            and_(col(Outbox.state) == OutboxState.SENDING, col(Outbox.lease_until) <= now),
        )

    def _lease(self, s: Session, ids: list[int], now: datetime) -> list[int]:
        """Lease the candidates that are still due; the ids this worker won."""
        if not ids:
            return []
        return list(
            s.execute(
                update(Outbox)
                .where(col(Outbox.id).in_(ids), self._due(now))
                .values(
                    state=OutboxState.SENDING,
                    lease_owner=self.worker_id,
                    lease_until=now + self.policy.lease,
                    attempts=Outbox.attempts + 1,
                )
                .returning(col(Outbox.id))
            ).scalars()
        )

    def _jobs(self, s: Session, won: list[int]) -> list[Job]:
        """Resolve leased rows to jobs, oldest first (rows that cannot go are closed)."""
        if not won:
            return []
        query = select(Outbox).where(col(Outbox.id).in_(won)).order_by(col(Outbox.id))
        rows = list(s.execute(query).scalars())
        # Recipients and bodies in two statements, not two per row; held in these lists so
        # that the session's (weak) identity map serves `s.get` in `_resolve`.
        recipients = {r.recipient_id for r in rows}
        bodies = {r.body_id for r in rows if r.body_id is not None}
        held = [
            *s.execute(select(Member).where(col(Member.id).in_(recipients))).scalars(),
            *s.execute(select(OutboxBody).where(col(OutboxBody.id).in_(bodies))).scalars(),
        ]
        payloads: dict[int, dict[str, Any]] = {}  # one body is shared by a whole fan-out
        jobs = [job for row in rows if (job := self._resolve(s, row, payloads)) is not None]
        del held
        return jobs

    def _hint(self, wait: float) -> None:
        self.wait_hint = wait if self.wait_hint is None else min(self.wait_hint, wait)

    def _resolve(self, s: Session, row: Outbox, payloads: dict[int, dict[str, Any]]) -> Job | None:
        assert row.id is not None  # noqa: S101 - rows read from the database have ids
        member = s.get(Member, row.recipient_id)
        address: str | None = None
        if row.address_enc is not None:
            address = self.keys.decrypt_text(row.address_enc, ADDRESS_CONTEXT)
        elif member is not None:
            address = self.relay.delivery_address(member)
        payload: dict[str, Any] = {}
        if row.body_id is not None:
            if row.body_id not in payloads:
                body = s.get(OutboxBody, row.body_id)
                sealed = body.payload_enc if body is not None else None
                payloads[row.body_id] = open_payload(self.keys, sealed) if sealed else {}
            payload = payloads[row.body_id]
        if address is None:
            self._finish(s, row, OutboxState.CANCELLED)
            return None
        kind = OutboxKind(row.kind)
        if kind == OutboxKind.TRUST:
            return Job(
                row.id,
                row.recipient_id,
                Channel(row.channel),
                kind,
                Outgoing(address=address, text=""),
                None,
                False,
            )
        if kind == OutboxKind.TIMER:
            return Job(
                row.id,
                row.recipient_id,
                Channel(row.channel),
                kind,
                Outgoing(address=address, text=""),
                int(payload["seconds"]),
                row.report_failure,
            )
        quote, target_ref = self._refs(s, row)
        if kind == OutboxKind.DELETE and target_ref is None:
            # A facilitator's removal names the copy itself (relay/delivery/recall.py).
            target_ref = payload.get("delete_ref")
        if kind in (OutboxKind.EDIT, OutboxKind.DELETE) and target_ref is None:
            self._finish(s, row, OutboxState.CANCELLED)  # their copy never arrived
            return None
        attachments = tuple(
            Attachment(a["content_type"], base64.b64decode(a["data"]), a["filename"])
            for a in payload.get("attachments", ())
        )
        message = Outgoing(
            address=address,
            text=payload.get("text", ""),
            attachments=attachments,
            quote=quote if kind == OutboxKind.MESSAGE else None,
            edit_ref=target_ref if kind == OutboxKind.EDIT else None,
            delete_ref=target_ref if kind == OutboxKind.DELETE else None,
            view_once=bool(payload.get("view_once", False)),
            extra={"media_note": payload["media_note"]} if "media_note" in payload else {},
        )
        return Job(
            row.id,
            row.recipient_id,
            Channel(row.channel),
            kind,
            message,
            None,
            row.report_failure,
            revocable=kind == OutboxKind.MESSAGE and row.inbound_id is not None,
        )

    def _refs(self, s: Session, row: Outbox) -> tuple[QuoteOut | None, str | None]:
        """The recipient's own id for the target message: their original, or their copy."""
        if row.target_inbound_id is None:
            return None, None
        target = s.get(Inbound, row.target_inbound_id)
        if target is None:
            return None, None
        if target.member_id == row.recipient_id and target.author_ref:
            return QuoteOut(target.author_ref, by_recipient=True), target.author_ref
        copy_ref = s.execute(
            select(col(Outbox.provider_ref)).where(
                col(Outbox.inbound_id) == target.id,
                col(Outbox.recipient_id) == row.recipient_id,
                col(Outbox.kind) == OutboxKind.MESSAGE,
                col(Outbox.state) == OutboxState.SENT,
            )
        ).scalar()
        if copy_ref is None:
            return None, None
        return QuoteOut(copy_ref, by_recipient=False), copy_ref

    # --- sending --------------------------------------------------------------------------

    async def run_once(self, lookahead: float | None = None) -> int:
        """Claim one batch and send it concurrently. Returns how many rows were attempted.

        Paced rows are sent at their slots (``lookahead`` as in :meth:`claim_paced`).
        Successes are recorded together when the batch ends (one statement for the batch):
        if this process dies before that, those rows are sent again once their lease
        expires. That is the at-least-once promise; nothing is ever lost.
        """
        jobs = await anyio.to_thread.run_sync(self.claim_paced, lookahead)
        if not jobs:
            return 0
        await self._deliver(jobs, self._new_limiters())
        return len(jobs)

    def _new_limiters(self) -> dict[str, anyio.CapacityLimiter]:
        """Limits on sends in flight: one per channel that has its own, one shared ("")."""
        limiters = {"": anyio.CapacityLimiter(self.policy.concurrency)}
        for channel, n in self.policy.channel_concurrency.items():
            limiters[str(channel)] = anyio.CapacityLimiter(n)
        return limiters

    async def drain(self, max_rounds: int = 1000) -> int:
        """Send until nothing is due (tests, the CLI and the sandbox). Returns rows attempted.

        Paced channels send only what their bucket holds now (no slots ahead), so this
        returns instead of waiting out a long queue at the provider's rate.
        """
        total = 0
        for _ in range(max_rounds):
            n = await self.run_once(lookahead=0.0)
            if n == 0:
                return total
            total += n
        return total

    async def run(self, stop: anyio.Event, idle: float = 0.5) -> None:
        """Deliver until ``stop`` is set; a failure in one round never ends the loop.

        Claims overlap: the next claim does not wait for the previous batch to finish, so a
        paced channel's next slots are taken before the current ones run out. At most
        ``batch`` rows are in flight, so a crash re-sends at most one batch's worth. The loop
        sleeps until the first of: new outbox rows (committed by this process, e.g. an accept
        in ``cercle run``; or on PostgreSQL by any process, through ``LISTEN``), a batch
        finishing, a paced channel worth claiming again, or ``idle`` seconds (retries coming
        due; rows from other processes on SQLite).
        When ``stop`` is set, sends already under way are finished and recorded, rows still
        waiting for their pacing slot are put back at once, and whatever this worker still
        holds when it ends (cancelled by a shutdown deadline) is released: another worker, or
        the next start, takes it at once instead of after the lease.
        """
        self._limiters = self._new_limiters()
        self._stopping = stop
        bell = self._bell = _Bell()
        unwatch = watch_outbox(self.engine, bell.ring)
        room = self.policy.batch
        try:
            async with anyio.create_task_group() as tg:
                listening = anyio.CancelScope()
                if is_postgres(self.engine):
                    tg.start_soon(self._listen, bell, listening)
                while not stop.is_set():
                    bell.rung = False
                    jobs: list[Job] = []
                    self.wait_hint = None
                    if self._in_flight < room:
                        try:
                            jobs = await anyio.to_thread.run_sync(
                                self.claim_paced, None, room - self._in_flight
                            )
                        except Exception:  # the loop must survive anything
                            ref = secrets.token_hex(4)
                            log.exception("delivery round failed (ref %s)", ref)
                    if jobs:
                        self._in_flight += len(jobs)
                        # One batch per channel: a batch is recorded when its last row is
                        # done, so rows waiting for a slot on a slow channel (SMS) must not
                        # hold back the record of another's (Signal), whose recipients'
                        # next rows can only be claimed once it is recorded.
                        for batch in _by_channel(jobs):
                            tg.start_soon(self._deliver_in_flight, batch)
                        continue  # more may be due right now
                    hint = self.wait_hint
                    await bell.doze(idle if hint is None else min(idle, max(hint, 0.001)), stop)
                listening.cancel()
        finally:
            unwatch()
            self._bell = None
            self._stopping = None
            with anyio.CancelScope(shield=True):
                try:
                    released = await anyio.to_thread.run_sync(self.release_held)
                except Exception:  # noqa: BLE001 - the leases run out instead
                    log.warning("delivery: claimed rows not released (database unavailable)")
                else:
                    if released:
                        log.info("delivery: %d claimed row(s) released at stop", released)

    async def _listen(self, bell: _Bell, scope: anyio.CancelScope) -> None:
        """On PostgreSQL, ring the bell when another process commits outbox rows (``LISTEN``
        on one extra connection). If that fails the loop still polls every ``idle`` s."""
        with scope:
            await listen(self.engine, NOTIFY_CHANNEL, bell.ring, "new outbox rows")

    async def _deliver_in_flight(self, jobs: list[Job]) -> None:
        assert self._limiters is not None  # noqa: S101 - set by run
        try:
            await self._deliver(jobs, self._limiters)
        except Exception:  # the loop must survive anything; unrecorded rows are re-sent
            ref = secrets.token_hex(4)
            log.exception("delivery batch failed (ref %s)", ref)
        finally:
            self._in_flight -= len(jobs)
            if self._bell is not None:
                self._bell.ring()  # heads behind these rows may be claimed now

    async def _deliver(self, jobs: list[Job], limiters: dict[str, anyio.CapacityLimiter]) -> None:
        sent: list[tuple[Job, SendReceipt]] = []
        async with anyio.create_task_group() as tg:
            for job in jobs:
                limiter = limiters.get(str(job.channel), limiters[""])
                tg.start_soon(self._send_one, job, limiter, sent)
        if sent:
            await anyio.to_thread.run_sync(self._sent_many, sent)

    async def _send_one(
        self, job: Job, limiter: anyio.CapacityLimiter, sent: list[tuple[Job, SendReceipt]]
    ) -> None:
        if job.not_before is not None:
            # A paced row waits for its slot (outside the limiter: waiting is not sending).
            delay = (job.not_before - self.clock.now()).total_seconds()
            if delay > 0:
                stopping = self._stopping
                if stopping is None:
                    await anyio.sleep(delay)
                else:
                    with anyio.move_on_after(delay):
                        await stopping.wait()
                    if stopping.is_set():
                        # Stopping: give the row back now rather than hold the shutdown.
                        await anyio.to_thread.run_sync(self._put_back, job, self.clock.now())
                        return
        transport = self.transports[job.channel]
        async with limiter:
            resting = self._resting.get(str(job.channel)) if job.not_before else None
            if resting is not None and resting > self.clock.now():
                # The provider told this process to slow down while this row waited for its
                # slot or its turn among the sends in flight: do not send it now.
                await anyio.to_thread.run_sync(self._put_back, job, resting)
                return
            if job.revocable and not await self._held.holds(job.row_id):
                return  # a facilitator removed the message after this copy was claimed
            try:
                receipt = await self._call(transport, job)
            except DeliveryError as exc:
                if isinstance(exc, RateLimitedError):
                    # At once, before recording: this worker's rows waiting for a slot on
                    # the channel go back instead of going out (see also Pacer.slow_down).
                    self._rest(str(job.channel), exc.retry_after or self.policy.rate_limit_pause)
                await anyio.to_thread.run_sync(self._failed, job, exc)
                return
            except Exception:  # an adapter bug must not lose the message
                ref = secrets.token_hex(4)
                log.exception("transport %s raised unexpectedly (ref %s)", job.channel, ref)
                await anyio.to_thread.run_sync(
                    self._failed, job, RetryableError(Reason.NETWORK, f"unexpected, ref {ref}")
                )
                return
        sent.append((job, receipt))

    async def _call(self, transport: Transport, job: Job) -> SendReceipt:
        if job.kind == OutboxKind.TIMER:
            if transport.supports_timers and job.timer_seconds is not None:
                await transport.set_timer(job.message.address, job.timer_seconds)
            return SendReceipt()
        if job.kind == OutboxKind.TRUST:
            await transport.trust(job.message.address)
            return SendReceipt()
        message = job.message
        if message.attachments and not transport.supports_media:
            message = message.with_media_note()
        return await transport.send(message)

    # --- recording ------------------------------------------------------------------------

    def _finish(self, s: Session, row: Outbox, state: OutboxState, **values: Any) -> None:
        row.state = state
        row.lease_owner = row.lease_until = None
        row.done_at = self.clock.now()
        if state.is_final:
            row.address_enc = None  # the last words' address copy goes with the row
        for k, v in values.items():
            setattr(row, k, v)
        s.add(row)

    def _still_held(self, row_ids: list[int]) -> set[int]:
        """Which of these rows this worker still holds (a removal cancels claimed rows)."""
        with Session(self.engine) as s:
            held = s.execute(
                select(col(Outbox.id)).where(
                    col(Outbox.id).in_(row_ids),
                    col(Outbox.lease_owner) == self.worker_id,
                    col(Outbox.state) == OutboxState.SENDING,
                )
            ).scalars()
            return set(held)

    def _mine(self, s: Session, job: Job) -> Outbox | None:
        row = s.get(Outbox, job.row_id)
        # If our lease expired and someone else took the row, their result wins.
        if row is None or row.lease_owner != self.worker_id or row.state != OutboxState.SENDING:
            return None
        return row

    def _sent(self, job: Job, receipt: SendReceipt) -> None:
        """Record one success (see :meth:`_sent_many`)."""
        self._sent_many([(job, receipt)])

    def _sent_many(self, done: Sequence[tuple[Job, SendReceipt]]) -> None:
        """Record successes in one statement; rows whose lease we lost are left alone."""
        now = self.clock.now()
        stmt = (
            update(Outbox)
            .where(
                col(Outbox.id) == bindparam("row_id"),
                col(Outbox.lease_owner) == self.worker_id,
                col(Outbox.state) == OutboxState.SENDING,
            )
            .values(
                state=OutboxState.SENT,
                lease_owner=None,
                lease_until=None,
                done_at=now,
                address_enc=None,
                provider_ref=bindparam("ref"),
                segments=bindparam("segs"),
            )
        )
        params = [{"row_id": j.row_id, "ref": r.ref, "segs": r.segments} for j, r in done]
        trusted = [j.recipient_id for j, _ in done if j.kind == OutboxKind.TRUST]
        late = [(j.row_id, r.ref) for j, r in done if j.revocable and r.ref]
        with transaction(self.engine) as s:
            s.connection().execute(stmt, params)
            # A send that raced a removal: its copy is taken back at once.
            recall.recall_late(s, OutboxWriter(s, self.keys, now), late)
            if trusted:
                # Staff confirmed the new safety number: held messages may go out now.
                s.execute(
                    update(Outbox)
                    .where(
                        col(Outbox.recipient_id).in_(trusted),
                        col(Outbox.state) == OutboxState.HELD,
                    )
                    .values(state=OutboxState.PENDING)
                )

    def _rest(self, channel: str, seconds: float) -> None:
        until = self.clock.now() + timedelta(seconds=seconds)
        resting = self._resting.get(channel)
        self._resting[channel] = until if resting is None else max(resting, until)

    def _put_back(self, job: Job, until: datetime) -> None:
        """Return a row that was not sent (its channel is resting): due again at ``until``,
        and the attempt it was claimed for does not count."""
        with transaction(self.engine) as s:
            s.execute(
                update(Outbox)
                .where(
                    col(Outbox.id) == job.row_id,
                    col(Outbox.lease_owner) == self.worker_id,
                    col(Outbox.state) == OutboxState.SENDING,
                )
                .values(
                    state=OutboxState.RETRY,
                    next_attempt_at=until,
                    lease_owner=None,
                    lease_until=None,
                    attempts=Outbox.attempts - 1,
                )
            )

    def release_held(self) -> int:
        """Make every row this worker still holds due again at once (it is stopping): the
        next claim, by any worker, takes it instead of waiting for the lease to run out.
        A row that was sent but not yet recorded may go out again: at least once."""
        with transaction(self.engine) as s:
            released = s.execute(
                update(Outbox)
                .where(
                    col(Outbox.lease_owner) == self.worker_id,
                    col(Outbox.state) == OutboxState.SENDING,
                )
                .values(lease_until=self.clock.now())
            ).rowcount  # type: ignore[attr-defined]
        return int(released or 0)

    def _failed(self, job: Job, exc: DeliveryError) -> None:
        report = False
        slow_down: float | None = None
        with transaction(self.engine) as s:
            row = self._mine(s, job)
            if row is None:
                return
            log.warning(
                "delivery failed on %s: %s (%s, attempt %d)",
                job.channel,
                type(exc).__name__,
                exc.reason,
                row.attempts,
            )
            if isinstance(exc, RateLimitedError) and exc.challenge:
                # A challenge token is not about anyone; an admin needs it to lift the limit.
                log.warning(
                    "Signal asks for a captcha: solve one, then run "
                    "`cercle signal challenge %s CAPTCHA` (messages are kept meanwhile)",
                    exc.challenge,
                    # Shaped like a UUID, so the log filter would mask it: say it is not one.
                    extra={"not_personal": (exc.challenge,)},
                )
                report = job.report_failure
            if isinstance(exc, IdentityChangedError):
                self._finish(s, row, OutboxState.HELD, error_reason=exc.reason)
                report = job.report_failure
            elif isinstance(exc, PermanentError | RecipientGoneError) or (
                row.attempts >= self.policy.max_attempts
            ):
                self._finish(s, row, OutboxState.FAILED, error_reason=exc.reason)
                report = job.report_failure or exc.reason == Reason.OPTED_OUT
            else:
                delay = self.policy.backoff(row.attempts)
                if isinstance(exc, RateLimitedError):
                    pause = exc.retry_after or self.policy.rate_limit_pause
                    delay = max(delay, pause)
                    slow_down = pause
                self._finish(
                    s,
                    row,
                    OutboxState.RETRY,
                    error_reason=exc.reason,
                    next_attempt_at=self.clock.now() + timedelta(seconds=delay),
                )
        if slow_down is not None:
            # Everyone sending on this channel waits, not only this worker.
            self.pacer.slow_down(str(job.channel), slow_down)
        if report:
            self.relay.report_failure(job.recipient_id, exc.reason)


def _by_channel(jobs: list[Job]) -> list[list[Job]]:
    """Jobs split by channel, each list in claim order."""
    batches: dict[Channel, list[Job]] = {}
    for job in jobs:
        batches.setdefault(job.channel, []).append(job)
    return list(batches.values())


def pending_count(engine: Engine, channels: Sequence[str] | None = None) -> int:
    """Rows not yet final (for health checks and tests)."""
    with Session(engine) as s:
        q = select(func.count()).select_from(Outbox).where(Outbox.state.in_(_HEAD_STATES))  # type: ignore[attr-defined]
        if channels:
            q = q.where(Outbox.channel.in_(channels))  # type: ignore[attr-defined]
        return int(s.execute(q).scalar_one())


def now_plus(now: datetime, seconds: float) -> datetime:
    """``now`` plus ``seconds`` (small helper for tests)."""
    return now + timedelta(seconds=seconds)
