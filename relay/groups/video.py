"""Video sessions on the organization's own Jitsi Meet server: rooms, links, and forgetting.

At the start of a session each member who has agreed gets a link to a room made for that
session only. The room's name is random (160 bits, written in the 32 lower-case characters
of base32: Jitsi lower-cases room names, so only lower-case characters count). Each member's
link differs from the others only after ``#``, in options that Jitsi Meet reads in the
browser and that never reach a server: the member's pseudonym as the name others see, camera
and microphone off, and the screen where they can check both before joining.

The room's address is kept sealed while the session runs (:class:`VideoRoom`), so ``/video``
can send it again. When the session ends the row is deleted, links not yet sent are
cancelled, links on phones or pages that can lose them are taken back, and their sealed
bodies are wiped: nothing at rest names the room any more.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import quote, urlsplit

from sqlalchemy import delete, update
from sqlalchemy.engine import CursorResult
from sqlmodel import Session, col, select

from relay.core.outcome import Outcome, Store
from relay.delivery.outbox import OutboxWriter
from relay.delivery.recall import RECALLABLE, REVOKED, queue_deletes
from relay.errors import CercleError
from relay.language.i18n import Raw, T
from relay.storage.crypto import DataKeys
from relay.storage.models import (
    OPEN_STATES,
    VIDEO_ROOM_CONTEXT,
    Group,
    Member,
    MemberState,
    Outbox,
    OutboxBody,
    OutboxKind,
    OutboxState,
    VideoLink,
    VideoRoom,
)

log = logging.getLogger(__name__)

ROOM_BYTES = 20  # 160 random bits: 32 base32 characters, all lower-case
VIDEO_URL_KEY = "video_url"  # the payload field the web door shows as a button

# Jitsi Meet reads each option after ``#`` as a JSON value, once URL-decoded: a string must
# be JSON-quoted (a bare or ``+``-spaced one is dropped), ``true`` is the JSON boolean.
_MUTED = (
    "config.startWithVideoMuted=true",
    "config.startWithAudioMuted=true",
    "config.prejoinConfig.enabled=true",
)


def check_server(url: str) -> str:
    """The base address of the organization's Jitsi Meet server, without a trailing ``/``.

    It must be an ``https`` address with a host and nothing after the path (no ``?``, no
    ``#``, no user name or password): rooms are added at its end. Raises
    :class:`CercleError` naming ``CERCLE_VIDEO_URL`` otherwise.
    """
    parts = urlsplit(url.strip())
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
        or any(c.isspace() for c in url.strip())
    ):
        raise CercleError(
            "CERCLE_VIDEO_URL must be the https address of the organization's own Jitsi Meet "
            "server, e.g. https://video.example.org (no ? or # in it)."
        )
    return url.strip().rstrip("/")


def new_room_name() -> str:
    """A fresh room name: 160 random bits in 32 lower-case base32 characters."""
    return base64.b32encode(secrets.token_bytes(ROOM_BYTES)).decode("ascii").lower()


def room_url(server: str, room: str) -> str:
    """The room's address on ``server`` (already checked by :func:`check_server`)."""
    return f"{server}/{room}"


def member_link(url: str, pseudonym: str) -> str:
    """``url`` with the options that make the room open as ``pseudonym``, muted.

    The name is JSON-quoted, then every character that is not a letter, digit or one of
    ``-._~`` is percent-encoded, so no ``&``, ``=``, ``#``, ``+`` or space in a pseudonym can
    end the option early or add one.
    """
    name = quote(json.dumps(pseudonym, ensure_ascii=False), safe="")
    return url + "#" + "&".join((f"userInfo.displayName={name}", *_MUTED))


def link_text(link: str) -> T:
    """What a member receives at the start of a session (and on ``/video``)."""
    return T(
        "The video session has started. Your link, for this session only:\n{link}\n\n"
        "It opens with your camera and microphone off, under your name in the group. Video "
        "can show your face, and someone near you may hear you: you may keep the camera and "
        "microphone off, or stay in the text group instead.",
        link=Raw(link),
    )


def no_session_text() -> T:
    """The answer to ``/video`` outside a session."""
    return T("There is no video session now. The link comes here when the next one starts.")


# --- the running room --------------------------------------------------------------------


def live_room(s: Session, keys: DataKeys, group_id: int, now: datetime) -> str | None:
    """The address of the room of the session running now, if there is one."""
    room = s.get(VideoRoom, group_id)
    if room is None or not room.starts_at <= now < room.ends_at:
        return None
    return keys.decrypt_text(room.url_enc, VIDEO_ROOM_CONTEXT)


def send_if_live(s: Session, writer: OutboxWriter, group: Group, member: Member) -> bool:
    """Queue ``member``'s own link if their group's session room is open now (in the
    caller's transaction); whether there was one."""
    if group.id is None or not group.video:
        return False
    url = live_room(s, writer.keys, group.id, writer.now)
    if url is None:
        return False
    send_links(s, writer, group.id, url, [member])
    return True


def send_own_link(st: Store) -> bool:
    """Queue the acting member's own link if a session room is open now (``/video``)."""
    return st.actor is not None and send_if_live(st.s, st.writer, st.group, st.actor)


def newcomer_link(st: Store) -> Outcome:
    """Someone who agrees while a video session runs gets their link too, after the welcome."""
    send_own_link(st)
    return Outcome()


def open_room(
    s: Session,
    writer: OutboxWriter,
    group: Group,
    server: str,
    starts_at: datetime,
    ends_at: datetime,
) -> int:
    """Make a fresh room for the session from ``starts_at`` to ``ends_at`` (ending the
    group's earlier one, if any) and send each member who has agreed their link. Call in
    the caller's transaction; returns how many links were queued."""
    assert group.id is not None  # noqa: S101 - a stored group has an id
    close_room(s, writer, group.id)
    url = room_url(check_server(server), new_room_name())
    s.add(
        VideoRoom(
            group_id=group.id,
            url_enc=writer.keys.encrypt_text(url, VIDEO_ROOM_CONTEXT),
            starts_at=starts_at,
            ends_at=ends_at,
        )
    )
    members = s.exec(
        select(Member).where(
            col(Member.group_id) == group.id, col(Member.state) == MemberState.ACTIVE
        )
    ).all()
    return send_links(s, writer, group.id, url, members)


def send_links(
    s: Session, writer: OutboxWriter, group_id: int, url: str, members: Iterable[Member]
) -> int:
    """Queue each member's own link to the room at ``url``: one sealed body per member
    (their name is in it), each remembered so the session's end can take it back."""
    rows = []
    for member in members:
        link = member_link(url, member.pseudonym or "?")
        body_id = writer.body({"text": link_text(link).render(member.lang), VIDEO_URL_KEY: link})
        s.add(VideoLink(body_id=body_id, group_id=group_id))
        rows.append(writer.row(member, body_id))
    writer.add_rows(rows)
    return len(rows)


def close_room(s: Session, writer: OutboxWriter, group_id: int) -> bool:
    """End the group's video session now: forget the room, cancel links not yet sent, take
    back those on phones and pages that can lose them (Signal, the web door), and wipe every
    link's sealed body. Safe from several workers at once: the row's deletion orders them, and
    a second caller finds nothing left to do. Returns whether there was a room."""
    deleted: CursorResult[tuple[()]] = s.execute(  # type: ignore[assignment]
        delete(VideoRoom).where(col(VideoRoom.group_id) == group_id)
    )
    bodies = list(s.exec(select(VideoLink.body_id).where(col(VideoLink.group_id) == group_id)))
    if bodies:
        s.execute(
            update(Outbox)
            .where(col(Outbox.body_id).in_(bodies), col(Outbox.state).in_(OPEN_STATES))
            .values(
                state=OutboxState.CANCELLED,
                error_reason=REVOKED,  # a send racing this is deleted at once (recall_late)
                lease_owner=None,
                lease_until=None,
                done_at=writer.now,
            )
        )
        sent = s.exec(
            select(Outbox.recipient_id, Outbox.provider_ref).where(
                col(Outbox.body_id).in_(bodies),
                col(Outbox.kind) == OutboxKind.MESSAGE,
                col(Outbox.state) == OutboxState.SENT,
                col(Outbox.channel).in_(RECALLABLE),
                col(Outbox.provider_ref).is_not(None),
            )
        ).all()
        queue_deletes(s, writer, [(rid, ref) for rid, ref in sent if ref is not None])
        s.execute(update(OutboxBody).where(col(OutboxBody.id).in_(bodies)).values(payload_enc=None))
        s.execute(delete(VideoLink).where(col(VideoLink.group_id) == group_id))
    return deleted.rowcount == 1


def ended_rooms(s: Session, now: datetime) -> list[int]:
    """Groups whose video room must go now: its session is over, the group stopped meeting
    by video, or the group was closed."""
    return list(
        s.exec(
            select(VideoRoom.group_id)
            .join(Group, col(Group.id) == VideoRoom.group_id)
            .where(
                (col(VideoRoom.ends_at) <= now)
                | col(Group.video).is_(False)
                | col(Group.closed_at).is_not(None)
            )
        )
    )
