"""Claiming outbox rows: which rows are due, leasing them to one worker, and turning a leased
row into a :class:`Job` the transport can send.

Rows for one recipient go out in order: only the oldest open row of each recipient (its
"head") can be claimed, so a timer reset always lands before the messages queued after it,
and an edit never overtakes the message it edits. A worker that dies mid-send leaves its rows
in ``sending``; once their lease expires any worker claims them again (at-least-once).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, true, update
from sqlmodel import Session, col

from relay.delivery.lease import owner_id
from relay.delivery.outbox import (
    ADDRESS_CONTEXT,
    open_payload,
)
from relay.delivery.pacing import Pacer
from relay.delivery.policy import DeliveryPolicy, Service
from relay.delivery.recipient_pacing import Planned, RecipientPacer
from relay.messages import Attachment, Channel, Outgoing, QuoteOut
from relay.storage.crypto import DataKeys
from relay.storage.engine import is_postgres, transaction
from relay.storage.models import (
    OPEN_STATES,
    Inbound,
    Member,
    Outbox,
    OutboxBody,
    OutboxKind,
    OutboxState,
)
from relay.transport import Transport


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


class Claimer:
    """Leases due rows to this worker and resolves them to jobs; the sender builds on it."""

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
        # Names its process (see lease.owner_id), so a restart can free what a killed
        # predecessor on this host held (Deliverer.free_rows_of_dead_workers).
        self.worker_id = worker_id or owner_id()
        self.pacer = Pacer(self.engine, self.clock, self.policy.paces)
        self.recipients = RecipientPacer(self.policy.recipient_paces)
        # Seconds until a paced channel is worth claiming again (set by each claim round).
        self.wait_hint: float | None = None

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
                col(Outbox.state).in_(OPEN_STATES),
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
            # A short note where a photo cannot go; a video room's link the web door shows as
            # a button (relay.groups.video).
            extra={k: str(payload[k]) for k in ("media_note", "video_url") if k in payload},
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

    def _finish(self, s: Session, row: Outbox, state: OutboxState, **values: Any) -> None:
        row.state = state
        row.lease_owner = row.lease_until = None
        row.done_at = self.clock.now()
        if state.is_final:
            row.address_enc = None  # the last words' address copy goes with the row
        for k, v in values.items():
            setattr(row, k, v)
        s.add(row)
