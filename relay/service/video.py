"""Video sessions, as admins, the console and the worker's scheduled jobs drive them.

A group meets by video only when an admin turned it on and the organization set the address
of its own Jitsi Meet server (``CERCLE_VIDEO_URL``, :attr:`Relay.video_url`): no public
service is ever used. Each scheduled session then gets a fresh room at its start
(:func:`start_due`), which is forgotten at its end (:func:`end_due`). See
:mod:`relay.groups.video` for the room and the links.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Update, or_, update
from sqlalchemy.engine import CursorResult
from sqlmodel import Session, col

from relay.delivery.outbox import OutboxWriter
from relay.errors import CercleError
from relay.groups import schedule, video
from relay.service.groups import audit_setting
from relay.service.relay import Relay
from relay.storage.engine import transaction
from relay.storage.models import Group, GroupPolicy

log = logging.getLogger(__name__)


def require_server(relay: Relay) -> str:
    """The organization's Jitsi Meet address, or a refusal that says what to set."""
    if not relay.video_url:
        raise CercleError(
            "Video needs the organization's own Jitsi Meet server: set CERCLE_VIDEO_URL to its "
            "https address (see docs/video.md). Cercle never uses a public video service."
        )
    return video.check_server(relay.video_url)


def set_video(relay: Relay, name: str, on: bool) -> Group:
    """Make a group meet by video at each session, or stop. Turning it off ends a session's
    room at once (its links are taken back where they can be)."""
    if on:
        require_server(relay)
    now = relay.clock.now()
    with transaction(relay.engine) as s:
        group = relay.group(s, name)
        assert group.id is not None  # noqa: S101 - a stored group has an id
        if group.video != on:
            group.video = on
            s.add(group)
            audit_setting(s, group, now, "video", "on" if on else "off")
        if not on:
            video.close_room(s, OutboxWriter(s, relay.keys, now), group.id)
        return group


def _claimed(s: Session, statement: Update) -> bool:
    result: CursorResult[tuple[()]] = s.execute(statement)  # type: ignore[assignment]
    return result.rowcount == 1


def start_due(relay: Relay, group_id: int, now: datetime) -> int:
    """At the start of a scheduled session of a video group, open its room and send the
    links, once per session even with several workers. Returns how many links were queued."""
    with transaction(relay.engine) as s:
        group = s.get(Group, group_id)
        pol = s.get(GroupPolicy, group_id)
        if group is None or not group.video or group.closed_at is not None or pol is None:
            return 0
        sched = schedule.Schedule.of(pol)
        running = sched.current_or_next(now) if sched is not None else None
        if running is None or not running[0] <= now < running[1]:
            return 0
        start, end = running
        if pol.video_for == start or not schedule.is_open(pol, now):
            return 0  # sent already, or a facilitator closed the group for now
        if not _claimed(
            s,
            update(GroupPolicy)
            .where(
                col(GroupPolicy.group_id) == group_id,
                or_(col(GroupPolicy.video_for).is_(None), col(GroupPolicy.video_for) != start),
            )
            .values(video_for=start),
        ):
            return 0
        if not relay.video_url:
            # Said once per session; names no one and no group.
            log.warning("a group meets by video but CERCLE_VIDEO_URL is not set: no links sent")
            return 0
        writer = OutboxWriter(s, relay.keys, now)
        return video.open_room(s, writer, group, relay.video_url, start, end)


def start_now(relay: Relay, name: str, ends_at: datetime) -> int:
    """Open a room for the group now, until ``ends_at`` (the sandbox's ``:session``)."""
    server = require_server(relay)
    now = relay.clock.now()
    with transaction(relay.engine) as s:
        group = relay.group(s, name)
        if not group.video:
            raise CercleError(f"{name} does not meet by video: turn it on first.")
        return video.open_room(s, OutboxWriter(s, relay.keys, now), group, server, now, ends_at)


def end_now(relay: Relay, name: str) -> bool:
    """End the group's video session now (the sandbox's ``:session end``)."""
    now = relay.clock.now()
    with transaction(relay.engine) as s:
        group = relay.group(s, name)
        assert group.id is not None  # noqa: S101 - a stored group has an id
        return video.close_room(s, OutboxWriter(s, relay.keys, now), group.id)


def end_due(relay: Relay, now: datetime) -> int:
    """Forget the room of every session that is over (or whose group stopped meeting by
    video, or closed). Returns how many rooms were forgotten."""
    with Session(relay.engine) as s:
        due = video.ended_rooms(s, now)
    ended = 0
    for group_id in due:
        with transaction(relay.engine) as s:
            ended += video.close_room(s, OutboxWriter(s, relay.keys, now), group_id)
    return ended
