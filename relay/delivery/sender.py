"""The delivery engine: sends the rows it claims (:mod:`relay.delivery.claims`), concurrently
and at their pacing slots, and records what happened: sent, retried with backoff, held, or
failed for good (and then reported to staff).

The loop sleeps on the wake-up bell (:mod:`relay.delivery.bell`) between rounds. How hard it
tries is the :class:`~relay.delivery.policy.DeliveryPolicy`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import anyio
from sqlalchemy import Engine, bindparam, func, select, update
from sqlmodel import Session, col

from relay.delivery import recall
from relay.delivery.bell import Bell
from relay.delivery.claims import Claimer, Job
from relay.delivery.lease import dead_here
from relay.delivery.outbox import (
    NOTIFY_CHANNEL,
    OutboxWriter,
    watch_outbox,
)
from relay.delivery.policy import DeliveryPolicy, Service
from relay.errors import (
    DeliveryError,
    IdentityChangedError,
    PermanentError,
    RateLimitedError,
    Reason,
    RecipientGoneError,
    RetryableError,
)
from relay.messages import Channel, SendReceipt
from relay.storage.engine import is_postgres, listen, transaction
from relay.storage.models import (
    OPEN_STATES,
    Outbox,
    OutboxKind,
    OutboxState,
)
from relay.transport import Transport

__all__ = ["Bell", "Deliverer", "DeliveryPolicy", "Job", "Service", "now_plus", "pending_count"]

log = logging.getLogger(__name__)


class Deliverer(Claimer):
    """Sends what the outbox holds through the transports this process has."""

    def __init__(
        self,
        relay: Service,
        transports: Mapping[Channel, Transport],
        policy: DeliveryPolicy | None = None,
        worker_id: str | None = None,
    ) -> None:
        super().__init__(relay, transports, policy, worker_id)
        # Set while `run` is running (it owns them).
        self._limiters: dict[str, anyio.CapacityLimiter] | None = None
        self._bell: Bell | None = None
        self._stopping: anyio.Event | None = None
        self._in_flight = 0
        # Channels a provider rate-limited, as this process knows: until when to hold back.
        self._resting: dict[str, datetime] = {}
        self._held = recall.StillHeld(self._still_held)

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
        try:
            freed = await anyio.to_thread.run_sync(self.free_rows_of_dead_workers)
        except Exception:  # noqa: BLE001 - their leases run out instead
            freed = 0
        if freed:
            log.info("delivery: %d row(s) of a killed worker on this host taken back", freed)
        bell = self._bell = Bell()
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

    async def _listen(self, bell: Bell, scope: anyio.CancelScope) -> None:
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

    def free_rows_of_dead_workers(self) -> int:
        """Make due at once the rows held by a worker of this host (same pid namespace) whose
        process is gone (killed, crashed): its restart sends them now instead of after their
        lease, and that member's next messages are not held behind them meanwhile. A copy
        sent but not recorded before the kill goes out again: at least once, as after the
        lease."""
        now = self.clock.now()
        with Session(self.engine) as s:
            owners = (
                s.execute(
                    select(col(Outbox.lease_owner))
                    .where(col(Outbox.state) == OutboxState.SENDING, col(Outbox.lease_until) > now)
                    .distinct()
                )
                .scalars()
                .all()
            )
        dead = [o for o in owners if o and o != self.worker_id and dead_here(o)]
        if not dead:
            return 0
        with transaction(self.engine) as s:
            freed = s.execute(
                update(Outbox)
                .where(col(Outbox.lease_owner).in_(dead), col(Outbox.state) == OutboxState.SENDING)
                .values(lease_until=now)
            ).rowcount  # type: ignore[attr-defined]
        return int(freed or 0)

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
        q = select(func.count()).select_from(Outbox).where(Outbox.state.in_(OPEN_STATES))  # type: ignore[attr-defined]
        if channels:
            q = q.where(Outbox.channel.in_(channels))  # type: ignore[attr-defined]
        return int(s.execute(q).scalar_one())


def now_plus(now: datetime, seconds: float) -> datetime:
    """``now`` plus ``seconds`` (small helper for tests)."""
    return now + timedelta(seconds=seconds)
