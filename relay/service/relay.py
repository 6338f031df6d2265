"""The relay service: the one object adapters and the application call.

Admin operations (groups, enrolment, removals, bans), the inbound entry point
(:meth:`Relay.accept`, which runs :func:`relay.inbound.pipeline.handle`) and what providers
tell us later about sent messages. Everything one inbound event or admin action causes
commits in one transaction, or none of it does. Nothing here sends: the delivery engine
(:mod:`relay.delivery.sender`) does that from the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from relay.clock import Clock
from relay.core import farewells, handlers
from relay.core.actor import current_actor
from relay.core.handlers import display_name
from relay.core.outcome import Audit, Outcome, Remove, ToStaff
from relay.delivery import reports
from relay.delivery.outbox import ADDRESS_CONTEXT, UUID_CONTEXT, OutboxWriter
from relay.delivery.reasons import REASON_WORDS
from relay.errors import CercleError, Reason
from relay.inbound import consent, pipeline
from relay.inbound.apply import Applier, cancel_open, remove_banned, removed_by_organization
from relay.inbound.turn import Result
from relay.language.i18n import LANGS, TN, Joined, Renderable, T
from relay.language.pseudonyms import assign, name_key
from relay.language.texts import ConfigText, Texts
from relay.messages import Channel, Inbound
from relay.phone import normalize
from relay.safety import bans, flood
from relay.storage.crypto import DataKeys
from relay.storage.engine import transaction
from relay.storage.models import AuditEvent, Group, Member, MemberState, Outbox, Role
from relay.storage.models import Inbound as InboundRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupSettings:
    """What an admin chooses when creating a group."""

    name: str
    lang: str = "fr"
    timer_seconds: int = 7 * 86400
    allow_rename: bool = False
    allow_sms: bool = True
    allow_media: bool = False
    show_name: bool = False  # the web page shows the group's name


def open_group(session: Session, name: str) -> Group:
    """The open group called ``name``, or :class:`CercleError` (none, or closed)."""
    group = session.exec(select(Group).where(Group.name == name)).first()
    if group is None or group.closed_at is not None:
        raise CercleError("There is no open group with that name.")
    return group


class Relay:
    """The core service. One instance per process; thread-safe (each call has its session)."""

    # Makes the private web link of an invite code, when the web door is on.
    join_link: Callable[[str], str] | None = None
    # The organization's own Jitsi Meet server (CERCLE_VIDEO_URL), for groups that meet by
    # video; without it no group can (relay.service.video).
    video_url: str | None = None

    def __init__(
        self,
        engine: Engine,
        keys: DataKeys,
        clock: Clock,
        texts: Texts,
        org_name: str,
        flood_limit: flood.FloodLimit | None = None,
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.clock = clock
        self.texts = texts
        self.org_name = org_name
        self.flood_limit = flood_limit or flood.FloodLimit()

    # --- lookups --------------------------------------------------------------------------

    def address_hash(self, address: str) -> str:
        """The lookup hash of a number (or any channel address)."""
        return self.keys.lookup_hash(address, "address")

    def uuid_hash(self, uuid: str) -> str:
        """The lookup hash of a Signal UUID."""
        return self.keys.lookup_hash(uuid.lower(), "uuid")

    def find_member(
        self, session: Session, channel: str, address: str | None, uuid: str | None
    ) -> Member | None:
        """The enrolled, not removed member with this UUID or number on ``channel``."""
        # While a key rotation runs, a row may still carry its hash under the previous key.
        conds = []
        if uuid:
            conds.append(col(Member.uuid_hash).in_(self.keys.lookup_hashes(uuid.lower(), "uuid")))
        if address:
            conds.append(col(Member.address_hash).in_(self.keys.lookup_hashes(address, "address")))
        if not conds:
            return None
        return session.exec(
            select(Member).where(
                col(Member.channel) == channel,
                or_(*conds),
                col(Member.state) != MemberState.REMOVED,
            )
        ).first()

    def delivery_address(self, member: Member) -> str | None:
        """Where to send to ``member``: on Signal their account's UUID once known, so that a
        new account on a recycled number never receives the group; else their number."""
        if member.channel == Channel.SIGNAL and member.uuid_enc is not None:
            return self.keys.decrypt_text(member.uuid_enc, UUID_CONTEXT)
        return self.address_of(member)

    def uuid_differs(self, member: Member, uuid: str | None) -> bool:
        """Whether ``uuid`` is another Signal account than the one ``member`` is known by."""
        if not uuid or member.uuid_hash is None:
            return False
        return member.uuid_hash not in self.keys.lookup_hashes(uuid.lower(), "uuid")

    def address_of(self, member: Member) -> str | None:
        """``member``'s number, or their Signal UUID if that is all we have."""
        if member.address_enc is not None:
            return self.keys.decrypt_text(member.address_enc, ADDRESS_CONTEXT)
        if member.uuid_enc is not None:
            return self.keys.decrypt_text(member.uuid_enc, UUID_CONTEXT)
        return None

    # --- admin operations -----------------------------------------------------------------

    def create_group(self, settings: GroupSettings) -> Group:
        """Create a group; its name is what admins type, members never see it unless told."""
        if settings.lang not in LANGS:
            raise CercleError(f"Language must be one of: {', '.join(LANGS)}.")
        if not handlers.MIN_TIMER <= settings.timer_seconds <= handlers.MAX_TIMER:
            raise CercleError("The timer must be between 1 minute and 12 weeks.")
        name = settings.name.strip()
        if not name or len(name) > 64:
            raise CercleError("A group name must be 1 to 64 characters.")
        with transaction(self.engine) as s:
            if s.exec(select(Group).where(Group.name == name)).first():
                raise CercleError("A group with that name already exists.")
            group = Group(
                name=name,
                lang=settings.lang,
                timer_seconds=settings.timer_seconds,
                allow_rename=settings.allow_rename,
                allow_sms=settings.allow_sms,
                allow_media=settings.allow_media,
                show_name=settings.show_name,
                created_at=self.clock.now(),
            )
            s.add(group)
            s.flush()
            s.add(
                AuditEvent(
                    group_id=group.id,
                    at=self.clock.now(),
                    actor=current_actor(),
                    action="group_create",
                )
            )
        return group

    def group(self, session: Session, name: str) -> Group:
        """The open group called ``name``."""
        return open_group(session, name)

    def enroll(
        self,
        number: str,
        group_name: str,
        role: Role,
        lang: str,
        channel: Channel,
        uuid: str | None = None,
    ) -> Member:
        """Enroll a vetted number: pseudonym, timer first, then the consent text.

        The number is normalized to E.164 and stored only sealed; a number can be in one
        group per channel.
        """
        address = (
            normalize(number) if channel != Channel.SANDBOX or number.startswith("+") else number
        )
        if lang not in LANGS:
            raise CercleError(f"Language must be one of: {', '.join(LANGS)}.")
        now = self.clock.now()
        bans.refuse_if_banned(self.engine, self.keys, address, group_name, now)
        with transaction(self.engine) as s:
            group = self.group(s, group_name)
            if channel == Channel.SMS and not group.allow_sms:
                raise CercleError("This group does not accept members on SMS.")
            if self.find_member(s, channel, address, uuid) is not None:
                raise CercleError("That number is already enrolled in a group on this channel.")
            taken = {m.name_key for m in self.members_of(s, group) if m.name_key}
            pseudonym = assign(taken)
            assert group.id is not None  # noqa: S101 - a stored group has an id
            member = Member(
                group_id=group.id,
                channel=channel,
                address_enc=self.keys.encrypt_text(address, ADDRESS_CONTEXT),
                address_hash=self.address_hash(address),
                uuid_enc=self.keys.encrypt_text(uuid.lower(), UUID_CONTEXT) if uuid else None,
                uuid_hash=self.uuid_hash(uuid) if uuid else None,
                pseudonym=pseudonym,
                name_key=name_key(pseudonym),
                role=role,
                lang=lang,
                state=MemberState.INVITED,
                created_at=now,
            )
            s.add(member)
            try:
                s.flush()
            except IntegrityError as exc:
                raise CercleError("That number is already enrolled on this channel.") from exc
            writer = OutboxWriter(s, self.keys, now)
            writer.timer(member, group.timer_seconds)
            member.timer_seconds = group.timer_seconds
            self.send_consent(writer, group, member)
            s.add(
                AuditEvent(
                    group_id=group.id,
                    at=now,
                    actor=current_actor(),
                    action="enroll",
                    target=pseudonym,
                    detail=role,
                )
            )
        return member

    def send_consent(self, writer: OutboxWriter, group: Group, member: Member) -> None:
        """Queue the consent texts for ``member`` (at enrolment, and after START)."""
        consent.send_consent(self, writer, group, member)

    def roster(self, group_name: str) -> list[Member]:
        """Every member of a group who is not removed."""
        with Session(self.engine) as s:
            return self.members_of(s, self.group(s, group_name))

    def members_of(self, s: Session, group: Group) -> list[Member]:
        """Every member of ``group`` who is not removed."""
        return list(
            s.exec(
                select(Member).where(
                    col(Member.group_id) == group.id, col(Member.state) != MemberState.REMOVED
                )
            ).all()
        )

    def remove_by_admin(self, group_name: str, pseudonym: str) -> None:
        """Remove a member from the command line (same effects as ``/remove``)."""
        now = self.clock.now()
        with transaction(self.engine) as s:
            group = self.group(s, group_name)
            target = next(
                (m for m in self.members_of(s, group) if m.name_key == name_key(pseudonym)), None
            )
            if target is None:
                raise CercleError("There is no one with that name in the group.")
            Applier(self, s, group, None, now).apply(
                removed_by_organization(target, Audit("remove", target=target.pseudonym))
            )

    def ban_number(self, number: str, reason: str) -> int:
        """Ban a number deployment-wide (``cercle member ban``): it goes on the deny list and
        every membership it has is removed. Returns how many memberships were removed."""
        address = normalize(number)
        now = self.clock.now()
        with transaction(self.engine) as s:
            added = bans.add(s, self.keys, address, reason, now)
            removed = remove_banned(self, s, address, now, exclude=None)
            s.add(AuditEvent(at=now, actor=current_actor(), action="ban" if added else "ban_again"))
        return removed

    def unban_number(self, number: str) -> bool:
        """Take a number off the deny list (``cercle member unban``); ``False`` if it was not
        on it."""
        address = normalize(number)
        with transaction(self.engine) as s:
            lifted = bans.lift(s, self.keys, address)
            if lifted:
                s.add(AuditEvent(at=self.clock.now(), actor=current_actor(), action="unban"))
        return lifted

    def close_group(self, group_name: str) -> int:
        """Close a group: everyone gets a closing message with resources, then is removed."""
        now = self.clock.now()
        with transaction(self.engine) as s:
            group = self.group(s, group_name)
            members = self.members_of(s, group)
            applier = Applier(self, s, group, None, now)
            farewell = Joined(
                (
                    farewells.group_closed(),
                    ConfigText(self.texts, "resources"),
                )
            )
            for m in members:
                applier.apply(Outcome.of(Remove(m.id, farewell)))  # type: ignore[arg-type]
            group.closed_at = now
            s.add(group)
            s.add(
                AuditEvent(group_id=group.id, at=now, actor=current_actor(), action="group_close")
            )
        return len(members)

    # --- inbound --------------------------------------------------------------------------

    def accept(self, inbound: Inbound) -> Result:
        """Handle one inbound event. Durable when this returns: state and outbox committed."""
        try:
            with transaction(self.engine) as s:
                return pipeline.handle(self, s, inbound)
        except IntegrityError:
            # Two processes raced on the same provider message: the other one has it.
            log.info("inbound dropped: duplicate (raced)")
            return Result.DUPLICATE

    # --- delivery feedback ----------------------------------------------------------------

    def record_status(
        self, channel: Channel, ref: str, status: str, rank: int, failure: Reason | None
    ) -> bool:
        """Record a provider's later news about a sent message (e.g. a Twilio status callback).

        Callbacks repeat and arrive out of order: a status only replaces one of lower
        ``rank``. A ``failure`` (final, undelivered) is reported to staff once. Returns
        whether a message with that reference exists (a very fast callback can arrive before
        the sender has written it down).
        """
        with transaction(self.engine) as s:
            result = s.execute(
                update(Outbox)
                .where(
                    col(Outbox.channel) == channel,
                    col(Outbox.provider_ref) == ref,
                    or_(
                        col(Outbox.provider_status_rank).is_(None),
                        col(Outbox.provider_status_rank) < rank,
                    ),
                )
                .values(provider_status=status, provider_status_rank=rank)
                .returning(col(Outbox.recipient_id), col(Outbox.report_failure))
            ).first()
            known = (
                result is not None
                or s.exec(
                    select(Outbox.id).where(
                        col(Outbox.channel) == channel, col(Outbox.provider_ref) == ref
                    )
                ).first()
                is not None
            )
        if result is not None and failure is not None:
            log.info("provider reported a failed delivery on %s", channel)
            if result.report_failure or failure == Reason.OPTED_OUT:
                self.report_failure(result.recipient_id, failure)
        return known

    def provider_refs_to_purge(
        self, channel: Channel, final_rank: int, limit: int = 50
    ) -> list[tuple[str, str]]:
        """Provider records we still leave at the provider: ``(kind, ref)`` pairs.

        Sent messages once their status is final (or a day old, in case a callback was
        lost), and received messages once accepted. ``kind`` is ``outbox`` or ``inbound``.
        """
        day_ago = self.clock.now() - timedelta(days=1)
        with Session(self.engine) as s:
            sent = s.exec(
                select(Outbox.provider_ref)
                .where(
                    col(Outbox.channel) == channel,
                    col(Outbox.provider_ref).is_not(None),
                    col(Outbox.provider_purged).is_(False),
                    or_(
                        col(Outbox.provider_status_rank) >= final_rank,
                        col(Outbox.done_at) < day_ago,
                    ),
                )
                .limit(limit)
            ).all()
            received = s.exec(
                select(InboundRow.author_ref)
                .join(Member, col(InboundRow.member_id) == Member.id)
                .where(
                    col(Member.channel) == channel,
                    col(InboundRow.author_ref).is_not(None),
                    col(InboundRow.provider_purged).is_(False),
                )
                .limit(limit)
            ).all()
        return [("outbox", r) for r in sent if r] + [("inbound", r) for r in received if r]

    def mark_purged(self, kind: str, ref: str) -> None:
        """The provider no longer holds this record."""
        table = Outbox if kind == "outbox" else InboundRow
        column = col(Outbox.provider_ref) if kind == "outbox" else col(InboundRow.author_ref)
        with transaction(self.engine) as s:
            s.execute(update(table).where(column == ref).values(provider_purged=True))

    def report_failure(self, recipient_id: int, reason: Reason) -> None:
        """Tell the group's staff, by pseudonym and in plain words, that a message was lost.

        Called by the delivery engine once a row has failed for good.
        """
        now = self.clock.now()
        with transaction(self.engine) as s:
            member = s.get(Member, recipient_id)
            if member is None or member.group_id is None:
                return
            group = s.get(Group, member.group_id)
            if group is None:
                return
            if reason == Reason.OPTED_OUT and member.state != MemberState.REMOVED:
                member.state = MemberState.OPTED_OUT
                s.add(member)
                cancel_open(s, member.id)  # type: ignore[arg-type]
            folded = reports.due(s, recipient_id, reason, now)
            if folded is None:
                return  # staff heard about this person and reason within the hour
            name = display_name(member) if member.pseudonym else T("a former member")
            text: Renderable = T(
                "A message could not reach {name}: {reason}",
                name=name,
                reason=REASON_WORDS.get(reason, T("the provider refused it.")),
            )
            if folded:
                text = Joined(
                    (
                        text,
                        TN(
                            "({n} other message failed the same way since the last notice.)",
                            "({n} other messages failed the same way since the last notice.)",
                            folded,
                        ),
                    ),
                    " ",
                )
            Applier(self, s, group, None, now).apply(
                Outcome.of(ToStaff(text)), report_failure=False
            )
