"""Seats and copies: what the web door keeps in the database, always sealed or hashed.

A seat ties a bearer token (as a keyed hash) to a member. A copy is one thing the core sent a
web member, sealed, waiting for their browser; it is deleted once the browser acknowledges it
or when the group's timer passes, whichever comes first. Nothing here stores a number, an IP
address, a token or a message in clear.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlmodel import Session, col

from relay.clock import Clock
from relay.delivery.outbox import ADDRESS_CONTEXT
from relay.storage.crypto import DataKeys
from relay.storage.engine import transaction
from relay.storage.models import (
    OPEN_STATES,
    WEB_COPY_CONTEXT,
    Group,
    Member,
    MemberState,
    Outbox,
    WebCopy,
    WebSeat,
)

log = logging.getLogger(__name__)

TOKEN_KIND = "web.token"  # noqa: S105 - a hash domain, not a secret
SEAT_KIND = "web.seat"
FORM_KIND = "web.form"
COPY_CONTEXT = WEB_COPY_CONTEXT.encode()
NOTIFY_CHANNEL = "cercle_web"  # on PostgreSQL, NOTIFY'd when copies commit
TOKEN_BYTES = 32  # 256 bits: far beyond guessing
MAX_TOKEN_CHARS = 64
FETCH_LIMIT = 500
QUIET_SEAT = timedelta(hours=1)  # a removed member's seat, with nothing left to read, goes


class CopyKind:
    """What a copy asks the page to do."""

    MESSAGE = "message"  # a message for the member
    OWN = "own"  # what the member sent, shown on their own page
    EDIT = "edit"  # replace the text of the copy at ``target_ref``
    DELETE = "delete"  # remove the copy at ``target_ref`` from the page


def new_token() -> str:
    """A fresh bearer token (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_address() -> str:
    """A fresh opaque seat address: what the core sends to. Means nothing outside Cercle."""
    return "w" + secrets.token_hex(16)


# "Name: words" or "Name (staff): words" ("Nom : mots" in French): a pseudonym (one or two
# words, no sentence punctuation) before the first colon. Cercle's notices do not match.
_NAME = r"[^\s.,!?;:()]{1,32}(?: [^\s.,!?;:()]{1,32})?(?: \([^\s()]{1,16}\))?"
_SPEAKER = re.compile(rf"^({_NAME})[ \u00a0\u202f]?: (.*)$", re.S)


def _utc(moment: datetime) -> datetime:
    """An aware UTC time (SQLite gives back naive ones)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Seat:
    """An authenticated seat, as the routes need it."""

    id: int
    member_id: int
    seat_hash: str
    address: str | None  # None once the member is removed
    lang: str
    state: str
    pseudonym: str | None
    timer_seconds: int
    form_key: str  # what the no-script send form must carry (see routes: CSRF)
    group_name: str | None = None  # only when the group chose to show it on the page

    @property
    def removed(self) -> bool:
        """The member is no longer in the group: only what is left can be read, once."""
        return self.state == MemberState.REMOVED

    def __repr__(self) -> str:  # never print identifiers by accident
        return f"Seat({self.id}, {self.state})"


@dataclass(frozen=True)
class Copy:
    """One copy, opened, for the page."""

    id: int
    kind: str
    ref: str
    target_ref: str | None
    text: str
    at: datetime
    expires_at: datetime
    link: str | None = None  # a video room's address: the page shows it as a button
    photos: tuple[bool, ...] = ()  # per photo: can it still be opened (bots/web/photos.py)

    def __repr__(self) -> str:
        return f"Copy({self.id}, {self.kind})"

    @property
    def when(self) -> datetime:
        """When it was stored, in UTC (the page's script shows it in the reader's time)."""
        return _utc(self.at)

    @property
    def speaker(self) -> tuple[str | None, str]:
        """Who speaks and what they say, for a message relayed as ``Name: words``; a notice
        from Cercle has no speaker."""
        spoken = self.kind in (CopyKind.MESSAGE, CopyKind.EDIT)
        found = _SPEAKER.match(self.text) if spoken else None
        if found is None:
            return None, self.text
        return found.group(1), found.group(2)

    def as_event(self) -> dict[str, object]:
        """What the page's script receives."""
        who, body = self.speaker
        return {
            "id": self.id,
            "kind": self.kind,
            "ref": self.ref,
            "target": self.target_ref,
            "text": self.text,
            "who": who,
            "body": body,
            "link": self.link,
            "at": _utc(self.at).isoformat(),
            "expires": _utc(self.expires_at).isoformat(),
            "photos": [i for i, here in enumerate(self.photos) if here],
        }


class WebStore:
    """Seats and copies over one database."""

    def __init__(self, engine: Engine, keys: DataKeys, clock: Clock) -> None:
        self.engine = engine
        self.keys = keys
        self.clock = clock

    # --- seats ----------------------------------------------------------------------------

    def seat_hash(self, address: str) -> str:
        """The keyed hash a seat is found by from its address."""
        return self.keys.lookup_hash(address, SEAT_KIND)

    def new_seat(
        self, s: Session, member_id: int, token: str, address: str, timer: int, now: datetime
    ) -> None:
        """Add the seat of a member who just joined (in the caller's transaction)."""
        s.add(
            WebSeat(
                member_id=member_id,
                token_hash=self.keys.lookup_hash(token, TOKEN_KIND),
                seat_hash=self.seat_hash(address),
                timer_seconds=timer,
                created_at=now,
                touched_at=now,
            )
        )

    def form_key(self, token: str) -> str:
        """A value derived from the token that the no-script send form carries (CSRF)."""
        return self.keys.lookup_hash(token, FORM_KIND)[:32]

    def form_key_ok(self, token: str, given: str) -> bool:
        """Whether a posted form carried this token's form key (constant time)."""
        # Bytes: compare_digest raises TypeError on a str that is not ASCII (a forged field).
        return hmac.compare_digest(self.form_key(token).encode(), given.encode())

    def authenticate(self, token: str | None) -> Seat | None:
        """The seat ``token`` opens, or ``None``. Tokens hashed under a previous data key
        (during a key rotation) are re-hashed under the current one on first use."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        hashes = self.keys.lookup_hashes(token, TOKEN_KIND)
        with transaction(self.engine) as s:
            row = s.execute(select(WebSeat).where(col(WebSeat.token_hash).in_(hashes))).first()
            seat = row[0] if row is not None else None
            if seat is None:
                return None
            member = s.get(Member, seat.member_id)
            if member is None:
                return None
            address = (
                self.keys.decrypt_text(member.address_enc, ADDRESS_CONTEXT)
                if member.address_enc is not None
                else None
            )
            if seat.token_hash != hashes[0]:
                self._rekey(s, seat, hashes[0], address)
            group = s.get(Group, member.group_id)
            return Seat(
                id=seat.id or 0,
                member_id=member.id or 0,
                seat_hash=seat.seat_hash,
                address=address,
                lang=member.lang,
                state=member.state,
                pseudonym=member.pseudonym,
                timer_seconds=seat.timer_seconds,
                form_key=self.form_key(token),
                group_name=group.name if group is not None and group.show_name else None,
            )

    def _rekey(self, s: Session, seat: WebSeat, token_hash: str, address: str | None) -> None:
        old = seat.seat_hash
        seat.token_hash = token_hash
        if address is not None:
            seat.seat_hash = self.seat_hash(address)
            s.execute(
                update(WebCopy)
                .where(col(WebCopy.seat_hash) == old)
                .values(seat_hash=seat.seat_hash)
            )
        s.add(seat)

    def _seat_for(self, s: Session, address: str) -> WebSeat | None:
        hashes = self.keys.lookup_hashes(address, SEAT_KIND)
        row = s.execute(select(WebSeat).where(col(WebSeat.seat_hash).in_(hashes))).first()
        return row[0] if row is not None else None

    def set_timer(self, address: str, seconds: int) -> bool:
        """Set how long new copies stay for this seat; ``False`` if there is no such seat."""
        with transaction(self.engine) as s:
            seat = self._seat_for(s, address)
            if seat is None:
                return False
            seat.timer_seconds = seconds
            s.add(seat)
            return True

    def forget(self, seat_hash: str) -> None:
        """Delete a seat and everything waiting for it (a removed member who read the end)."""
        with transaction(self.engine) as s:
            s.execute(delete(WebCopy).where(col(WebCopy.seat_hash) == seat_hash))
            s.execute(delete(WebSeat).where(col(WebSeat.seat_hash) == seat_hash))

    # --- copies ---------------------------------------------------------------------------

    def put(
        self,
        address: str,
        kind: str,
        text: str = "",
        *,
        target_ref: str | None = None,
        ref: str | None = None,
        link: str | None = None,
        photos: list[dict[str, str]] | None = None,
    ) -> str | None:
        """Store one sealed copy for the seat at ``address``; its ref, or ``None`` if there is
        no such seat. A delete also wipes the target if the browser has not fetched it yet."""
        now = self.clock.now()
        ref = ref or secrets.token_hex(8)
        with transaction(self.engine) as s:
            seat = self._seat_for(s, address)
            if seat is None:
                return None
            self._put(s, seat, kind, text, target_ref, ref, now, link, photos)
        return ref

    def put_own(self, seat: Seat, text: str, ref: str) -> None:
        """Store what the member sent, so their page shows it in its place among the rest."""
        now = self.clock.now()
        with transaction(self.engine) as s:
            row = s.get(WebSeat, seat.id)
            if row is not None:
                self._put(s, row, CopyKind.OWN, text, None, ref, now)

    def _put(
        self,
        s: Session,
        seat: WebSeat,
        kind: str,
        text: str,
        target_ref: str | None,
        ref: str,
        now: datetime,
        link: str | None = None,
        photos: list[dict[str, str]] | None = None,
    ) -> None:
        # Photos travel sealed inside their copy, so every wipe of the copy wipes them too.
        content: dict[str, object] = {"text": text}
        if link is not None:
            content["link"] = link
        if photos:
            content["photos"] = photos
        payload = json.dumps(content, ensure_ascii=False).encode()
        if kind == CopyKind.DELETE and target_ref is not None:
            s.execute(
                delete(WebCopy).where(
                    col(WebCopy.seat_hash) == seat.seat_hash, col(WebCopy.ref) == target_ref
                )
            )
        s.add(
            WebCopy(
                seat_hash=seat.seat_hash,
                ref=ref,
                kind=kind,
                target_ref=target_ref,
                payload_enc=self.keys.encrypt(payload, COPY_CONTEXT),
                created_at=now,
                expires_at=now + timedelta(seconds=seat.timer_seconds),
            )
        )
        seat.touched_at = now
        s.add(seat)
        if s.get_bind().dialect.name == "postgresql":
            # Web processes LISTENing hear of it when (and only if) this commits.
            s.execute(select(func.pg_notify(NOTIFY_CHANNEL, "")))

    def forget_copy(self, seat: Seat, ref: str) -> None:
        """Wipe one copy of a seat (a retried post's second echo)."""
        with transaction(self.engine) as s:
            s.execute(
                delete(WebCopy).where(
                    col(WebCopy.seat_hash) == seat.seat_hash, col(WebCopy.ref) == ref
                )
            )

    def still_seated(self, seat_id: int) -> bool:
        """Whether the seat's member is still in the group."""
        with Session(self.engine) as s:
            seat = s.get(WebSeat, seat_id)
            member = s.get(Member, seat.member_id) if seat is not None else None
            return member is not None and member.state != MemberState.REMOVED

    def farewell_on_its_way(self, seat_id: int) -> bool:
        """Whether a last message for the seat's removed member is still in the outbox: the
        removal commits before the delivery engine writes the copy, and the page must show it
        before it ends."""
        with Session(self.engine) as s:
            seat = s.get(WebSeat, seat_id)
            if seat is None:
                return False
            waiting = s.execute(
                select(func.count())
                .select_from(Outbox)
                .where(
                    col(Outbox.recipient_id) == seat.member_id,
                    col(Outbox.state).in_(OPEN_STATES),
                )
            ).scalar_one()
            return bool(waiting)

    def fetch(self, seat_hash: str, after: int = 0) -> list[Copy]:
        """Copies after id ``after`` that the timer has not yet removed, oldest first."""
        now = self.clock.now()
        with Session(self.engine) as s:
            rows = s.execute(
                select(WebCopy)
                .where(
                    col(WebCopy.seat_hash) == seat_hash,
                    col(WebCopy.id) > after,
                    col(WebCopy.expires_at) > now,
                )
                .order_by(col(WebCopy.id))
                .limit(FETCH_LIMIT)
            ).scalars()
            return [self._open(r) for r in rows]

    def _open(self, row: WebCopy) -> Copy:
        content: dict[str, Any] = {}
        if row.payload_enc is not None:
            content = json.loads(self.keys.decrypt(row.payload_enc, COPY_CONTEXT))
        photos = tuple("data" in p for p in content.get("photos", ()))
        return Copy(
            row.id or 0,
            row.kind,
            row.ref,
            row.target_ref,
            content.get("text", ""),
            row.created_at,
            row.expires_at,
            content.get("link"),
            photos,
        )

    def ack(self, seat_hash: str, upto: int) -> int:
        """The browser has every copy up to id ``upto``: wipe them. Returns how many."""
        if upto <= 0:
            return 0
        with transaction(self.engine) as s:
            result = s.execute(
                delete(WebCopy).where(col(WebCopy.seat_hash) == seat_hash, col(WebCopy.id) <= upto)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def purge(self) -> int:
        """Wipe copies whose timer passed, and the seats of removed members once quiet."""
        now = self.clock.now()
        with transaction(self.engine) as s:
            gone = s.execute(delete(WebCopy).where(col(WebCopy.expires_at) <= now))
            removed = select(col(Member.id)).where(col(Member.state) == MemberState.REMOVED)
            waiting = select(col(WebCopy.seat_hash))
            s.execute(
                delete(WebSeat).where(
                    col(WebSeat.member_id).in_(removed),
                    col(WebSeat.touched_at) < now - QUIET_SEAT,
                    col(WebSeat.seat_hash).not_in(waiting),
                )
            )
            return int(gone.rowcount)  # type: ignore[attr-defined]

    def newest_id(self) -> int:
        """The largest copy id so far (0 when none)."""
        with Session(self.engine) as s:
            return int(s.execute(select(func.coalesce(func.max(WebCopy.id), 0))).scalar_one())

    def seats_with_news(self, after: int) -> tuple[int, set[str]]:
        """Seats with copies newer than id ``after``, and the newest id: one query for every
        connected browser together."""
        with Session(self.engine) as s:
            rows = s.execute(
                select(col(WebCopy.id), col(WebCopy.seat_hash)).where(col(WebCopy.id) > after)
            ).all()
        if not rows:
            return after, set()
        return max(r[0] for r in rows), {r[1] for r in rows}
