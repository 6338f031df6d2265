"""Outcome applied: the one place where handlers' effects become state and outbox rows.

Every effect of an :class:`~relay.core.outcome.Outcome` (replies, notices, removals, bans,
mutes, timers, audit entries, deferred work) is applied here, in order, in the caller's
transaction. Nothing here sends: the outbox rows it writes are sent by :mod:`relay.delivery`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, update
from sqlmodel import Session, col

from relay.core import farewells
from relay.core.actor import current_actor
from relay.core.handlers import display_name, member_id
from relay.core.outcome import (
    Audit,
    Ban,
    Deferred,
    Mute,
    Outcome,
    Remove,
    Rename,
    Reply,
    RequestLeave,
    Service,
    SetGroupTimer,
    SetLang,
    SetPaused,
    ToGroup,
    ToMember,
    ToStaff,
    Trust,
)
from relay.delivery.outbox import OutboxWriter
from relay.groups import policy
from relay.inbound import join_notices
from relay.language.i18n import Renderable, T
from relay.language.pseudonyms import name_key
from relay.safety import bans
from relay.storage.models import (
    AuditEvent,
    Group,
    Member,
    MemberState,
    Outbox,
    OutboxKind,
    OutboxState,
    Role,
)


def removed_by_organization(member: Member, audit: Audit) -> Outcome:
    """Removing someone from outside the conversation (an admin, the deny list): their last
    message, a notice to the group, and the audit entry."""
    return Outcome.of(
        Remove(
            member_id(member),
            farewells.removed_by_organization(),
        ),
        ToGroup(
            T("{name} is no longer in the group.", name=display_name(member)), exclude=member.id
        ),
        audit,
    )


def remove_banned(
    relay: Service, s: Session, address: str, now: datetime, exclude: int | None
) -> int:
    """Remove every membership of a banned number (other groups' staff are told by
    pseudonym, as for any removal); ``exclude`` is removed by the caller."""
    removed = 0
    for member in bans.memberships(s, relay.keys, address):
        group = s.get(Group, member.group_id)
        if member.id == exclude or group is None:
            continue
        # Not the acting facilitator's group: the audit says the deny list did it.
        Applier(relay, s, group, None, now).apply(
            removed_by_organization(
                member, Audit("ban", target=member.pseudonym, detail="deny_list")
            )
        )
        removed += 1
    return removed


def cancel_open(s: Session, member_id: int) -> None:
    """Cancel what still waits for ``member_id`` (rows that carry their own address, such as
    the last words to a removed member, stay)."""
    s.execute(
        update(Outbox)
        .where(
            and_(
                col(Outbox.recipient_id) == member_id,
                col(Outbox.state).in_(
                    [
                        OutboxState.PENDING,
                        OutboxState.RETRY,
                        OutboxState.HELD,
                    ]
                ),
                col(Outbox.address_enc).is_(None),
            )
        )
        .values(state=OutboxState.CANCELLED)
    )


class Applier:
    """Applies an :class:`Outcome`'s effects, in order, within one session."""

    def __init__(
        self, relay: Service, s: Session, group: Group, actor: Member | None, now: datetime
    ) -> None:
        self.relay = relay
        self.s = s
        self.group = group
        self.actor = actor
        self.now = now
        self.writer = OutboxWriter(s, relay.keys, now)

    def roster(self) -> list[Member]:
        """The group's members who are not removed."""
        return self.relay.members_of(self.s, self.group)

    def receivers(self, exclude: int | None) -> list[Member]:
        """Active members who receive group messages."""
        roster = self.roster()
        join_notices.announce_pending(self.s, self.writer, self.group, roster)  # joins first
        return [m for m in roster if m.state == MemberState.ACTIVE and m.id != exclude]

    def apply(self, outcome: Outcome, *, report_failure: bool = True) -> None:
        """Apply ``outcome``'s effects in order (``report_failure=False`` for notices about
        failures, so that a failed notice is not itself reported)."""
        for effect in outcome.effects:
            self._apply_one(effect, report_failure)

    def _apply_one(self, effect: object, report_failure: bool) -> None:  # noqa: PLR0915 - one case per effect
        actor = self.actor
        match effect:
            case Reply(text=text):
                if actor is not None:
                    self.writer.fan_out([actor], text)
            case ToMember(member_id=mid, text=text):
                target = self.s.get(Member, mid)
                if target is not None and target.state in (MemberState.ACTIVE, MemberState.PAUSED):
                    self.writer.fan_out([target], text)
            case ToStaff(text=text):
                staff = [
                    m for m in self.receivers(actor.id if actor else None) if Role(m.role).is_staff
                ]
                self.writer.fan_out(staff, text, report_failure=report_failure)
            case ToGroup(text=text, exclude=exclude):
                self.writer.fan_out(self.receivers(exclude), text)
            case SetLang(lang=lang) if actor is not None:
                actor.lang = lang
            case SetPaused(paused=paused) if actor is not None:
                actor.state = MemberState.PAUSED if paused else MemberState.ACTIVE
                if paused:
                    cancel_open(self.s, actor.id)  # type: ignore[arg-type]
            case Rename(name=name) if actor is not None:
                actor.pseudonym, actor.name_key = name, name_key(name)
            case Mute(member_id=mid, until=until):
                target = self.s.get(Member, mid)
                if target is not None:
                    target.muted_until = until
                    self.s.add(target)
            case RequestLeave() if actor is not None:
                actor.leave_requested_at = self.now
            case Remove(member_id=mid, farewell=farewell):
                self._remove(mid, farewell)
            case SetGroupTimer(seconds=seconds):
                self.group.timer_seconds = seconds
                self.s.add(self.group)
                for m in self.roster():
                    self.writer.timer(m, seconds)
                    m.timer_seconds = seconds
                    self.s.add(m)
            case Trust(member_id=mid):
                target = self.s.get(Member, mid)
                if target is not None:
                    self.writer.add_rows(
                        [self.writer.row(target, None, kind=OutboxKind.TRUST, report_failure=False)]
                    )
            case Ban(member_id=mid, reason=reason):
                self._ban(mid, reason)
            case Deferred(work=work):
                self.apply(work(self))
            case Audit(action=action, target=target, detail=detail):
                self.s.add(
                    AuditEvent(
                        group_id=self.group.id,
                        at=self.now,
                        actor=(actor.pseudonym or "?") if actor else current_actor(),
                        action=action,
                        target=target,
                        detail=detail,
                    )
                )
            case _:
                raise TypeError(f"unhandled effect {type(effect).__name__}")
        if actor is not None:
            self.s.add(actor)

    def _ban(self, member_id: int, reason: str) -> None:
        target = self.s.get(Member, member_id)
        address = self.relay.address_of(target) if target is not None else None
        if address is not None:
            bans.add(self.s, self.relay.keys, address, reason, self.now)
            remove_banned(self.relay, self.s, address, self.now, exclude=member_id)

    def _remove(self, member_id: int, farewell: Renderable) -> None:
        target = self.s.get(Member, member_id)
        if target is None or target.state == MemberState.REMOVED:
            return
        cancel_open(self.s, member_id)
        policy.forget(self.s, member_id)  # exit word, reminders, held messages
        address = self.relay.delivery_address(target)
        if address is not None and target.state != MemberState.OPTED_OUT:
            self.writer.last_words(target, address, farewell)
        # The tombstone keeps only what the audit trail and foreign keys need.
        target.address_enc = target.address_hash = None
        target.uuid_enc = target.uuid_hash = None
        target.pseudonym = target.name_key = None
        target.state = MemberState.REMOVED
        target.muted_until = target.leave_requested_at = target.last_active_on = None
        self.s.add(target)
