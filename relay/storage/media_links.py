"""Photos hosted for a few minutes at unguessable URLs, for the SMS provider to fetch.

An MMS carries a URL, not a file: the provider downloads the photo from us. Each stripped
photo is stored sealed under a keyed hash of a random token, served once (then deleted), and
deleted anyway when its message is final or after :data:`TTL`. Nothing here knows the web
or the provider; photos go in and out as (content type, bytes).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import Session, col, delete, select

from relay.storage.crypto import DataKeyError, DataKeys
from relay.storage.engine import checkpoint, transaction
from relay.storage.models import MediaLink

MEDIA_CONTEXT = "media_link.payload"
HASH_KIND = "media-link"
TTL = timedelta(minutes=10)  # the provider fetches within seconds; this bounds a failed send


def _hash(keys: DataKeys, token: str) -> str:
    return keys.lookup_hash(token, HASH_KIND)


def publish(engine: Engine, keys: DataKeys, now: datetime, content_type: str, data: bytes) -> str:
    """Store one photo; return the token of its URL (shown to the provider only)."""
    token = secrets.token_urlsafe(32)
    payload = {
        "content_type": content_type,
        "data": base64.b64encode(data).decode("ascii"),
    }
    with transaction(engine) as s:
        s.add(
            MediaLink(
                token_hash=_hash(keys, token),
                payload_enc=keys.encrypt(json.dumps(payload).encode(), MEDIA_CONTEXT.encode()),
                expires_at=now + TTL,
                created_at=now,
            )
        )
    return token


def take(engine: Engine, keys: DataKeys, token: str, now: datetime) -> tuple[str, bytes] | None:
    """The photo (content type, bytes) behind ``token``, deleted as it is handed out (served
    once); ``None`` when unknown, already taken, expired or unreadable."""
    with transaction(engine) as s:
        link = s.exec(
            select(MediaLink).where(col(MediaLink.token_hash) == _hash(keys, token))
        ).first()
        if link is None:
            return None
        s.delete(link)
        if link.expires_at.replace(tzinfo=now.tzinfo) <= now or link.payload_enc is None:
            return None
        try:
            payload = json.loads(keys.decrypt(link.payload_enc, MEDIA_CONTEXT.encode()))
        except DataKeyError:
            return None
    return str(payload["content_type"]), base64.b64decode(payload["data"])


def bind(engine: Engine, keys: DataKeys, tokens: Sequence[str], message_ref: str) -> None:
    """These photos belong to the provider's message ``message_ref``."""
    hashes = [_hash(keys, t) for t in tokens]
    with transaction(engine) as s:
        s.execute(
            update(MediaLink)
            .where(col(MediaLink.token_hash).in_(hashes))
            .values(message_ref=message_ref)
        )


def withdraw(engine: Engine, keys: DataKeys, tokens: Sequence[str]) -> None:
    """Delete photos now (their send failed)."""
    hashes = [_hash(keys, t) for t in tokens]
    with transaction(engine) as s:
        s.execute(delete(MediaLink).where(col(MediaLink.token_hash).in_(hashes)))


def forget_message(engine: Engine, message_ref: str) -> int:
    """Delete the photos of a message whose status is final; how many were left."""
    with transaction(engine) as s:
        gone = s.execute(delete(MediaLink).where(col(MediaLink.message_ref) == message_ref))
    return int(gone.rowcount or 0)  # type: ignore[attr-defined]


def purge_expired(engine: Engine, now: datetime) -> int:
    """Delete expired photos and, when there were some, empty SQLite's write-ahead log of
    their pages (sealed, but gone is better)."""
    with transaction(engine) as s:
        gone = int(
            s.execute(delete(MediaLink).where(col(MediaLink.expires_at) <= now)).rowcount or 0  # type: ignore[attr-defined]
        )
    if gone:
        checkpoint(engine)
    return gone


def hosted(engine: Engine) -> int:
    """How many photos are hosted now."""
    with Session(engine) as s:
        return len(s.exec(select(MediaLink.id)).all())
