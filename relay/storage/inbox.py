"""Inbound events a provider handed us that the core has not accepted yet.

Every channel that receives writes here first, sealed: a webhook's request (SMS) before the
provider gets its answer, the Signal receiver as soon as a message comes off its connection.
A crash after that loses nothing: the worker, or the same process at once, hands the event
to the core and then forgets it. Rows are claimed with a short lease, so a worker that dies
mid-way leaves its rows to the next one; the core's own de-duplication makes a second
hand-over harmless. Nothing here knows a provider: payloads are the adapter's own JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from relay.storage.crypto import DataKeyError, DataKeys
from relay.storage.engine import transaction
from relay.storage.models import Inbound, PendingInbound

log = logging.getLogger(__name__)

INBOX_CONTEXT = "pending_inbound.payload"
HASH_KIND = "pending"
LEASE = timedelta(seconds=60)  # a claimed row comes back after this if its worker died
MAX_BACKOFF = 300.0  # seconds between two tries of a row the core keeps refusing

_watchers: dict[Engine, list[Callable[[], None]]] = {}


@dataclass(frozen=True)
class Pending:
    """One claimed row: ``attempts`` counts this one."""

    id: int
    channel: str
    payload: dict[str, Any]
    attempts: int

    def __repr__(self) -> str:  # the payload holds a number and a message
        return f"Pending({self.id}, {self.channel}, attempt {self.attempts})"


def watch(engine: Engine, callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` (from any thread; quick, never raising) when a row is queued on
    ``engine`` in this process, so a worker in ``cercle run`` starts at once. Returns the
    function that stops watching."""
    _watchers.setdefault(engine, []).append(callback)

    def unwatch() -> None:
        if callback in _watchers.get(engine, []):
            _watchers[engine].remove(callback)

    return unwatch


def accepted(engine: Engine, keys: DataKeys, dedup_key: str) -> bool:
    """Whether the core already accepted this provider message (a webhook retried after its
    hand-over): such a retry needs no queueing, and its photos are gone from the provider."""
    seen = keys.lookup_hashes(dedup_key, "dedup", rehashed=True)  # as the core stores it
    with Session(engine) as s:
        return (
            s.exec(select(Inbound.id).where(col(Inbound.dedup_hash).in_(seen))).first() is not None
        )


def queue(
    engine: Engine,
    keys: DataKeys,
    now: datetime,
    channel: str,
    dedup_key: str,
    payload: dict[str, Any],
    *,
    not_before: datetime | None = None,
) -> int | None:
    """Store one event durably; return its row id, or ``None`` when the same provider
    message (``dedup_key``) is already queued. ``not_before`` keeps workers off the row for
    a while (the caller hands it over itself first)."""
    row = PendingInbound(
        channel=channel,
        dedup_hash=keys.lookup_hash(dedup_key, HASH_KIND),
        payload_enc=keys.encrypt(json.dumps(payload).encode(), INBOX_CONTEXT.encode()),
        next_attempt_at=not_before or now,
        received_at=now,
    )
    try:
        with transaction(engine) as s:
            s.add(row)
    except IntegrityError:
        return None
    for callback in list(_watchers.get(engine, ())):
        callback()
    return row.id


def claim(
    engine: Engine,
    keys: DataKeys,
    now: datetime,
    channel: str,
    limit: int = 10,
    *,
    everything: bool = False,
) -> list[Pending]:
    """Rows of ``channel`` that are due, oldest first, each leased to the caller for
    :data:`LEASE`. ``everything`` takes rows not yet due too (a receiver taking over from
    one that stopped or died takes what that one had in hand).

    A row is taken only if it still holds what was read (another worker may have taken it
    meanwhile), so no two workers hold one row. A row no key here opens stays, logged.
    """
    query = select(PendingInbound).where(col(PendingInbound.channel) == channel)
    if not everything:
        query = query.where(col(PendingInbound.next_attempt_at) <= now)
    with Session(engine) as s:
        due = s.exec(query.order_by(col(PendingInbound.id)).limit(limit)).all()
    won: list[Pending] = []
    for row in due:
        assert row.id is not None and row.payload_enc is not None  # noqa: S101 - stored so
        try:
            payload = json.loads(keys.decrypt(row.payload_enc, INBOX_CONTEXT.encode()))
        except DataKeyError:
            log.warning("pending inbound %d opens under no key here: left", row.id)
            continue
        with transaction(engine) as s:
            taken = s.execute(
                update(PendingInbound)
                .where(
                    col(PendingInbound.id) == row.id,
                    col(PendingInbound.next_attempt_at) == row.next_attempt_at,
                )
                .values(next_attempt_at=now + LEASE, attempts=row.attempts + 1)
            ).rowcount  # type: ignore[attr-defined]
        if taken:
            won.append(Pending(row.id, row.channel, payload, row.attempts + 1))
    return won


def done(engine: Engine, row_id: int) -> None:
    """The core has the event: forget it (and its sealed copy)."""
    with transaction(engine) as s:
        s.execute(delete(PendingInbound).where(col(PendingInbound.id) == row_id))


def release(engine: Engine, row_ids: list[int], now: datetime) -> None:
    """Give claimed rows back, due at once (a worker stopping before it handed them over)."""
    if not row_ids:
        return
    with transaction(engine) as s:
        s.execute(
            update(PendingInbound)
            .where(col(PendingInbound.id).in_(row_ids))
            .values(next_attempt_at=now, attempts=PendingInbound.attempts - 1)
        )


def retry_later(engine: Engine, row_id: int, now: datetime, attempts: int) -> None:
    """Try this row again after a backoff that grows with ``attempts``."""
    wait = timedelta(seconds=min(2.0**attempts, MAX_BACKOFF))
    with transaction(engine) as s:
        s.execute(
            update(PendingInbound)
            .where(col(PendingInbound.id) == row_id)
            .values(next_attempt_at=now + wait)
        )


def waiting(engine: Engine) -> tuple[int, datetime | None]:
    """How many events wait, and when the oldest arrived (for the health checks)."""
    with Session(engine) as s:
        count, oldest = s.execute(select(func.count(), func.min(PendingInbound.received_at))).one()
    return int(count), oldest
