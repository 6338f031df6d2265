"""The one way in for every adapter, and what a channel may ask of the core besides sending.

Every adapter in ``bots/`` hands what it received to an :data:`Accept` callable, one
:class:`~relay.messages.Inbound` at a time; the application (``cercle/providers.py``) gives
it one bound to the core. What a channel genuinely needs from the core beyond that is named
here as a small protocol: the durable inbox a webhook writes to before it answers
(:class:`Inbox`, over :class:`relay.transport.InboundStash`), photos hosted for MMS
(:class:`MediaHost`), the seats and sealed copies of the web door (:class:`WebSeats`),
joining by a private link (:class:`WebJoins`) and the photo cleaner (:data:`CleanPhoto`).
The core implements them (``relay/service/``) and the application wires them; an adapter
imports nothing of the core but these contract modules.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from relay.messages import Attachment, Inbound
from relay.transport import InboundStash

MAX_TEXT = 4000  # characters in one message, whichever door it comes through
TOKEN_BYTES = 32  # a web seat's bearer token: 256 bits, far beyond guessing
MAX_TOKEN_CHARS = 64
FETCH_LIMIT = 500  # copies handed to a page at once


class Result(StrEnum):
    """What became of an inbound event (for logs and tests; names no one)."""

    DUPLICATE = "duplicate"
    UNKNOWN_SENDER = "unknown_sender"
    RELAYED = "relayed"
    COMMAND = "command"
    CONSENT = "consent"
    HELD_BACK = "held_back"  # not relayed, sender told why
    IGNORED = "ignored"
    STATE = "state"


Accept = Callable[[Inbound], Awaitable[Result]]
"""Hand one inbound event to the core (in one transaction) without blocking the event loop.
Raises when the core could not take it: the adapter keeps the event for a later try."""

CleanPhoto = Callable[[Attachment], Attachment]
"""The core's photo cleaner (metadata stripped, re-encoded, neutral name), for a door that
cleans a photo before it keeps it even briefly. Blocking; raises ``ValueError`` for a file
it will not relay."""


# --- the inbox of received events not yet accepted --------------------------------------


class Inbox(InboundStash, Protocol):
    """One channel's durable inbox, as a webhook uses it (:class:`relay.transport.InboundStash`,
    which the Signal receiver uses too, plus what a webhook asks before it stores): what a
    provider handed the adapter is written sealed before the provider gets its answer; the
    worker takes it back with :meth:`take`, and the core's de-duplication makes a second
    hand-over harmless."""

    async def accepted(self, dedup_key: str) -> bool:
        """Whether the core already accepted this provider event (a retried webhook)."""
        ...

    async def put(
        self, dedup_key: str, payload: dict[str, Any], *, hold: bool = True
    ) -> int | None:
        """Store one event; its ticket, or ``None`` when it is already stored or accepted.
        With ``hold``, workers leave it to the caller a while (the caller hands it over
        itself first); without, it is due at once."""
        ...


# --- photos sent by MMS ----------------------------------------------------------------------


class MediaHost(Protocol):
    """Makes stripped photos reachable by the SMS provider, briefly, at unguessable public
    URLs (the provider fetches them to send an MMS)."""

    async def publish(self, attachment: Attachment) -> str:
        """Host one file; return its URL (given to the provider only, never logged)."""
        ...

    async def withdraw(self, urls: Sequence[str]) -> None:
        """Delete hosted files now: their send failed."""
        ...

    async def bind(self, urls: Sequence[str], message_sid: str) -> None:
        """These files belong to the provider's message ``message_sid`` (deleted when its
        status is final)."""
        ...


# --- the web door ---------------------------------------------------------------------------


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
        return self.state == "removed"  # relay.storage.models.MemberState.REMOVED

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


class WebSeats(Protocol):
    """The web door's seats and sealed copies, as the core keeps them. Blocking calls: the
    door runs them in a worker thread."""

    def authenticate(self, token: str | None) -> Seat | None:
        """The seat ``token`` opens, or ``None``."""
        ...

    def form_key_ok(self, token: str, given: str) -> bool:
        """Whether a posted form carried this token's form key (constant time)."""
        ...

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
        """Store one sealed copy for the seat at ``address`` (``photos``, each ``{"type",
        "data"}`` in base64, sealed inside it); its ref, or ``None`` if there is no such
        seat."""
        ...

    def put_own(self, seat: Seat, text: str, ref: str) -> None:
        """Store what the member sent, so their page shows it among the rest."""
        ...

    def forget_copy(self, seat: Seat, ref: str) -> None:
        """Wipe one copy of a seat (a retried post's second echo)."""
        ...

    def set_timer(self, address: str, seconds: int) -> bool:
        """How long new copies stay for this seat; ``False`` if there is no such seat."""
        ...

    def fetch(self, seat_hash: str, after: int = 0) -> list[Copy]:
        """Copies after id ``after`` that the timer has not yet removed, oldest first."""
        ...

    def ack(self, seat_hash: str, upto: int) -> int:
        """The browser has every copy up to id ``upto``: wipe them. Returns how many."""
        ...

    def forget(self, seat_hash: str) -> None:
        """Delete a seat and everything waiting for it."""
        ...

    def still_seated(self, seat_id: int) -> bool:
        """Whether the seat's member is still in the group."""
        ...

    def farewell_on_its_way(self, seat_id: int) -> bool:
        """Whether a last message for the seat's removed member is still to be delivered."""
        ...

    def newest_id(self) -> int:
        """The largest copy id so far (0 when none)."""
        ...

    def seats_with_news(self, after: int) -> tuple[int, set[str]]:
        """Seats with copies newer than id ``after``, and the newest id."""
        ...

    def purge(self) -> int:
        """Wipe copies whose timer passed, and the seats of removed members once quiet."""
        ...

    def hand_out(
        self, seat_hash: str, copy_id: int, index: int, *, once: bool
    ) -> tuple[str, bytes] | None:
        """Photo ``index`` of this seat's copy ``copy_id`` (its type and bytes), or ``None``;
        with ``once`` it is taken out of the copy as it is handed out."""
        ...

    def wipe_waiting(self, seat_hash: str) -> int:
        """Wipe every copy waiting for a seat (photos included); how many."""
        ...

    def notifies(self) -> bool:
        """Whether other processes' stored copies are announced (:meth:`listen`); else the
        door looks for news by polling."""
        ...

    async def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever another process stores copies, until cancelled."""
        ...


@dataclass(frozen=True)
class Welcome:
    """What the join page shows for a usable link: its language and paragraphs."""

    lang: str
    parts: tuple[str, ...]


class WebJoins(Protocol):
    """Joining a group from a private link in a browser, and what the door asks around it.
    Blocking calls: the door runs them in a worker thread."""

    def preview(self, code: str, lang: str | None) -> Welcome | None:
        """The welcome of a usable link, or ``None`` (unknown, expired, used, closed)."""
        ...

    def join(self, code: str, token: str, address: str, lang: str | None) -> str | None:
        """Enroll a member with a new seat opened by ``token`` at ``address``; their
        language, or ``None`` when the link does not work."""
        ...

    def refused(self) -> None:
        """Count one client refused for asking too often."""
        ...

    def already_accepted(self, dedup_key: str) -> bool:
        """Whether the core already accepted this event (a retried post)."""
        ...
