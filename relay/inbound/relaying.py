"""Relaying: a member's message, past the guards, goes to every active member of the group
under the sender's pseudonym, with photos cleaned and mentions made anonymous.
"""

from __future__ import annotations

import base64
import logging

from relay.core.handlers import MAX_TEXT
from relay.core.outcome import Outcome, Reply
from relay.delivery import recall
from relay.groups import sharing
from relay.inbound.media import UnsupportedMedia, UnsupportedType, sanitize
from relay.inbound.mentions import rewrite
from relay.inbound.turn import Result, Turn, clean_text
from relay.language.i18n import T
from relay.safety import alerting, limits
from relay.safety.held import review

log = logging.getLogger(__name__)


_ONLY_PHOTOS = T(
    "One of your files was not shared: only photos can be, because videos, voice notes and "
    "documents can carry hidden details such as where they were made."
)
_UNREADABLE_PHOTO = T("One of your photos could not be read or is too large, so it was not shared.")


def relay(turn: Turn) -> Result:
    """Relay a member's message to the group, unless a guard holds it back."""
    alerted = alerting.check_alert(turn)  # before the guards: a muted member in danger too
    if (held := limits.paused_or_muted(turn)) is not None:
        return Result(held)
    if (held := limits.flooding(turn, turn.relay.flood_limit)) is not None:
        return Result(held)
    text = text_or_refuse(turn, turn.inbound.text)
    if text is None:
        return Result.HELD_BACK
    attachments = cleaned_attachments(turn)
    if not text and not attachments:
        log.info("inbound dropped: empty")
        return Result.IGNORED
    # Open hours, pre-moderation, held alerts (relay/safety/held.py).
    if (handled := review(turn, text, attachments, alerted=alerted)) is not None:
        return Result(handled)
    target = find_target(turn, turn.inbound.quote_ref) if turn.inbound.quote_ref else None
    count = sharing.share(
        turn.apply,
        turn.member,
        turn.row,
        turn.now,
        text,
        attachments,
        view_once=bool(turn.inbound.view_once),
        target=target,
    )
    log.info("relayed to %d recipients", count)
    return Result.RELAYED


def text_or_refuse(turn: Turn, raw: str | None) -> str | None:
    """The cleaned text, or ``None`` (and the sender told) if it is too long."""
    text = clean_text(rewrite_mentions(turn, raw or ""))
    if len(text) > MAX_TEXT:
        turn.apply.apply(
            Outcome.of(
                Reply(
                    T(
                        "Your message was not sent: it is too long ({n} characters at "
                        "most). Please split it.",
                        n=MAX_TEXT,
                    )
                )
            )
        )
        return None
    return text


def rewrite_mentions(turn: Turn, text: str) -> str:
    """``text`` with every mention made ``@?``."""
    # Signal offers mentions only in group chats, so one arriving in a one-to-one chat
    # with the relay was crafted. Resolving its UUID to a pseudonym would let someone who
    # knows a survivor's account, and a member who colludes, learn which pseudonym is
    # theirs: every mention becomes "@?" and no UUID is ever looked up.
    if not turn.inbound.mentions:
        return text
    return rewrite(text, turn.inbound.mentions, lambda _uuid: "?")


def cleaned_attachments(turn: Turn) -> list[dict[str, str]]:
    """The photos to relay, metadata stripped; the sender is told of any left out."""
    atts = turn.inbound.attachments
    if not atts:
        return []
    if not turn.group.allow_media:
        turn.apply.apply(
            Outcome.of(
                Reply(T("Photos and files are not shared in this group; only your text was sent."))
            )
        )
        return []
    out: list[dict[str, str]] = []
    for i, att in enumerate(atts, start=1):
        try:
            clean = sanitize(att, i)
        except UnsupportedType:
            turn.apply.apply(Outcome.of(Reply(_ONLY_PHOTOS)))
            continue
        except UnsupportedMedia:
            turn.apply.apply(Outcome.of(Reply(_UNREADABLE_PHOTO)))
            continue
        out.append(
            {
                "content_type": clean.content_type,
                "filename": clean.filename,
                "data": base64.b64encode(clean.data).decode("ascii"),
            }
        )
    return out


def find_target(turn: Turn, ref: str | None) -> int | None:
    """The inbound message that the sender's ``ref`` points at, in their conversation."""
    return recall.find_quoted(turn.s, turn.member.id, ref)  # type: ignore[arg-type]
