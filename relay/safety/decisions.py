"""A facilitator's decision on held messages: ``/approve`` sends them to the group
(:func:`release`), ``/reject`` deletes them (:func:`drop`). Both run as deferred work of the
command, in its transaction."""

from __future__ import annotations

from relay.core.handlers import display_name
from relay.core.outcome import (
    Audit,
    Outcome,
    Reply,
    Store,
    ToMember,
)
from relay.core.words import CommandWord
from relay.groups import policy, sharing
from relay.language.i18n import TN, T
from relay.safety.held import DECIDED, held_for, held_payload
from relay.storage.models import HeldMessage, Inbound, Member


def release(st: Store, target: Member) -> Outcome:
    """Send a member's held messages to the group, oldest first."""
    assert target.id is not None  # noqa: S101 - a stored member has an id
    held = held_for(st.s, target.id, DECIDED, st.now)
    if not held:
        return Outcome.of(
            Reply(T("Nothing from {name} is waiting for a decision.", name=display_name(target)))
        )
    name = display_name(target)
    for h in held:
        payload = held_payload(st.s, st.relay.keys, h)
        sharing.share(
            st,
            target,
            _reaching_the_group(st, h),
            st.now,
            str(payload.get("text", "")),
            payload.get("attachments") or (),
            view_once=bool(payload.get("view_once")),
        )
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


def _reaching_the_group(st: Store, held: HeldMessage) -> Inbound | None:
    """The stored message behind a held one, as the group receives it now: the recall window
    of ``/delete`` counts from its release, as for any message from when it was relayed."""
    message = st.s.get(Inbound, held.inbound_id) if held.inbound_id is not None else None
    if message is None:
        return None  # held before messages were linked: its copies cannot be found again
    kept = message.expires_at - message.received_at
    message.received_at = st.now
    message.expires_at = max(message.expires_at, st.now + kept)
    return message


def drop(st: Store, target: Member) -> Outcome:
    """Delete a member's held messages without sharing them; tell them gently."""
    assert target.id is not None  # noqa: S101 - a stored member has an id
    held = held_for(st.s, target.id, DECIDED, st.now)
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
