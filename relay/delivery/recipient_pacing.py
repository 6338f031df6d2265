"""Pacing per recipient, shared by every worker: each member's conversation with the
organization's number has its own pace, modelled on Signal's rule.

Signal's server limits messages per sender-recipient *pair* (a bucket of 60 refilled one per
second), not per account: a group message to 29 people is 29 pairs, each well within its
own limit. So Signal rows are paced here, one ``recipient_pace`` row per recipient, with the
generic cell rate algorithm: ``due`` is the time by which the recipient's bucket would be
full again; a send may go at ``due - (burst - 1) / rate`` at the earliest, and moves ``due``
on by ``1 / rate``. A recipient without a row (or whose ``due`` has passed) has a full
bucket. Rows are read and written inside the claim transaction that holds the channel's
pacing row (:mod:`relay.delivery.pacing`), which serializes every claimer of the channel, so two
workers never both spend the same recipient's last token.

Trust rows (a local confirmation in signal-cli) send nothing to the recipient and are not
paced; timer rows are (setting a conversation timer sends the recipient an update).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, not_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from relay.delivery.pacing import Pace
from relay.storage.models import Outbox, OutboxKind, RecipientPace

_PRUNE_EVERY = 60.0  # seconds between deletions of rows whose bucket is full again


@dataclass(frozen=True)
class Planned:
    """A candidate row that may go within the lookahead, and its earliest send time."""

    row_id: int
    recipient_id: int
    slot: datetime
    due_after: datetime | None  # the recipient's ``due`` once sent; None for trust rows


class RecipientPacer:
    """Send times per recipient on the channels that have a per-recipient pace."""

    def __init__(self, paces: Mapping[str, Pace]) -> None:
        self.paces = {str(k): v for k, v in paces.items()}
        self._pruned = 0.0

    def paced(self, channel: str) -> bool:
        """Whether ``channel`` paces each recipient."""
        return channel in self.paces

    def _tolerance(self, pace: Pace) -> timedelta:
        return timedelta(seconds=(pace.burst - 1) / pace.rate)

    def ready(self, channel: str, now: datetime, lookahead: float) -> Any:
        """A filter on outbox rows: the recipient's next send falls within ``lookahead``
        seconds (so heads of recipients who must wait longer do not crowd out the others)."""
        pace = self.paces[channel]
        horizon = now + timedelta(seconds=lookahead) + self._tolerance(pace)
        waiting = (
            select(col(RecipientPace.recipient_id))
            .where(
                col(RecipientPace.recipient_id) == col(Outbox.recipient_id),
                col(RecipientPace.due) > horizon,
            )
            .correlate(Outbox)
        )
        return not_(exists(waiting))

    def plan(
        self, s: Session, channel: str, ids: Sequence[int], now: datetime, lookahead: float
    ) -> list[Planned]:
        """The candidates (in order) whose recipient may receive within ``lookahead``, each
        with its earliest time. Call with the channel's pacing row locked; nothing written."""
        if not ids:
            return []
        pace = self.paces[channel]
        rows = s.execute(
            select(
                col(Outbox.id),
                col(Outbox.recipient_id),
                col(Outbox.kind),
                col(RecipientPace.due),
            )
            .outerjoin(RecipientPace, col(RecipientPace.recipient_id) == col(Outbox.recipient_id))
            .where(col(Outbox.id).in_(ids))
            .order_by(col(Outbox.id))
        ).all()
        step, tolerance = timedelta(seconds=1 / pace.rate), self._tolerance(pace)
        horizon = now + timedelta(seconds=lookahead)
        dues: dict[int, datetime] = {}
        planned: list[Planned] = []
        for row_id, recipient_id, kind, stored in rows:
            if kind == OutboxKind.TRUST:
                planned.append(Planned(row_id, recipient_id, now, None))
                continue
            due = max(dues.get(recipient_id, stored or now), now)
            slot = max(now, due - tolerance)
            if slot > horizon:
                continue  # this recipient must wait; their other rows too (later ids)
            dues[recipient_id] = due + step
            planned.append(Planned(row_id, recipient_id, slot, due + step))
        return planned

    def spend(self, s: Session, channel: str, won: Sequence[Planned], now: datetime) -> None:
        """Record the sends of the rows this worker won (those of :meth:`plan`, same order)."""
        del channel  # one table for every paced channel: a recipient is on one channel
        dues: dict[int, datetime] = {}
        for p in won:
            if p.due_after is not None:
                dues[p.recipient_id] = max(p.due_after, dues.get(p.recipient_id, p.due_after))
        if dues:
            dialect = s.get_bind().dialect.name
            insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
            stmt = insert(RecipientPace)
            stmt = stmt.on_conflict_do_update(
                index_elements=["recipient_id"], set_={"due": stmt.excluded.due}
            )
            s.execute(stmt, [{"recipient_id": r, "due": d} for r, d in dues.items()])
        if time.monotonic() - self._pruned > _PRUNE_EVERY:
            self._pruned = time.monotonic()
            s.execute(delete(RecipientPace).where(col(RecipientPace.due) < now))
