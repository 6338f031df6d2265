"""The delivery engine: claims outbox rows under a lease, sends them, records what happened.

Rows for one recipient go out in order: only the oldest open row of each recipient (its
"head") can be claimed, so a timer reset always lands before the messages queued after it,
and an edit never overtakes the message it edits. A worker that dies mid-send leaves its rows
in ``sending``; once their lease expires any worker claims them again (at-least-once).
"""

from __future__ import annotations

import base64
import logging
import random
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
from sqlalchemy import Engine, and_, func, or_, select, update
from sqlmodel import Session

from relay.crypto import DataKeys
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
from relay.models import Inbound, Member, Outbox, OutboxBody, OutboxKind, OutboxState
from relay.outbox import ADDRESS_CONTEXT, open_payload
from relay.service import Relay
from relay.storage import is_postgres, transaction
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
    message: Outgoing | None
    timer_seconds: int | None
    report_failure: bool


class Deliverer:
    """Sends what the outbox holds through the transports this process has."""

    def __init__(
        self,
        relay: Relay,
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

    # --- claiming -------------------------------------------------------------------------

    def claim(self, limit: int | None = None) -> list[Job]:
        """Lease up to ``limit`` due head rows on our channels and resolve them to jobs."""
        limit = limit or self.policy.batch
        now = self.clock.now()
        channels = [str(c) for c in self.transports]
        if not channels:
            return []
        with transaction(self.engine) as s:
            heads = (
                select(Outbox.recipient_id, func.min(Outbox.id).label("head"))
                .where(
                    Outbox.state.in_(_HEAD_STATES),
                    Outbox.channel.in_(channels),  # type: ignore[attr-defined]
                    Outbox.kind != OutboxKind.TRUST,
                )
                .group_by(Outbox.recipient_id)
                .subquery()
            )
            due = or_(
                Outbox.state == OutboxState.PENDING,
                and_(Outbox.state == OutboxState.RETRY, Outbox.next_attempt_at <= now),  # type: ignore[operator]
                and_(Outbox.state == OutboxState.SENDING, Outbox.lease_until <= now),  # type: ignore[operator]
            )
            query = (
                select(Outbox.id)
                .join(heads, Outbox.id == heads.c.head)
                .where(due)
                .order_by(Outbox.id)
                .limit(limit)
            )
            if is_postgres(self.engine):
                query = query.with_for_update(skip_locked=True, of=Outbox)  # type: ignore[arg-type]
            ids = list(s.execute(query).scalars())
            # A trust row must overtake the held row it unblocks, so it skips the queue.
            ids += list(
                s.execute(
                    select(Outbox.id)
                    .where(Outbox.kind == OutboxKind.TRUST, due, Outbox.channel.in_(channels))  # type: ignore[attr-defined]
                    .limit(limit)
                ).scalars()
            )
            if not ids:
                return []
            # The state check repeats in the UPDATE, so two workers can never both win a row.
            s.execute(
                update(Outbox)
                .where(Outbox.id.in_(ids), due)  # type: ignore[union-attr]
                .values(
                    state=OutboxState.SENDING,
                    lease_owner=self.worker_id,
                    lease_until=now + self.policy.lease,
                    attempts=Outbox.attempts + 1,
                )
            )
            rows = (
                s.execute(
                    select(Outbox).where(
                        Outbox.id.in_(ids),  # type: ignore[union-attr]
                        Outbox.lease_owner == self.worker_id,
                        Outbox.state == OutboxState.SENDING,
                    )
                )
                .scalars()
                .all()
            )
            return [job for row in rows if (job := self._resolve(s, row)) is not None]

    def _resolve(self, s: Session, row: Outbox) -> Job | None:
        member = s.get(Member, row.recipient_id)
        address: str | None = None
        if row.address_enc is not None:
            address = self.keys.decrypt_text(row.address_enc, ADDRESS_CONTEXT)
        elif member is not None:
            address = self.relay.address_of(member)
        body = s.get(OutboxBody, row.body_id) if row.body_id else None
        payload: dict[str, Any] = (
            open_payload(self.keys, body.payload_enc) if body and body.payload_enc else {}
        )
        if address is None:
            self._finish(s, row, OutboxState.CANCELLED)
            return None
        kind = OutboxKind(row.kind)
        if kind == OutboxKind.TRUST:
            return Job(
                row.id,
                row.recipient_id,
                Channel(row.channel),
                kind,  # type: ignore[arg-type]
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
                None,  # type: ignore[arg-type]
                int(payload["seconds"]),
                row.report_failure,
            )
        quote, target_ref = self._refs(s, row)
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
            message,  # type: ignore[arg-type]
            None,
            row.report_failure,
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
            select(Outbox.provider_ref).where(
                Outbox.inbound_id == target.id,
                Outbox.recipient_id == row.recipient_id,
                Outbox.kind == OutboxKind.MESSAGE,
                Outbox.state == OutboxState.SENT,
            )
        ).scalar()
        if copy_ref is None:
            return None, None
        return QuoteOut(copy_ref, by_recipient=False), copy_ref

    # --- sending --------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim one batch and send it concurrently. Returns how many rows were attempted."""
        jobs = await anyio.to_thread.run_sync(self.claim)
        if not jobs:
            return 0
        limiter = anyio.CapacityLimiter(self.policy.concurrency)
        async with anyio.create_task_group() as tg:
            for job in jobs:
                tg.start_soon(self._send_one, job, limiter)
        return len(jobs)

    async def drain(self, max_rounds: int = 1000) -> int:
        """Send until nothing is due (tests and the sandbox). Returns rows attempted."""
        total = 0
        for _ in range(max_rounds):
            n = await self.run_once()
            if n == 0:
                return total
            total += n
        return total

    async def run(self, stop: anyio.Event, idle: float = 0.5) -> None:
        """Deliver until ``stop`` is set; a failure in one round never ends the loop."""
        while not stop.is_set():
            try:
                n = await self.run_once()
            except Exception:
                ref = secrets.token_hex(4)
                log.exception("delivery round failed (ref %s)", ref)
                n = 0
            if n == 0:
                with anyio.move_on_after(idle):
                    await stop.wait()

    async def _send_one(self, job: Job, limiter: anyio.CapacityLimiter) -> None:
        transport = self.transports[job.channel]
        async with limiter:
            try:
                receipt = await self._call(transport, job)
            except DeliveryError as exc:
                await anyio.to_thread.run_sync(self._failed, job, exc)
                return
            except Exception:
                ref = secrets.token_hex(4)
                log.exception("transport %s raised unexpectedly (ref %s)", job.channel, ref)
                await anyio.to_thread.run_sync(
                    self._failed, job, RetryableError(Reason.NETWORK, f"unexpected, ref {ref}")
                )
                return
        await anyio.to_thread.run_sync(self._sent, job, receipt)

    async def _call(self, transport: Transport, job: Job) -> SendReceipt:
        if job.kind == OutboxKind.TIMER:
            if transport.supports_timers and job.timer_seconds is not None:
                address = await anyio.to_thread.run_sync(self._address_for, job)
                if address is not None:
                    await transport.set_timer(address, job.timer_seconds)
            return SendReceipt()
        assert job.message is not None  # noqa: S101 - resolved for every non-timer kind
        if job.kind == OutboxKind.TRUST:
            await transport.trust(job.message.address)
            return SendReceipt()
        message = job.message
        if message.attachments and not transport.supports_media:
            note = message.extra.get("media_note", "")
            text = "\n".join(p for p in (message.text, note) if p)
            message = Outgoing(address=message.address, text=text, quote=message.quote)
        return await transport.send(message)

    def _address_for(self, job: Job) -> str | None:
        with Session(self.engine) as s:
            member = s.get(Member, job.recipient_id)
            return self.relay.address_of(member) if member else None

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

    def _mine(self, s: Session, job: Job) -> Outbox | None:
        row = s.get(Outbox, job.row_id)
        # If our lease expired and someone else took the row, their result wins.
        if row is None or row.lease_owner != self.worker_id or row.state != OutboxState.SENDING:
            return None
        return row

    def _sent(self, job: Job, receipt: SendReceipt) -> None:
        with transaction(self.engine) as s:
            row = self._mine(s, job)
            if row is not None:
                self._finish(
                    s, row, OutboxState.SENT, provider_ref=receipt.ref, segments=receipt.segments
                )
                if job.kind == OutboxKind.TRUST:
                    s.execute(
                        update(Outbox)
                        .where(
                            Outbox.recipient_id == job.recipient_id,
                            Outbox.state == OutboxState.HELD,
                        )
                        .values(state=OutboxState.PENDING)
                    )

    def _failed(self, job: Job, exc: DeliveryError) -> None:
        report = False
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
                if isinstance(exc, RateLimitedError) and exc.retry_after:
                    delay = max(delay, exc.retry_after)
                self._finish(
                    s,
                    row,
                    OutboxState.RETRY,
                    error_reason=exc.reason,
                    next_attempt_at=self.clock.now() + timedelta(seconds=delay),
                )
        if report:
            self.relay.report_failure(job.recipient_id, exc.reason)


def pending_count(engine: Engine, channels: Sequence[str] | None = None) -> int:
    """Rows not yet final (for health checks and tests)."""
    with Session(engine) as s:
        q = select(func.count()).select_from(Outbox).where(Outbox.state.in_(_HEAD_STATES))  # type: ignore[attr-defined]
        if channels:
            q = q.where(Outbox.channel.in_(channels))  # type: ignore[attr-defined]
        return int(s.execute(q).scalar_one())
