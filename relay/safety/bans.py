"""The organization's deny list: numbers that may not be enrolled in any group.

A ban is found by a keyed hash of the number (kind ``ban``, so it matches no other table's
hashes); the same hash serves Signal and SMS, since a number is the same on both. The number
is also kept sealed, for one reason only: a keyed hash cannot be rebuilt under a new data key
without its input, and a ban must survive ``cercle keys rotate``. Nothing opens it otherwise,
and no command shows it. A ban outlives the member's data: that is its purpose.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from relay.core.actor import current_actor
from relay.errors import CercleError
from relay.storage.crypto import DataKeys
from relay.storage.engine import transaction
from relay.storage.models import AuditEvent, Ban, Group, Member, MemberState

log = logging.getLogger(__name__)

BAN_CONTEXT = "ban.address"
HASH_KIND = "ban"


def is_banned(s: Session, keys: DataKeys, address: str) -> bool:
    """Whether ``address`` is on the deny list (under the current or, while rotating, the
    previous key)."""
    hashes = keys.lookup_hashes(address, HASH_KIND)
    return s.exec(select(Ban.id).where(col(Ban.address_hash).in_(hashes))).first() is not None


def add(s: Session, keys: DataKeys, address: str, reason: str, now: datetime) -> bool:
    """Put ``address`` on the deny list in the caller's transaction; ``False`` if it was."""
    if is_banned(s, keys, address):
        return False
    s.add(
        Ban(
            address_hash=keys.lookup_hash(address, HASH_KIND),
            address_enc=keys.encrypt_text(address, BAN_CONTEXT),
            reason=reason,
            created_at=now,
        )
    )
    return True


def lift(s: Session, keys: DataKeys, address: str) -> bool:
    """Take ``address`` off the deny list; ``False`` if it was not on it."""
    hashes = keys.lookup_hashes(address, HASH_KIND)
    result = s.execute(delete(Ban).where(col(Ban.address_hash).in_(hashes)))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def memberships(s: Session, keys: DataKeys, address: str) -> list[Member]:
    """Every membership of ``address`` that is not removed, on any channel, in any group."""
    hashes = keys.lookup_hashes(address, "address")
    return list(
        s.exec(
            select(Member).where(
                col(Member.address_hash).in_(hashes), col(Member.state) != MemberState.REMOVED
            )
        ).all()
    )


def refuse_if_banned(
    engine: Engine, keys: DataKeys, address: str, group_name: str, now: datetime
) -> None:
    """Refuse an enrollment of a banned number: audited as ``ban_blocked`` (in its own
    transaction, so the record stays though the enrollment fails), then a clear error."""
    with transaction(engine) as s:
        if not is_banned(s, keys, address):
            return
        group = s.exec(select(Group).where(Group.name == group_name)).first()
        s.add(
            AuditEvent(
                group_id=group.id if group else None,
                at=now,
                actor=current_actor(),
                action="ban_blocked",
            )
        )
    log.warning("enrollment refused: the number is on the deny list")
    raise CercleError(
        "This number is banned from every group of the organization, so it cannot be "
        "enrolled. The attempt was recorded in the audit trail. An admin can lift the ban "
        "with `cercle member unban`."
    )
