"""A facilitator's decision on held messages: ``/approve`` sends them to the group
(:func:`release`), ``/reject`` deletes them (:func:`drop`). Both run as deferred work of the
command, in its transaction."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from relay.core.handlers import display_name
from relay.core.outcome import (
    Audit,
    Outcome,
    Reply,
    Store,
    ToMember,
)
from relay.core.words import CommandWord
from relay.groups import policy
from relay.language.i18n import LANGS, TN, Raw, T
from relay.safety.held import held_for, held_payload
from relay.storage.models import (
    Group,
    Member,
    MemberState,
)


def _muted(member: Member, now: datetime) -> bool:
    return member.muted_until is not None and member.muted_until > now


def release(st: Store, target: Member) -> Outcome:
    """Send a member's held messages to the group, oldest first."""
    assert target.id is not None  # noqa: S101 - a stored member has an id
    held = held_for(st.s, target.id, ("review", "alert"), st.now)
    if not held:
        return Outcome.of(
            Reply(T("Nothing from {name} is waiting for a decision.", name=display_name(target)))
        )
    receivers = [r for r in _receivers(st.s, st.group, target.id) if not _muted(r, st.now)]
    name = display_name(target)
    for h in held:
        payload = held_payload(st.s, st.relay.keys, h)
        words = str(payload.pop("text", ""))
        body = (
            T("{name}: {text}", name=name, text=Raw(words))
            if words
            else T("{name} sent:", name=name)
        )
        notes = (
            {
                lang: {
                    "media_note": T(
                        "({name} sent a photo or file that cannot be shown here.)", name=name
                    ).render(lang)
                }
                for lang in LANGS
            }
            if payload.get("attachments")
            else None
        )
        st.writer.fan_out(receivers, body, extra=payload or None, extra_by_lang=notes)
    own = policy.ensure_safety(st.s, target.id)
    own.premoderate_left = max(0, (own.premoderate_left or 0) - len(held))
    policy.drop_held(st.s, held)
    return Outcome.of(
        ToMember(target.id, T("A facilitator has shared your message with the group.")),
        Reply(
            TN(
                "Sent to the group: {n} message from {name}.",
                "Sent to the group: {n} messages from {name}.",
                len(held),
                name=name,
            )
        ),
        Audit("approve", target=target.pseudonym, detail=str(len(held))),
    )


def drop(st: Store, target: Member) -> Outcome:
    """Delete a member's held messages without sharing them; tell them gently."""
    assert target.id is not None  # noqa: S101 - a stored member has an id
    held = held_for(st.s, target.id, ("review", "alert"), st.now)
    name = display_name(target)
    if not held:
        return Outcome.of(Reply(T("Nothing from {name} is waiting for a decision.", name=name)))
    policy.drop_held(st.s, held)
    return Outcome.of(
        ToMember(
            target.id,
            T(
                "A facilitator did not share your message with the group. You can write to the "
                "facilitators privately with {staff}.",
                staff=CommandWord("staff"),
            ),
        ),
        Reply(
            TN(
                "Not shared: {n} message from {name}, now deleted.",
                "Not shared: {n} messages from {name}, now deleted.",
                len(held),
                name=name,
            )
        ),
        Audit("reject", target=target.pseudonym, detail=str(len(held))),
    )


def _receivers(s: Session, group: Group, exclude: int) -> list[Member]:
    return list(
        s.exec(
            select(Member).where(
                col(Member.group_id) == group.id,
                col(Member.state) == MemberState.ACTIVE,
                col(Member.id) != exclude,
            )
        ).all()
    )
