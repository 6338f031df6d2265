"""Identify the sender: a message seen before is dropped, an unknown sender may only join
with an invite code, a member's number on another Signal account is not trusted, and a
known member's message is recorded (for de-duplication, edits and replies) as a
:class:`~relay.inbound.turn.Turn`."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from relay.core.handlers import display_name
from relay.core.outcome import Audit, Outcome, ToStaff
from relay.delivery import reports
from relay.delivery.outbox import UUID_CONTEXT
from relay.groups import invites
from relay.inbound.apply import Applier
from relay.inbound.turn import InboundService, Result, Turn
from relay.language.i18n import T
from relay.messages import Inbound
from relay.storage.models import Group, Member
from relay.storage.models import Inbound as InboundRow

log = logging.getLogger(__name__)

DEDUP_TTL = timedelta(days=2)


def identify(relay: InboundService, s: Session, ib: Inbound, now: datetime) -> Turn | Result:
    """The turn of a known member's message, or what became of any other message."""
    keys = relay.keys
    dedup = keys.lookup_hash(ib.dedup_key, "dedup")
    # Older rows may hold the hash under the previous key, or re-keyed by a rotation.
    seen = keys.lookup_hashes(ib.dedup_key, "dedup", rehashed=True)
    if s.exec(select(InboundRow.id).where(col(InboundRow.dedup_hash).in_(seen))).first():
        log.info("inbound dropped: duplicate")
        return Result.DUPLICATE
    member = relay.find_member(s, ib.channel, ib.sender.address, ib.sender.uuid)
    if member is None:
        # JOIN <code> is the one thing an unknown sender may say (relay/groups/invites.py).
        if (joined := invites.try_join(relay, s, ib, dedup, now)) is not None:
            return Result(joined)
        # Unknown senders learn nothing: no answer at all, and nothing kept about them.
        log.info("inbound dropped: unknown sender on %s", ib.channel)
        return Result.UNKNOWN_SENDER
    group = s.get(Group, member.group_id)
    if group is None or group.closed_at is not None:
        log.info("inbound dropped: group closed")
        return Result.UNKNOWN_SENDER
    if relay.uuid_differs(member, ib.sender.uuid):
        return _other_account(relay, s, member, group, now)
    _learn_uuid(relay, member, ib.sender.uuid)
    row = InboundRow(
        dedup_hash=dedup,
        dedup_key_id=keys.kid,
        member_id=member.id,
        group_id=group.id,
        author_ref=ib.ref,
        received_at=now,
        expires_at=now + max(DEDUP_TTL, timedelta(seconds=group.timer_seconds)),
    )
    s.add(row)
    s.flush()
    member.last_active_on = now.date()
    s.add(member)
    return Turn(relay, s, ib, now, member, group, row, Applier(relay, s, group, member, now))


def _other_account(
    relay: InboundService, s: Session, member: Member, group: Group, now: datetime
) -> Result:
    """A member's number writing from another Signal account: a recycled number, or
    someone who took it. Not relayed, not answered; staff are told (at most hourly)."""
    log.info("inbound dropped: member's number on another signal account")
    applier = Applier(relay, s, group, None, now)
    if reports.due(s, member.id or 0, "other_account", now) is not None:
        applier.apply(
            Outcome.of(
                ToStaff(
                    T(
                        "{name}'s number is now writing from a different Signal account: "
                        "a new phone with a new account, or someone else who got the "
                        "number. Nothing from it is relayed, and Cercle keeps writing only "
                        "to their old account. Check with them by another safe way; to "
                        "move them to the new account, remove them and enroll the number "
                        "again.",
                        name=display_name(member),
                    )
                ),
                Audit("other_account", target=member.pseudonym),
            )
        )
    return Result.UNKNOWN_SENDER


def _learn_uuid(relay: InboundService, member: Member, uuid: str | None) -> None:
    if uuid and member.uuid_hash is None:
        member.uuid_enc = relay.keys.encrypt_text(uuid.lower(), UUID_CONTEXT)
        member.uuid_hash = relay.uuid_hash(uuid)
