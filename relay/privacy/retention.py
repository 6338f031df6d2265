"""Retention: keep as little as the relay can, for as short a time as it can.

What goes, and when (docs/architecture.md, "Rules every path keeps"):

- **Outbox payloads** (the only copies of message content) are wiped as soon as every row
  using the body is final, and so are the sealed address copies of "last words" rows.
- **The mapping for quotes, reactions, edits and deletes** — each copy's provider reference
  and its links to the inbound message — is cleared once the group's timer has passed since
  the copy was done; the rows themselves (recipient, channel, SMS segments, no content) go
  once :data:`COST_WINDOW` has passed too, so ``cercle group show`` can still count what SMS
  cost over 30 days.
- **Inbound rows** (de-duplication keys and the sender's own message ids) go once they have
  expired and no outbox row points at them: a first run clears their message id, so no new
  quote can reach them, and the next run deletes them (a message arriving in between that
  quoted one can then never point at a deleted row).
- An **SMS** row keeps its provider reference until the Twilio record is deleted
  (``provider_purged``): the worker's Twilio clean-up needs the reference to do that.
- **Audit events** go after ``CERCLE_AUDIT_RETENTION_DAYS``; flood counters, failure-report
  windows and dead singleton leases once they are stale; **tombstones** once nothing points
  at them any more.

Every job works in bounded batches (one short transaction each), re-checks its condition in
the statement that changes rows, and is idempotent: running it again removes nothing more.
Rows that other tables point at are found from the foreign keys in the models, so a table
added later keeps its rows' targets alive without a change here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, and_, delete, exists, func, or_, select, update
from sqlmodel import Session, SQLModel

from relay.messages import Channel
from relay.storage.engine import checkpoint, transaction
from relay.storage.models import OPEN_STATES, MemberState, OutboxState

log = logging.getLogger(__name__)

# Outbox rows (no content, no mapping left) are kept this long for SMS cost reports.
COST_WINDOW = timedelta(days=31)
FLOOD_KEEP = timedelta(days=1)
FAILURE_REPORT_KEEP = timedelta(days=1)
DEAD_LEASE = timedelta(minutes=10)
FINAL_STATES = (OutboxState.SENT, OutboxState.FAILED, OutboxState.CANCELLED)


class Kind(StrEnum):
    """What one retention job removes; the keys of :class:`PurgeReport`."""

    PAYLOADS = "outbox_payloads_wiped"
    ADDRESSES = "outbox_addresses_wiped"
    OUTBOX_MAPPINGS = "outbox_mappings_cleared"
    OUTBOX_ROWS = "outbox_rows_deleted"
    BODIES = "outbox_bodies_deleted"
    INBOUND_ROWS = "inbound_rows_deleted"
    INBOUND_MAPPINGS = "inbound_mappings_cleared"
    AUDIT = "audit_events_deleted"
    FLOOD = "flood_windows_deleted"
    FAILURE_REPORTS = "failure_reports_deleted"
    LEASES = "leases_deleted"
    TOMBSTONES = "tombstones_deleted"


DESCRIPTIONS: dict[Kind, str] = {
    Kind.PAYLOADS: "message contents wiped (every copy delivered or given up)",
    Kind.ADDRESSES: "sealed address copies wiped from finished farewell messages",
    Kind.OUTBOX_MAPPINGS: "quote/reaction/edit/delete links cleared (group timer passed)",
    Kind.OUTBOX_ROWS: "delivery records deleted (timer and 31-day cost window passed)",
    Kind.BODIES: "empty message bodies deleted",
    Kind.INBOUND_ROWS: "received-message records deleted",
    Kind.INBOUND_MAPPINGS: "received-message ids cleared (de-duplication expired)",
    Kind.AUDIT: "audit events deleted (older than the audit retention)",
    Kind.FLOOD: "stale flood counters deleted",
    Kind.FAILURE_REPORTS: "stale failure-report windows deleted",
    Kind.LEASES: "dead process leases deleted",
    Kind.TOMBSTONES: "tombstones of removed members deleted (nothing refers to them)",
}


@dataclass(frozen=True)
class RetentionPolicy:
    """How long what may be kept is kept, and how much one transaction touches."""

    audit_days: int = 365
    flood_keep: timedelta = FLOOD_KEEP
    batch: int = 500


@dataclass
class PurgeReport:
    """Rows touched per kind by one purge run (counts only: names no one)."""

    counts: dict[Kind, int] = field(default_factory=lambda: dict.fromkeys(Kind, 0))

    @property
    def total(self) -> int:
        """Rows touched in all."""
        return sum(self.counts.values())

    def add(self, other: PurgeReport) -> None:
        """Add another run's counts to these."""
        for kind, n in other.counts.items():
            self.counts[kind] += n


