"""Seats and copies: what the web door keeps in the database, always sealed or hashed.

The core's side of :class:`relay.doors.WebSeats`: the web door (``bots/web/``) reaches it only
through that protocol.

A seat ties a bearer token (as a keyed hash) to a member. A copy is one thing the core sent a
web member, sealed, waiting for their browser; it is deleted once the browser acknowledges it
or when the group's timer passes, whichever comes first. Nothing here stores a number, an IP
address, a token or a message in clear.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlmodel import Session, col

from relay.clock import Clock
from relay.delivery.outbox import ADDRESS_CONTEXT
from relay.doors import FETCH_LIMIT, MAX_TOKEN_CHARS, Copy, CopyKind, Seat
from relay.storage.crypto import DataKeys
from relay.storage.engine import is_postgres, listen, transaction
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
QUIET_SEAT = timedelta(hours=1)  # a removed member's seat, with nothing left to read, goes


class WebStore:
    """Seats and copies over one database (:class:`relay.doors.WebSeats`)."""

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

    # --- photos inside copies -------------------------------------------------------------

    def hand_out(
        self, seat_hash: str, copy_id: int, index: int, *, once: bool
    ) -> tuple[str, bytes] | None:
        """The photo ``index`` of copy ``copy_id`` if that copy is this seat's and still here;
        with ``once`` it is taken out of the copy as it is handed out. ``None`` otherwise."""
        now = self.clock.now()
        with transaction(self.engine) as s:
            row = _own_copy(s, seat_hash, copy_id, now)
            if row is None or row.payload_enc is None:
                return None
            payload = json.loads(self.keys.decrypt(row.payload_enc, COPY_CONTEXT))
            photos = payload.get("photos", [])
            if not 0 <= index < len(photos) or "data" not in photos[index]:
                return None
            photo = photos[index]
            if once:
                photos[index] = {"type": photo["type"]}  # taken: the link shows as opened
                sealed = json.dumps(payload, ensure_ascii=False).encode()
                row.payload_enc = self.keys.encrypt(sealed, COPY_CONTEXT)
                s.add(row)
        return str(photo["type"]), base64.b64decode(photo["data"])

    def wipe_waiting(self, seat_hash: str) -> int:
        """Wipe every copy (photos included) waiting for a seat whose browser just left by the
        quick exit without script: its cookie is gone, so nothing can open them any more."""
        with transaction(self.engine) as s:
            gone = s.execute(delete(WebCopy).where(col(WebCopy.seat_hash) == seat_hash))
        return int(gone.rowcount or 0)  # type: ignore[attr-defined]

    def notifies(self) -> bool:
        """On PostgreSQL, other processes' stored copies are announced (``NOTIFY``)."""
        return is_postgres(self.engine)

    async def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` when another process stores copies (``LISTEN``), until cancelled."""
        await listen(self.engine, NOTIFY_CHANNEL, wake, "web copies")


def _own_copy(s: Session, seat_hash: str, copy_id: int, now: datetime) -> WebCopy | None:
    return s.execute(
        select(WebCopy).where(
            col(WebCopy.id) == copy_id,
            col(WebCopy.seat_hash) == seat_hash,
            col(WebCopy.expires_at) > now,
        )
    ).scalar_one_or_none()
