"""Taking a relayed message back from every phone: the data side of ``/delete``.

A removal stops every copy not yet sent (including one a worker has claimed but not sent: the
delivery engine checks just before sending, and deletes at once a copy whose send raced the
removal), queues a remote delete of each copy already sent where the channel can delete
(Signal, the web door, the sandbox), counts the SMS copies that cannot be recalled, and then
forgets the quote/edit mapping of the message and wipes its content.

Signal phones honour a delete-for-everyone only for a limited time after the message (see
``docs/safety.md``): :data:`RECALL_WINDOW` keeps an hour's margin inside it for the delete to
reach the phones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio
import anyio.lowlevel
from sqlalchemy import update
from sqlmodel import Session, col, select

from relay.delivery.outbox import OutboxWriter
from relay.messages import Channel
from relay.storage.models import (
    OPEN_STATES,
    Inbound,
    Member,
    Outbox,
    OutboxBody,
    OutboxKind,
    OutboxState,
)

log = logging.getLogger(__name__)

# Signal-Android's MessageConstraintsUtil.RECEIVE_THRESHOLD is 2 days; releases before it
# (RemoteDeleteUtil.RECEIVE_THRESHOLD) honoured 1 day. Phones still run those: take 1 day.
SIGNAL_DELETE_WINDOW = timedelta(days=1)
RECALL_WINDOW = SIGNAL_DELETE_WINDOW - timedelta(hours=1)
# Channels whose copies a remote delete takes back (the web door removes it from the page).
# An SMS, once delivered, stays.
RECALLABLE = frozenset({Channel.SIGNAL, Channel.SANDBOX, Channel.WEB})
# ``Outbox.error_reason`` of a copy a removal cancelled: if a worker sent it anyway (its send
# raced the removal), the engine deletes it at once (:func:`recall_late`).
REVOKED = "revoked"


@dataclass
class Recall:
    """What a removal did, in counts only (for the facilitator and the audit trail)."""

    messages: int = 0
    unsent: int = 0  # copies cancelled before they were sent
    deleted: int = 0  # remote deletes queued for copies already on phones
    sms: int = 0  # SMS copies already delivered: they cannot be recalled
    too_old: int = 0  # copies on phones past the delete window

    def add(self, other: Recall) -> None:
        """Add another removal's counts to these."""
        for name in ("messages", "unsent", "deleted", "sms", "too_old"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def code(self) -> str:
        """The counts as an audit detail: numbers only, never content."""
        return (
            f"n={self.messages} unsent={self.unsent} deleted={self.deleted} "
            f"sms={self.sms} old={self.too_old}"
        )


def find_quoted(s: Session, member_id: int, ref: str | None) -> int | None:
    """The inbound message that ``ref`` (a quote or reaction target, in ``member_id``'s own
    conversation) points at: a copy Cercle sent them, or their own original."""
    if not ref:
        return None
    copy = s.exec(
        select(Outbox.inbound_id).where(
            col(Outbox.recipient_id) == member_id,
            col(Outbox.provider_ref) == ref,
            col(Outbox.kind) == OutboxKind.MESSAGE,
        )
    ).first()
    if copy is not None:
        return copy
    return s.exec(
        select(Inbound.id).where(
            col(Inbound.member_id) == member_id,
            col(Inbound.author_ref) == ref,
            col(Inbound.relayed).is_(True),
        )
    ).first()


def cancel_unsent(s: Session, inbound_id: int, now: datetime) -> int:
    """Cancel every copy of a message not yet sent, claimed ones included; how many."""
    cancelled = s.execute(
        update(Outbox)
        .where(
            col(Outbox.inbound_id) == inbound_id,
            col(Outbox.kind) == OutboxKind.MESSAGE,
            col(Outbox.state).in_(OPEN_STATES),
        )
        .values(
            state=OutboxState.CANCELLED,
            error_reason=REVOKED,
            lease_owner=None,
            lease_until=None,
            done_at=now,
        )
        .returning(col(Outbox.id))
    ).all()
    # Edits of it not yet sent would bring the words back.
    s.execute(
        update(Outbox)
        .where(
            col(Outbox.target_inbound_id) == inbound_id,
            col(Outbox.kind) == OutboxKind.EDIT,
            col(Outbox.state).in_(OPEN_STATES),
        )
        .values(state=OutboxState.CANCELLED, error_reason=REVOKED, lease_owner=None)
    )
    return len(cancelled)


def take_back(s: Session, writer: OutboxWriter, message: Inbound, now: datetime) -> Recall:
    """Remove one relayed message from every phone that can still lose it, then forget it.

    Call within the transaction of the removal; ``message`` must be a relayed message (its
    author's original is theirs: it is never touched).
    """
    assert message.id is not None  # noqa: S101 - stored rows have ids
    result = Recall(messages=1, unsent=cancel_unsent(s, message.id, now))
    copies = s.exec(
        select(Outbox).where(
            col(Outbox.inbound_id) == message.id, col(Outbox.kind) == OutboxKind.MESSAGE
        )
    ).all()
    cutoff = now - RECALL_WINDOW
    to_delete: list[tuple[int, str]] = []
    for copy in copies:
        if copy.state != OutboxState.SENT:
            continue
        if copy.channel not in RECALLABLE:
            result.sms += 1
        elif copy.provider_ref is None:
            continue  # the provider gave no id for it: nothing to name in a delete
        elif copy.done_at is not None and copy.done_at < cutoff:
            result.too_old += 1
        else:
            to_delete.append((copy.recipient_id, copy.provider_ref))
    result.deleted = queue_deletes(s, writer, to_delete)
    _forget(s, message, {c.body_id for c in copies if c.body_id is not None})
    return result


def queue_deletes(s: Session, writer: OutboxWriter, copies: Sequence[tuple[int, str]]) -> int:
    """Queue a remote delete of each ``(recipient id, provider ref)`` copy.

    Each delete names its copy in its own sealed payload, so the copy's mapping can be
    forgotten at once. Returns how many were queued.
    """
    rows = []
    for recipient_id, ref in copies:
        member = s.get(Member, recipient_id)
        if member is None:
            continue
        body_id = writer.body({"delete_ref": ref})
        rows.append(writer.row(member, body_id, kind=OutboxKind.DELETE, report_failure=False))
    writer.add_rows(rows)
    return len(rows)


def _forget(s: Session, message: Inbound, bodies: set[int]) -> None:
    """Drop what maps later quotes, reactions, edits and deletes to the message, and its
    content: nothing can point at it, bring it back, or reveal it any more."""
    assert message.id is not None  # noqa: S101 - stored rows have ids
    copies = (col(Outbox.inbound_id) == message.id, col(Outbox.kind) == OutboxKind.MESSAGE)
    # The copies' Signal ids (each delete carries its own); SMS ids stay until the record
    # at Twilio is deleted, which needs them.
    s.execute(
        update(Outbox).where(*copies, col(Outbox.channel).in_(RECALLABLE)).values(provider_ref=None)
    )
    s.execute(update(Outbox).where(*copies).values(inbound_id=None))
    # Messages that quoted it lose the quote; reactions and edits lose their target (a delete
    # the author sent themselves keeps its own, so it still reaches the phones).
    s.execute(
        update(Outbox)
        .where(col(Outbox.target_inbound_id) == message.id, col(Outbox.kind) != OutboxKind.DELETE)
        .values(target_inbound_id=None)
    )
    # Its content: every copy is final now, so no one needs the sealed body any more.
    if bodies:
        s.execute(update(OutboxBody).where(col(OutboxBody.id).in_(bodies)).values(payload_enc=None))
    message.author_ref = None
    message.relayed = False
    s.add(message)


def recall_late(s: Session, writer: OutboxWriter, sent: Sequence[tuple[int, str]]) -> int:
    """Copies the delivery engine sent although a removal had cancelled them meanwhile (the
    send was already under way): queue a remote delete of each that a channel can delete.

    ``sent`` holds ``(outbox row id, provider ref)`` of copies just sent. Returns how many
    deletes were queued.
    """
    if not sent:
        return 0
    refs = dict(sent)
    late = s.exec(
        select(Outbox).where(
            col(Outbox.id).in_(refs),
            col(Outbox.state) == OutboxState.CANCELLED,
            col(Outbox.error_reason) == REVOKED,
        )
    ).all()
    return queue_deletes(
        s,
        writer,
        [
            (row.recipient_id, refs[row.id])
            for row in late
            if row.id is not None and row.channel in RECALLABLE
        ],
    )


class StillHeld:
    """The delivery engine's check, just before each send of a copy, that its worker still
    holds the row: a removal cancels rows a worker has claimed too.

    Checks that arrive while one is running wait for it and then share the next query, so a
    batch sending at once costs one or two queries, not one per copy. ``check`` takes row
    ids and returns those still held (it runs in a worker thread). If it fails, the copies
    go out: a message is never lost to a hiccup, and the engine deletes at once any copy
    that turns out to have been removed (:func:`recall_late`).
    """

    def __init__(self, check: Callable[[list[int]], set[int]]) -> None:
        self._check = check
        self._queued: dict[int, None] = {}
        self._answers: dict[int, bool] = {}
        self._running: anyio.Event | None = None  # set when the query under way ends

    async def holds(self, row_id: int) -> bool:
        """Whether the row is still this worker's to send."""
        while row_id not in self._answers:
            self._queued[row_id] = None
            if self._running is not None:
                await self._running.wait()
                continue
            running = self._running = anyio.Event()
            try:
                await anyio.lowlevel.checkpoint()  # sends starting together join this query
                ids, self._queued = list(self._queued), {}
                try:
                    held = await anyio.to_thread.run_sync(self._check, ids)
                except Exception:  # the check must never stop a send: see the docstring
                    log.exception("removal check failed; sending")
                    held = set(ids)
                self._answers.update((i, i in held) for i in ids)
            finally:
                self._running = None
                running.set()
        return self._answers.pop(row_id)