def _table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


def _unreferenced(target: Table) -> ColumnElement[bool]:
    """No row of any table points at this row of ``target`` (found from the foreign keys)."""
    return and_(
        *(
            ~exists().where(fk.parent == fk.column)
            for table in SQLModel.metadata.tables.values()
            for fk in table.foreign_keys
            if fk.column.table is target and fk.parent.table is not target
        )
    )


def _batched(
    engine: Engine,
    table: Table,
    condition: Callable[[], ColumnElement[bool]],
    change: Callable[[Any], Any],
    batch: int,
) -> int:
    """Apply ``change`` (an UPDATE or DELETE on ``table``) to every row matching
    ``condition``, ``batch`` rows per transaction, walking the primary key upwards so each
    row is considered once per run. The condition is checked again by the changing statement:
    a row that stopped matching in between (a concurrent worker) is left alone."""
    pk = table.c.id
    done, last = 0, None
    while True:
        with transaction(engine) as s:
            query = select(pk).where(condition()).order_by(pk).limit(batch)
            if last is not None:
                query = query.where(pk > last)
            ids = list(s.execute(query).scalars())
            if not ids:
                return done
            stmt = change(pk.in_(ids) & condition())
            done += s.execute(stmt).rowcount or 0  # type: ignore[attr-defined]
        last = ids[-1]
        if len(ids) < batch:
            return done


def _outbox_sms_done(o: Table) -> ColumnElement[bool]:
    """The provider no longer needs this row's reference (not SMS, or the record is gone)."""
    return or_(
        o.c.channel != Channel.SMS, o.c.provider_ref.is_(None), o.c.provider_purged.is_(True)
    )


def _finished_before(o: Table, cutoff: datetime) -> ColumnElement[bool]:
    # Rows cancelled in bulk have no done_at: their creation time is the bound then. A row is
    # done after it is created, so ``created_at < cutoff`` holds too and lets the
    # (group_id, created_at) index narrow the search.
    return and_(
        o.c.created_at < cutoff,
        o.c.state.in_(FINAL_STATES),
        func.coalesce(o.c.done_at, o.c.created_at) < cutoff,
    )


def _linked(o: Table, group_id: int, cutoff: datetime) -> ColumnElement[bool]:
    """Finished rows of a group, past its timer, that still map to a message."""
    return and_(
        o.c.group_id == group_id,
        _finished_before(o, cutoff),
        _outbox_sms_done(o),
        or_(
            o.c.provider_ref.is_not(None),
            o.c.inbound_id.is_not(None),
            o.c.target_inbound_id.is_not(None),
            o.c.body_id.is_not(None),
        ),
    )


def _stale(o: Table, group_id: int, cutoff: datetime) -> ColumnElement[bool]:
    """Finished rows of a group past both its timer and the cost window."""
    return and_(o.c.group_id == group_id, _finished_before(o, cutoff), _outbox_sms_done(o))


