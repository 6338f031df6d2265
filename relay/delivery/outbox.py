"""Writing the outbox: sealed payloads, shared per language, and one row per recipient.

Rows are inserted in bulk so that the number of SQL statements for a fan-out does not grow
with the size of the group.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, event, func, insert, select
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from relay.language.channels import depends_on_channel, for_channel
from relay.language.i18n import Renderable
from relay.storage.crypto import DataKeys
from relay.storage.models import Member, Outbox, OutboxBody, OutboxKind, OutboxState

log = logging.getLogger(__name__)

PAYLOAD_CONTEXT = "outbox.payload"
ADDRESS_CONTEXT = "member.address"
UUID_CONTEXT = "member.uuid"


def seal_payload(keys: DataKeys, payload: dict[str, Any]) -> bytes:
    """Seal an outbox payload (text, attachments, timer seconds…)."""
    return keys.encrypt(json.dumps(payload, ensure_ascii=False).encode(), PAYLOAD_CONTEXT.encode())


def open_payload(keys: DataKeys, sealed: bytes) -> dict[str, Any]:
    """Open a payload sealed by :func:`seal_payload`."""
    value: dict[str, Any] = json.loads(keys.decrypt(sealed, PAYLOAD_CONTEXT.encode()))
    return value


# --- new rows: waking delivery loops in this process -------------------------------------

_NEW_ROWS = "cercle.outbox.new_rows"  # a flag in Session.info until the session commits
NOTIFY_CHANNEL = "cercle_outbox"  # on PostgreSQL, also NOTIFY'd to other processes
_watchers: weakref.WeakKeyDictionary[Engine, list[Callable[[], None]]] = weakref.WeakKeyDictionary()
_watchers_lock = threading.Lock()


def watch_outbox(engine: Engine, callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` after every commit on ``engine`` that wrote outbox rows through an
    :class:`OutboxWriter` (in the committing thread; it must be quick and must not raise).
    Lets a delivery loop in the same process (``cercle run``) start at once instead of at
    its next poll. Returns the function that stops watching. (On PostgreSQL such commits are
    also announced with ``NOTIFY cercle_outbox``, for workers in other processes.)"""
    with _watchers_lock:
        _watchers.setdefault(engine, []).append(callback)

    def unwatch() -> None:
        with _watchers_lock:
            callbacks = _watchers.get(engine, [])
            if callback in callbacks:
                callbacks.remove(callback)

    return unwatch


@event.listens_for(OrmSession, "after_commit")
def _rows_committed(session: OrmSession) -> None:
    if not session.info.pop(_NEW_ROWS, False):
        return
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with _watchers_lock:
        callbacks = list(_watchers.get(engine, ()))
    for callback in callbacks:
        try:
            callback()
        except Exception:  # a watcher must never fail the commit's caller
            log.exception("outbox watcher failed")


@event.listens_for(OrmSession, "after_rollback")
def _rows_rolled_back(session: OrmSession) -> None:
    session.info.pop(_NEW_ROWS, None)


@dataclass
class OutboxWriter:
    """Adds outbox rows within the caller's transaction."""

    session: Session
    keys: DataKeys
    now: datetime

    def body(self, payload: dict[str, Any]) -> int:
        """Store one sealed payload and return its id."""
        body = OutboxBody(payload_enc=seal_payload(self.keys, payload), created_at=self.now)
        self.session.add(body)
        self.session.flush()
        assert body.id is not None  # noqa: S101 - set by flush
        return body.id

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        """Insert prepared rows in one statement."""
        if not rows:
            return
        self.session.execute(insert(Outbox), rows)
        if not self.session.info.get(_NEW_ROWS):
            self.session.info[_NEW_ROWS] = True
            if self.session.get_bind().dialect.name == "postgresql":
                # Workers in other processes hear it when (and only if) this commits.
                self.session.execute(select(func.pg_notify(NOTIFY_CHANNEL, "")))

    def row(
        self,
        recipient: Member,
        body_id: int | None,
        *,
        kind: OutboxKind = OutboxKind.MESSAGE,
        inbound_id: int | None = None,
        target_inbound_id: int | None = None,
        address_enc: bytes | None = None,
        report_failure: bool = True,
    ) -> dict[str, Any]:
        """One row's values (not yet inserted)."""
        return {
            "group_id": recipient.group_id,
            "recipient_id": recipient.id,
            "channel": recipient.channel,
            "kind": kind,
            "body_id": body_id,
            "inbound_id": inbound_id,
            "target_inbound_id": target_inbound_id,
            "address_enc": address_enc,
            "report_failure": report_failure,
            "state": OutboxState.PENDING,
            "attempts": 0,
            "created_at": self.now,
        }

    def fan_out(
        self,
        recipients: Iterable[Member],
        text: Renderable,
        *,
        kind: OutboxKind = OutboxKind.MESSAGE,
        inbound_id: int | None = None,
        target_inbound_id: int | None = None,
        extra: dict[str, Any] | None = None,
        extra_by_lang: dict[str, dict[str, Any]] | None = None,
        report_failure: bool = True,
    ) -> int:
        """Send ``text`` to each recipient in their language, with the words of their channel
        where the text has some: one sealed body per language (and channel)."""
        per_channel = depends_on_channel(text)
        by_lang: dict[tuple[str, str], list[Member]] = defaultdict(list)
        for member in recipients:
            by_lang[member.lang, member.channel if per_channel else ""].append(member)
        rows: list[dict[str, Any]] = []
        for (lang, channel), members in by_lang.items():
            words = for_channel(text, channel) if per_channel else text
            payload = {"text": words.render(lang), **(extra or {})}
            payload.update((extra_by_lang or {}).get(lang, {}))
            body_id = self.body(payload)
            rows.extend(
                self.row(
                    m,
                    body_id,
                    kind=kind,
                    inbound_id=inbound_id,
                    target_inbound_id=target_inbound_id,
                    report_failure=report_failure,
                )
                for m in members
            )
        self.add_rows(rows)
        return len(rows)

    def timer(self, member: Member, seconds: int) -> None:
        """Set ``member``'s conversation timer before anything else queued after this."""
        body_id = self.body({"seconds": seconds})
        self.add_rows([self.row(member, body_id, kind=OutboxKind.TIMER, report_failure=False)])

    def last_words(self, member: Member, address: str, text: Renderable) -> None:
        """A final message to someone whose data is being deleted: the row keeps its own
        sealed copy of the address, wiped when the row is final."""
        body_id = self.body({"text": for_channel(text, member.channel).render(member.lang)})
        sealed = self.keys.encrypt_text(address, ADDRESS_CONTEXT)
        self.add_rows([self.row(member, body_id, address_enc=sealed, report_failure=False)])
