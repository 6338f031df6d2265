"""Key rotation: re-seal every stored secret and rebuild every keyed hash under a new key.

Run by ``cercle keys rotate`` once every process runs with the new key as
``CERCLE_DATA_KEY`` and the old one as ``CERCLE_DATA_KEY_PREVIOUS`` (see docs/keys.md), so
that old and new rows are both readable and findable while it works. It goes table by table
in batches of short transactions; a row is done when every sealed value in it carries the new
key's id, so an interrupted rotation simply continues where it stopped when run again. Each
row is rewritten only if it still holds what was read (a worker may have changed it in the
meantime; it is then picked up again, or needs nothing any more).

Hashes are rebuilt from the row's own sealed value where there is one (member numbers and
UUIDs, bans). De-duplication hashes have no stored input, by design: they are re-keyed by
hashing the old hash under the new key (:meth:`relay.storage.crypto.DataKeys.rehash`), which the
relay still matches while the previous key is set; they expire within days anyway.
Singleton lease names are keyed too, but they are transient (renewed every few seconds under
the running processes' key) and are not rotated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Engine, LargeBinary, Table, and_, func, literal, or_, select
from sqlalchemy import update as sql_update
from sqlmodel import Session, SQLModel

from relay.delivery.outbox import ADDRESS_CONTEXT, PAYLOAD_CONTEXT, UUID_CONTEXT
from relay.safety.bans import BAN_CONTEXT
from relay.safety.bans import HASH_KIND as BAN_KIND
from relay.safety.quick_exit import EXIT_WORD_CONTEXT, EXIT_WORD_KIND
from relay.storage.crypto import KID_LEN, KID_OFFSET, DataKeyError, DataKeys
from relay.storage.engine import checkpoint, transaction
from relay.storage.inbox import INBOX_CONTEXT
from relay.storage.media_links import MEDIA_CONTEXT
from relay.storage.models import VIDEO_ROOM_CONTEXT, WEB_COPY_CONTEXT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SealedColumn:
    """A column holding values sealed with ``context``; ``hash_column`` (if any) holds the
    keyed hash (of ``hash_kind``) of the same value, rebuilt alongside."""

    table: str
    column: str
    context: str
    hash_column: str | None = None
    hash_kind: str | None = None

    @property
    def name(self) -> str:
        """``table.column``."""
        return f"{self.table}.{self.column}"


# Every sealed column in the schema; tests check that no LargeBinary column is missing here.
SEALED: tuple[SealedColumn, ...] = (
    SealedColumn("member", "address_enc", ADDRESS_CONTEXT, "address_hash", "address"),
    SealedColumn("member", "uuid_enc", UUID_CONTEXT, "uuid_hash", "uuid"),
    SealedColumn("outbox", "address_enc", ADDRESS_CONTEXT),
    SealedColumn("outbox_body", "payload_enc", PAYLOAD_CONTEXT),
    SealedColumn("ban", "address_enc", BAN_CONTEXT, "address_hash", BAN_KIND),
    SealedColumn(
        "member_safety", "exit_word_enc", EXIT_WORD_CONTEXT, "exit_word_hash", EXIT_WORD_KIND
    ),
    SealedColumn("pending_inbound", "payload_enc", INBOX_CONTEXT),
    SealedColumn("media_link", "payload_enc", MEDIA_CONTEXT),
    # A web seat's hashes cannot be rebuilt here (the token is not kept; the seat's address
    # is another table's): bots/web re-makes them when the browser next connects.
    SealedColumn("web_copy", "payload_enc", WEB_COPY_CONTEXT),
    # A running video session's room address (deleted when the session ends).
    SealedColumn("video_room", "url_enc", VIDEO_ROOM_CONTEXT),
)
DEDUP = "inbound.dedup_hash"
TABLES: tuple[str, ...] = (*dict.fromkeys(c.table for c in SEALED), "inbound")

Progress = Callable[[str, int], None]


@dataclass
class RotationReport:
    """What one run did, per table: rows re-keyed, rows that no key here could open."""

    rotated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    unreadable: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    interrupted: bool = False


class _Stop(Exception):  # noqa: N818 - internal control flow
    """The caller's row budget is spent (tests of an interrupted rotation)."""


def _table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


def _kid_of(column: Any) -> ColumnElement[bytes]:
    return func.substr(column, KID_OFFSET + 1, KID_LEN, type_=LargeBinary)


def _not_current(column: Any, keys: DataKeys) -> ColumnElement[bool]:
    """Sealed and not under the current key (compared in SQL: no row is decrypted to tell)."""
    return and_(column.is_not(None), _kid_of(column) != literal(keys.key_id, LargeBinary))


