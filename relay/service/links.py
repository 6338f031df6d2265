"""Joining through a private link: the door of people with no app and no number.

A web adapter shows an invite's welcome (:func:`preview`) and, once the person agrees, enrolls
them (:func:`join`) on its channel under an opaque address it made up. The core learns only
that a member has that channel and that address. Codes stay one-time, expiring and
limited per client by the adapter; a link carries its own 160-bit token
(:func:`relay.groups.invites.link_token`), never the typed code of a new invite.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from relay.doors import Welcome
from relay.groups import guesses, invites
from relay.language.channels import for_channel
from relay.language.durations import describe
from relay.language.i18n import LANGS, T
from relay.language.texts import WEB_PART, ConfigText
from relay.service.relay import Relay
from relay.storage.engine import transaction
from relay.storage.models import Group, Invite, Member, MemberState
from relay.storage.models import Inbound as InboundRow

log = logging.getLogger(__name__)

OnEnrolled = Callable[[Session, Member, Group], None]
"""Runs in the enrolling transaction: the adapter stores its side of the seat there."""


@dataclass(frozen=True)
class Joined:
    """Who someone became by joining."""

    member_id: int
    pseudonym: str
    lang: str
    waiting: bool  # the group wants a facilitator's approval first


def link_maker(relay: Relay, web_link: Callable[[str], str]) -> Callable[[str], str]:
    """What makes an invite code's private link: ``web_link`` (the adapter's URL for a token)
    given the code's :func:`~relay.groups.invites.link_token`, never the typed code itself."""
    return lambda code: web_link(invites.link_token(relay.keys, code))


def _lang(invite_lang: str | None, group: Group, asked: str | None) -> str:
    if invite_lang is not None:
        return invite_lang
    return asked if asked in LANGS else group.lang


def _usable(
    relay: Relay, s: Session, token: str, channel: str, now: datetime
) -> tuple[Invite, Group] | None:
    # No lock for everyone together: other people's wrong guesses never shut this one out.
    return invites.find_by_link(relay, s, token, channel, now)


def refused(relay: Relay, channel: str) -> None:
    """Count an attempt the adapter refused before looking (a client that just went over its
    limit): for the health check's surge figures only."""
    with transaction(relay.engine) as s:
        guesses.count(s, channel, relay.clock.now())


def preview(relay: Relay, code: str, channel: str, asked_lang: str | None = None) -> Welcome | None:
    """The welcome, agreements and what is kept, for a code that can still admit someone;
    ``None`` for any link that cannot (unknown, used, expired, group closed: all alike)."""
    now = relay.clock.now()
    with transaction(relay.engine) as s:
        found = _usable(relay, s, code, channel, now)
        if found is None:
            return None
        invite, group = found
        lang = _lang(invite.lang, group, asked_lang)
        t = relay.texts
        about = ConfigText(
            t,
            "about",
            (
                ("org", relay.org_name),
                ("group", group.name),
                ("pseudonym", T("a pseudonym given when you join")),
            ),
        )
        timer = describe(group.timer_seconds)
        parts = (
            about,
            ConfigText(t, "agreements"),
            ConfigText(t, "privacy", (("timer", timer),)),
            ConfigText(t, WEB_PART, (("timer", timer),)),
            ConfigText(t, "how_to_leave"),
        )
        return Welcome(lang, tuple(for_channel(p, channel).render(lang) for p in parts))


def join(
    relay: Relay,
    code: str,
    channel: str,
    address: str,
    on_enrolled: OnEnrolled,
    asked_lang: str | None = None,
) -> Joined | None:
    """Enroll someone who agreed on the join page, under ``address`` on ``channel``.

    They are in at once (the welcome was on the page), unless the group wants a
    facilitator's approval. ``None`` when the code cannot admit anyone (used meanwhile too).
    """
    now = relay.clock.now()
    with transaction(relay.engine) as s:
        found = _usable(relay, s, code, channel, now)
        if found is None:
            return None
        invite, group = found
        if not invites.claim(s, invite, now):
            return None
        lang = _lang(invite.lang, group, asked_lang)
        member = invites._enroll(
            relay,
            s,
            invites.Arrival(channel, address),
            now,
            invite,
            group,
            lang,
            agreed=True,
        )
        on_enrolled(s, member, group)
        log.info("joined with an invite link on %s", channel)
        return Joined(
            member.id or 0,
            member.pseudonym or "",
            member.lang,
            member.state == MemberState.PENDING,
        )


def already_accepted(relay: Relay, dedup_key: str) -> bool:
    """Whether an inbound event with this provider key was accepted already (a retried post):
    an adapter that shows the sender their own words checks this first, so a retry is shown
    once. The same lookup :meth:`Relay.accept` makes."""
    seen = relay.keys.lookup_hashes(dedup_key, "dedup", rehashed=True)
    with Session(relay.engine) as s:
        row = s.exec(select(InboundRow.id).where(col(InboundRow.dedup_hash).in_(seen))).first()
        return row is not None