def purge(engine: Engine, now: datetime, policy: RetentionPolicy | None = None) -> PurgeReport:
    """Run every retention job once, in a safe order; return what each removed.

    Order matters: outbox links are cleared before the inbound rows they point at are
    considered, and outbox rows are deleted before the bodies and tombstones they use.
    """
    policy = policy or RetentionPolicy()
    report = PurgeReport()
    counts = report.counts
    o, b, i = _table("outbox"), _table("outbox_body"), _table("inbound")
    m, g = _table("member"), _table("group")
    n = policy.batch

    # 1. Content exists at rest only while it waits for delivery.
    open_rows = exists().where(o.c.body_id == b.c.id, o.c.state.in_(OPEN_STATES))
    counts[Kind.PAYLOADS] = _batched(
        engine,
        b,
        lambda: and_(b.c.payload_enc.is_not(None), ~open_rows),
        lambda where: update(b).where(where).values(payload_enc=None),
        n,
    )
    counts[Kind.ADDRESSES] = _batched(
        engine,
        o,
        lambda: and_(o.c.address_enc.is_not(None), o.c.state.in_(FINAL_STATES)),
        lambda where: update(o).where(where).values(address_enc=None),
        n,
    )

    # 2. The mapping lives until the group's timer has passed; the bare rows a while longer.
    with Session(engine) as s:
        timers = list(s.execute(select(g.c.id, g.c.timer_seconds)).tuples())
    for group_id, seconds in timers:
        timer = timedelta(seconds=seconds)
        counts[Kind.OUTBOX_MAPPINGS] += _batched(
            engine,
            o,
            partial(_linked, o, group_id, now - timer),
            lambda where: (
                update(o)
                .where(where)
                .values(provider_ref=None, inbound_id=None, target_inbound_id=None, body_id=None)
            ),
            n,
        )
        counts[Kind.OUTBOX_ROWS] += _batched(
            engine,
            o,
            partial(_stale, o, group_id, now - max(timer, COST_WINDOW)),
            lambda w: delete(o).where(w),
            n,
        )
    counts[Kind.BODIES] = _batched(
        engine, b, lambda: _unreferenced(b), lambda w: delete(b).where(w), n
    )

    # 3. Inbound rows: delete those whose id was cleared by an earlier run, then clear more.
    def expired() -> ColumnElement[bool]:
        return and_(i.c.expires_at < now, _unreferenced(i))

    counts[Kind.INBOUND_ROWS] = _batched(
        engine,
        i,
        lambda: and_(expired(), i.c.author_ref.is_(None), i.c.relayed.is_(False)),
        lambda w: delete(i).where(w),
        n,
    )
    sms_sender = exists().where(m.c.id == i.c.member_id, m.c.channel == Channel.SMS)
    counts[Kind.INBOUND_MAPPINGS] = _batched(
        engine,
        i,
        lambda: and_(
            expired(),
            or_(i.c.author_ref.is_not(None), i.c.relayed.is_(True)),
            or_(i.c.provider_purged.is_(True), i.c.author_ref.is_(None), ~sms_sender),
        ),
        lambda w: update(i).where(w).values(author_ref=None, relayed=False),
        n,
    )

    # 4. What is kept for accountability, and small bookkeeping tables.
    a = _table("audit_event")
    audit_cutoff = now - timedelta(days=policy.audit_days)
    counts[Kind.AUDIT] = _batched(
        engine, a, lambda: a.c.at < audit_cutoff, lambda w: delete(a).where(w), n
    )
    counts[Kind.FLOOD] = _delete_all(
        engine,
        _table("flood_window"),
        lambda t: or_(
            t.c.window_start < now - policy.flood_keep,
            exists().where(m.c.id == t.c.member_id, m.c.state == MemberState.REMOVED),
        ),
    )
    counts[Kind.FAILURE_REPORTS] = _delete_all(
        engine, _table("failure_report"), lambda t: t.c.last_at < now - FAILURE_REPORT_KEEP
    )
    counts[Kind.LEASES] = _delete_all(
        engine, _table("singleton_lease"), lambda t: t.c.expires_at < now - DEAD_LEASE
    )

    # 5. Tombstones nothing points at any more (the audit trail names pseudonyms, not rows).
    counts[Kind.TOMBSTONES] = _batched(
        engine,
        m,
        lambda: and_(m.c.state == MemberState.REMOVED, _unreferenced(m)),
        lambda w: delete(m).where(w),
        n,
    )
    if report.total:
        checkpoint(engine)
        log.info(
            "retention: %s",
            ", ".join(f"{k.value}={v}" for k, v in report.counts.items() if v),
        )
    return report


def _delete_all(
    engine: Engine, table: Table, condition: Callable[[Table], ColumnElement[bool]]
) -> int:
    """Delete matching rows of a small bookkeeping table (at most one row per member)."""
    with transaction(engine) as s:
        return s.execute(delete(table).where(condition(table))).rowcount or 0  # type: ignore[attr-defined]