def _needs(table: str, keys: DataKeys) -> ColumnElement[bool]:
    t = _table(table)
    if table == "inbound":
        return or_(t.c.dedup_key_id.is_(None), t.c.dedup_key_id != keys.kid)
    return or_(*(_not_current(t.c[c.column], keys) for c in SEALED if c.table == table))


def plan(engine: Engine, keys: DataKeys) -> dict[str, int]:
    """Rows per table that are not yet under the current key (the work left)."""
    with Session(engine) as s:
        return {
            name: int(
                s.execute(
                    select(func.count()).select_from(_table(name)).where(_needs(name, keys))
                ).scalar_one()
            )
            for name in TABLES
        }


def remaining(engine: Engine, keys: DataKeys) -> dict[str, int]:
    """Values per column still under another key than the current one (the final check)."""
    out: dict[str, int] = {}
    with Session(engine) as s:
        for c in SEALED:
            t = _table(c.table)
            out[c.name] = int(
                s.execute(
                    select(func.count()).select_from(t).where(_not_current(t.c[c.column], keys))
                ).scalar_one()
            )
        out[DEDUP] = int(
            s.execute(
                select(func.count()).select_from(_table("inbound")).where(_needs("inbound", keys))
            ).scalar_one()
        )
    return out


def rotate(
    engine: Engine,
    keys: DataKeys,
    *,
    batch: int = 200,
    progress: Progress | None = None,
    stop_after: int | None = None,
) -> RotationReport:
    """Re-key every row not yet under ``keys``' current key. Idempotent and resumable.

    ``progress(table, rows)`` is called after each batch. ``stop_after`` ends the run after
    about that many rows (to test an interruption); the report then says ``interrupted``.
    """
    report = RotationReport()
    budget = [stop_after if stop_after is not None else -1]
    try:
        for name in TABLES:
            _rotate_table(engine, keys, name, batch, report, progress, budget)
    except _Stop:
        report.interrupted = True
    # The old-key ciphertexts must not linger in the write-ahead log either.
    checkpoint(engine)
    rotated = sum(report.rotated.values())
    unreadable = sum(report.unreadable.values())
    log.info("key rotation: %d rows re-keyed, %d unreadable", rotated, unreadable)
    return report


def _rotate_table(
    engine: Engine,
    keys: DataKeys,
    name: str,
    batch: int,
    report: RotationReport,
    progress: Progress | None,
    budget: list[int],
) -> None:
    t = _table(name)
    pk = next(iter(t.primary_key.columns))  # "id", or "member_id" for member_safety
    sealed = [c for c in SEALED if c.table == name]
    wanted = [pk] + ([t.c.dedup_hash] if name == "inbound" else [t.c[c.column] for c in sealed])
    last: int | None = None
    while True:
        if budget[0] == 0:
            raise _Stop
        size = batch if budget[0] < 0 else min(batch, budget[0])
        with transaction(engine) as s:
            query = select(*wanted).where(_needs(name, keys)).order_by(pk).limit(size)
            if last is not None:
                query = query.where(pk > last)
            rows = [dict(r._mapping) for r in s.execute(query)]
            if not rows:
                return
            for row in rows:
                if name == "inbound":
                    changes: dict[str, Any] | None = {
                        "dedup_hash": keys.rehash(row["dedup_hash"], "dedup"),
                        "dedup_key_id": keys.kid,
                    }
                    where = [t.c.dedup_hash == row["dedup_hash"]]
                else:
                    changes, where = _reseal(keys, t, sealed, row)
                if changes is None:
                    report.unreadable[name] += 1
                    continue
                if not changes:
                    continue  # re-keyed by someone else since it was read
                stmt = sql_update(t).where(pk == row[pk.name], *where).values(**changes)
                report.rotated[name] += s.execute(stmt).rowcount or 0  # type: ignore[attr-defined]
        last = rows[-1][pk.name]
        if budget[0] > 0:
            budget[0] = max(budget[0] - len(rows), 0)
        if progress is not None:
            progress(name, len(rows))


def _reseal(
    keys: DataKeys, t: Table, sealed: list[SealedColumn], row: dict[str, Any]
) -> tuple[dict[str, Any] | None, list[ColumnElement[bool]]]:
    """New values for one row's sealed columns and hashes, and the conditions that the row
    still holds what was read; ``None`` if a value opens under no key we have."""
    changes: dict[str, Any] = {}
    where: list[ColumnElement[bool]] = []
    for c in sealed:
        old = row[c.column]
        column = t.c[c.column]
        where.append(column.is_(None) if old is None else column == old)
        if old is None or keys.owns(old):
            continue
        context = c.context.encode("ascii")
        try:
            plain = keys.decrypt(old, context)
        except DataKeyError:
            return None, where
        changes[c.column] = keys.encrypt(plain, context)
        if c.hash_column and c.hash_kind:
            changes[c.hash_column] = keys.lookup_hash(plain.decode("utf-8"), c.hash_kind)
    return changes, where
