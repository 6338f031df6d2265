"""Signal account ids of members enrolled by number, learned before anything reaches them.

A member enrolled by number alone would be reached by number until their first message
taught Cercle their account id; a recycled number would receive the group in between. The
CLI asks signal-cli for the id at enrollment, and the worker asks again for any Signal member
still without one (enrolled while the service was unreachable, or before this existed).
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from relay.delivery.outbox import ADDRESS_CONTEXT, UUID_CONTEXT
from relay.messages import Channel
from relay.service.relay import Relay
from relay.storage.engine import transaction
from relay.storage.models import Member, MemberState


def members_without_account(relay: Relay, limit: int = 50) -> list[tuple[int, str]]:
    """(member id, number) of current Signal members whose account id is not known."""
    with Session(relay.engine) as s:
        rows = s.exec(
            select(Member)
            .where(
                col(Member.channel) == Channel.SIGNAL,
                col(Member.state) != MemberState.REMOVED,
                col(Member.uuid_hash).is_(None),
                col(Member.address_enc).is_not(None),
            )
            .order_by(col(Member.id))
            .limit(limit)
        ).all()
    found = []
    for m in rows:
        assert m.id is not None and m.address_enc is not None  # noqa: S101 - selected so
        found.append((m.id, relay.keys.decrypt_text(m.address_enc, ADDRESS_CONTEXT)))
    return found


def learn_account(relay: Relay, member_id: int, uuid: str) -> bool:
    """Record a member's account id, unless one is known already or another current member
    holds it (never two members on one account). True when recorded."""
    with transaction(relay.engine) as s:
        member = s.get(Member, member_id)
        if member is None or member.uuid_hash is not None or member.state == MemberState.REMOVED:
            return False
        if relay.find_member(s, Channel.SIGNAL, None, uuid) is not None:
            return False
        member.uuid_enc = relay.keys.encrypt_text(uuid.lower(), UUID_CONTEXT)
        member.uuid_hash = relay.uuid_hash(uuid)
        s.add(member)
    return True
