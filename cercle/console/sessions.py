"""Console sessions, kept server-side, and the limit on sign-in attempts.

The cookie holds a random token; the database holds only its SHA-256, the staff member it
belongs to (once a passkey is verified), a CSRF token, the language and any pending passkey
challenge. Sessions end after 15 idle minutes and at most 10 hours after sign-in; signing out
deletes the row, so a copied cookie stops working at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete
from sqlmodel import Session, col

from relay.storage.crypto import DataKeys
from relay.storage.engine import transaction
from relay.storage.models import JoinAttempt, StaffSession

COOKIE = "cercle_staff"
IDLE = timedelta(minutes=15)
LONGEST = timedelta(hours=10)
ATTEMPT_WINDOW = timedelta(minutes=15)
# Sign-in and setup attempts per client per window. There is no limit on everyone together:
# it would let anyone who sends enough attempts keep every member of staff out.
PER_CLIENT = 10


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(engine: Engine, now: datetime, lang: str, staff_id: int | None = None) -> str:
    """Start a session (anonymous until ``staff_id`` is given); return the cookie's token.
    Sessions idle for too long are deleted on the way."""
    token = secrets.token_urlsafe(32)
    with transaction(engine) as s:
        s.execute(delete(StaffSession).where(col(StaffSession.seen_at) < now - IDLE))
        s.add(
            StaffSession(
                token_hash=_hash(token),
                staff_id=staff_id,
                csrf=secrets.token_urlsafe(24),
                lang=lang,
                created_at=now,
                seen_at=now,
            )
        )
    return token


def load(s: Session, token: str | None, now: datetime) -> StaffSession | None:
    """The live session for ``token``, touched; ``None`` (and deleted) once it expired."""
    if not token or len(token) > 100:
        return None
    row = s.get(StaffSession, _hash(token))
    if row is None:
        return None
    if now - row.seen_at > IDLE or now - row.created_at > LONGEST:
        s.delete(row)
        return None
    row.seen_at = now
    s.add(row)
    return row


def close(engine: Engine, token: str | None) -> None:
    """End a session (sign-out)."""
    if token:
        with transaction(engine) as s:
            s.execute(delete(StaffSession).where(col(StaffSession.token_hash) == _hash(token)))


def csrf_ok(row: StaffSession, sent: str | None) -> bool:
    """Whether a form or request carries this session's CSRF token."""
    # Bytes: compare_digest raises TypeError on a str that is not ASCII, and a forged token can be.
    return bool(sent) and hmac.compare_digest(row.csrf.encode(), (sent or "").encode())


def _count(s: Session, key: str, now: datetime) -> int:
    row = s.get(JoinAttempt, key)
    if row is None or now - row.window_start >= ATTEMPT_WINDOW:
        row = row or JoinAttempt(key=key, window_start=now, count=0)
        row.window_start, row.count = now, 0
    row.count += 1
    s.add(row)
    return row.count


def _client_key(keys: DataKeys, client: str) -> str:
    return "staff:" + keys.lookup_hash(client, "staff-client")[:40]


def over_limit(engine: Engine, keys: DataKeys, client: str, now: datetime) -> bool:
    """Whether ``client`` used up the attempts of the window, without counting one more."""
    with Session(engine) as s:
        row = s.get(JoinAttempt, _client_key(keys, client))
        live = row is not None and now - row.window_start < ATTEMPT_WINDOW
        return live and row is not None and row.count >= PER_CLIENT


def attempt_allowed(engine: Engine, keys: DataKeys, client: str, now: datetime) -> bool:
    """Count one sign-in or setup attempt from ``client`` (an address, kept only as a keyed
    hash); ``False`` once it is over the limit for the window."""
    with transaction(engine) as s:
        mine = _count(s, _client_key(keys, client), now)
    return mine <= PER_CLIENT
