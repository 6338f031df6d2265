"""Sharing a member's message with their group: the one fan-out behind relaying a message
(:mod:`relay.inbound.relaying`) and releasing a held one (:mod:`relay.safety.decisions`).

Both go the same way: pending join notices first (``receivers`` writes them), then one copy
per active, unmuted member but the author, under the author's pseudonym, each copy pointing at
the inbound message so quotes, reactions, edits and ``/delete`` find it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session

from relay.core.handlers import display_name
from relay.delivery.outbox import OutboxWriter
from relay.language.i18n import LANGS, Raw, Renderable, T
from relay.storage.models import Inbound, Member


class Group(Protocol):
    """Where the message goes: the applier of the message's transaction."""

    @property
    def s(self) -> Session:
        """The transaction."""
        ...

    @property
    def writer(self) -> OutboxWriter:
        """Adds outbox rows in the same transaction."""
        ...

    def receivers(self, exclude: int | None) -> list[Member]:
        """Active members who receive group messages (pending join notices written first)."""
        ...


def share(
    to: Group,
    author: Member,
    message: Inbound | None,
    now: datetime,
    text: str,
    attachments: Sequence[dict[str, str]] = (),
    *,
    view_once: bool = False,
    target: int | None = None,
) -> int:
    """Fan ``text`` (and cleaned photos) out to the group as ``author``'s message and mark
    ``message`` relayed (``None``: copies that nothing can find again). ``target`` is the
    inbound message it quotes. Returns the copies."""
    name = display_name(author)
    body: Renderable = (
        T("{name}: {text}", name=name, text=Raw(text)) if text else T("{name} sent:", name=name)
    )
    extra: dict[str, Any] = {}
    if attachments:
        extra["attachments"] = list(attachments)
    if view_once:
        extra["view_once"] = True
    notes = (
        {
            lang: {
                "media_note": T(
                    "({name} sent a photo or file that cannot be shown here.)", name=name
                ).render(lang)
            }
            for lang in LANGS
        }
        if attachments
        else None
    )
    count = to.writer.fan_out(
        [r for r in to.receivers(author.id) if not _muted(r, now)],
        body,
        inbound_id=message.id if message is not None else None,
        target_inbound_id=target,
        extra=extra,
        extra_by_lang=notes,
    )
    if message is not None:
        message.relayed = True
        to.s.add(message)
    return count


def _muted(member: Member, now: datetime) -> bool:
    return member.muted_until is not None and member.muted_until > now
