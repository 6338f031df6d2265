"""The relay service: accepts inbound events, decides, and writes state and outbox together.

Everything one inbound event causes (its de-duplication record, state changes, audit entries
and every outbox row) commits in one transaction, or none of it does. Nothing here sends:
the delivery engine (:mod:`relay.delivery`) does that from the outbox.
"""

from __future__ import annotations

import base64
import logging
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from relay import bans, commands, flood, invites, policy, reports, safety
from relay.clock import Clock
from relay.commands import Context, Refusal, UsageError, display_name
from relay.crypto import DataKeys
from relay.durations import describe
from relay.errors import CercleError, Reason
from relay.i18n import LANGS, TN, Joined, Raw, Renderable, T
from relay.media import UnsupportedMedia, UnsupportedType, sanitize
from relay.mentions import rewrite
from relay.messages import Channel, Inbound, InboundKind
from relay.models import (
    AuditEvent,
    Group,
    Member,
    MemberState,
    Outbox,
    OutboxKind,
    OutboxState,
    Role,
)
from relay.models import Inbound as InboundRow
from relay.outbox import ADDRESS_CONTEXT, UUID_CONTEXT, OutboxWriter
from relay.outcome import (
    Audit,
    Ban,
    Deferred,
    Mute,
    Outcome,
    Remove,
    Rename,
    Reply,
    RequestLeave,
    SetGroupTimer,
    SetLang,
    SetPaused,
    ToGroup,
    ToMember,
    ToStaff,
    Trust,
)
from relay.phone import normalize
from relay.pseudonyms import assign, fold
from relay.storage import transaction
from relay.texts import ConfigText, Texts

log = logging.getLogger(__name__)

AGREE_WORD = {"en": "AGREE", "fr": "ACCEPTE"}
_AGREE_KEYS = {"agree", "iagree", "accepte", "jaccepte", "accept", "daccord"}
DEDUP_TTL = timedelta(days=2)
MAX_TEXT = commands.MAX_TEXT
# Bidirectional overrides and isolates could make "Willow: …" display as someone else's name.
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


class Result(StrEnum):
    """What became of an inbound event (for logs and tests; names no one)."""

    DUPLICATE = "duplicate"
    UNKNOWN_SENDER = "unknown_sender"
    RELAYED = "relayed"
    COMMAND = "command"
    CONSENT = "consent"
    HELD_BACK = "held_back"  # not relayed, sender told why
    IGNORED = "ignored"
    STATE = "state"


def clean_text(text: str) -> str:
    """Member text made safe to display: no control or bidi-override characters, trimmed.

    A lone surrogate (JSON can carry one; UTF-8 cannot) becomes U+FFFD.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = (
        "\ufffd" if unicodedata.category(c) == "Cs" else c
        for c in text
        if c in "\n\t" or (unicodedata.category(c) != "Cc" and c not in _BIDI_CONTROLS)
    )
    return "".join(kept).strip()


def _is_agree(text: str) -> bool:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    key = "".join(c for c in decomposed if c.isalpha() and not unicodedata.combining(c))
    return key in _AGREE_KEYS


@dataclass(frozen=True)
class GroupSettings:
    """What an admin chooses when creating a group."""

    name: str
    lang: str = "fr"
    timer_seconds: int = 7 * 86400
    allow_rename: bool = False
    allow_sms: bool = True
    allow_media: bool = False


class Relay:
    """The core service. One instance per process; thread-safe (each call has its session)."""

    # Makes the private web link of an invite code, when the web door is on (issue 14).
    join_link: Callable[[str], str] | None = None

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
        if not commands.MIN_TIMER <= settings.timer_seconds <= commands.MAX_TIMER:
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
                created_at=self.clock.now(),
            )
            s.add(group)
            s.flush()
            s.add(
                AuditEvent(
                    group_id=group.id, at=self.clock.now(), actor="admin", action="group_create"
                )
            )
        return group

    def group(self, session: Session, name: str) -> Group:
        """The open group called ``name``."""
        group = session.exec(select(Group).where(Group.name == name)).first()
        if group is None or group.closed_at is not None:
            raise CercleError("There is no open group with that name.")
        return group

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
            taken = {m.name_key for m in self._roster(s, group) if m.name_key}
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
                name_key=fold(pseudonym),
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
            self._send_consent(writer, group, member)
            s.add(
                AuditEvent(
                    group_id=group.id,
                    at=now,
                    actor="admin",
                    action="enroll",
                    target=pseudonym,
                    detail=role,
                )
            )
        return member

    def _consent_parts(self, group: Group, member: Member) -> list[Renderable]:
        t = self.texts
        timer = describe(group.timer_seconds)
        parts: list[Renderable] = [
            ConfigText(
                t,
                "about",
                (
                    ("org", self.org_name),
                    ("group", group.name),
                    ("pseudonym", display_name(member)),
                ),
            ),
            ConfigText(t, "agreements"),
            ConfigText(t, "privacy", (("timer", timer),)),
        ]
        if member.channel == Channel.SMS:
            parts.append(ConfigText(t, "sms_notice"))
        parts.append(Joined((ConfigText(t, "how_to_leave"), self._consent_prompt(member))))
        return parts

    def _consent_prompt(self, member: Member) -> Renderable:
        return ConfigText(self.texts, "consent_prompt", (("agree", AGREE_WORD[member.lang]),))

    def _send_consent(self, writer: OutboxWriter, group: Group, member: Member) -> None:
        for part in self._consent_parts(group, member):
            writer.fan_out([member], part)

    def roster(self, group_name: str) -> list[Member]:
        """Every member of a group who is not removed."""
        with Session(self.engine) as s:
            return self._roster(s, self.group(s, group_name))

    def _roster(self, s: Session, group: Group) -> list[Member]:
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
                (m for m in self._roster(s, group) if m.name_key == fold(pseudonym)), None
            )
            if target is None:
                raise CercleError("There is no one with that name in the group.")
            _Applier(self, s, group, None, now).apply(
                _removed_by_organization(target, Audit("remove", target=target.pseudonym))
            )

    def ban_number(self, number: str, reason: str) -> int:
        """Ban a number deployment-wide (``cercle member ban``): it goes on the deny list and
        every membership it has is removed. Returns how many memberships were removed."""
        address = normalize(number)
        now = self.clock.now()
        with transaction(self.engine) as s:
            added = bans.add(s, self.keys, address, reason, now)
            removed = self._remove_banned(s, address, now, exclude=None)
            s.add(AuditEvent(at=now, actor="admin", action="ban" if added else "ban_again"))
        return removed

    def unban_number(self, number: str) -> bool:
        """Take a number off the deny list (``cercle member unban``); ``False`` if it was not
        on it."""
        address = normalize(number)
        with transaction(self.engine) as s:
            lifted = bans.lift(s, self.keys, address)
            if lifted:
                s.add(AuditEvent(at=self.clock.now(), actor="admin", action="unban"))
        return lifted

    def _remove_banned(self, s: Session, address: str, now: datetime, exclude: int | None) -> int:
        """Remove every membership of a banned number (other groups' staff are told by
        pseudonym, as for any removal); ``exclude`` is removed by the caller."""
        removed = 0
        for member in bans.memberships(s, self.keys, address):
            group = s.get(Group, member.group_id)
            if member.id == exclude or group is None:
                continue
            # Not the acting facilitator's group: the audit says the deny list did it.
            _Applier(self, s, group, None, now).apply(
                _removed_by_organization(
                    member, Audit("ban", target=member.pseudonym, detail="deny_list")
                )
            )
            removed += 1
        return removed

    def close_group(self, group_name: str) -> int:
        """Close a group: everyone gets a closing message with resources, then is removed."""
        now = self.clock.now()
        with transaction(self.engine) as s:
            group = self.group(s, group_name)
            members = self._roster(s, group)
            applier = _Applier(self, s, group, None, now)
            farewell = Joined(
                (
                    T(
                        "This group is now closed. Thank you for being part of it. "
                        "Your number and your data have been deleted."
                    ),
                    ConfigText(self.texts, "resources"),
                )
            )
            for m in members:
                applier.apply(Outcome.of(Remove(m.id, farewell)))  # type: ignore[arg-type]
            group.closed_at = now
            s.add(group)
            s.add(AuditEvent(group_id=group.id, at=now, actor="admin", action="group_close"))
        return len(members)

    # --- inbound --------------------------------------------------------------------------

    def accept(self, inbound: Inbound) -> Result:
        """Handle one inbound event. Durable when this returns: state and outbox committed."""
        try:
            with transaction(self.engine) as s:
                return _Handling(self, s, inbound).run()
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
                _cancel_open(s, member.id)  # type: ignore[arg-type]
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
            _Applier(self, s, group, None, now).apply(
                Outcome.of(ToStaff(text)), report_failure=False
            )


def _removed_by_organization(member: Member, audit: Audit) -> Outcome:
    """Removing someone from outside the conversation (an admin, the deny list): their last
    message, a notice to the group, and the audit entry."""
    return Outcome.of(
        Remove(
            commands.member_id(member),
            T(
                "The organization has removed you from the group. Your number and your data have "
                "been deleted."
            ),
        ),
        ToGroup(
            T("{name} is no longer in the group.", name=display_name(member)), exclude=member.id
        ),
        audit,
    )


_ONLY_PHOTOS = T(
    "One of your files was not shared: only photos can be, because videos, voice notes and "
    "documents can carry hidden details such as where they were made."
)
_UNREADABLE_PHOTO = T("One of your photos could not be read or is too large, so it was not shared.")


REASON_WORDS: dict[Reason, T] = {
    Reason.NETWORK: T("the connection to the provider kept failing."),
    Reason.PROVIDER_DOWN: T("the provider was unavailable for too long."),
    Reason.RATE_LIMITED: T("the provider is limiting how fast we can send."),
    Reason.CAPTCHA_REQUIRED: T(
        "Signal asks for a captcha before we can send more; messages are kept until then. An "
        "admin must solve it and run the command shown in the worker's log (see docs/signal.md, "
        "Captcha)."
    ),
    Reason.UNREGISTERED: T(
        "their number is no longer registered on this service (for "
        "Signal: they deleted their account or changed number)."
    ),
    Reason.OPTED_OUT: T(
        "they texted STOP, so SMS can no longer reach them. They can text START to come back."
    ),
    Reason.INVALID_NUMBER: T("their number is not valid for this service."),
    Reason.UNREACHABLE: T(
        "their phone could not be reached (off, out of coverage, or blocked by the carrier)."
    ),
    Reason.IDENTITY_CHANGED: T(
        "their safety number changed, so messages to them are on hold. "
        "Check with them by another safe way, then send /trust and "
        "their name."
    ),
    Reason.REJECTED: T("the provider refused it."),
}


def _cancel_open(s: Session, member_id: int) -> None:
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


class _Applier:
    """Applies an :class:`Outcome`'s effects, in order, within one session."""

    def __init__(
        self, relay: Relay, s: Session, group: Group, actor: Member | None, now: datetime
    ) -> None:
        self.relay = relay
        self.s = s
        self.group = group
        self.actor = actor
        self.now = now
        self.writer = OutboxWriter(s, relay.keys, now)

    def roster(self) -> list[Member]:
        return self.relay._roster(self.s, self.group)

    def receivers(self, exclude: int | None) -> list[Member]:
        """Active members who receive group messages."""
        return [m for m in self.roster() if m.state == MemberState.ACTIVE and m.id != exclude]

    def apply(self, outcome: Outcome, *, report_failure: bool = True) -> None:
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
                    _cancel_open(self.s, actor.id)  # type: ignore[arg-type]
            case Rename(name=name) if actor is not None:
                actor.pseudonym, actor.name_key = name, fold(name)
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
                        actor=(actor.pseudonym or "?") if actor else "admin",
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
            self.relay._remove_banned(self.s, address, self.now, exclude=member_id)

    def _remove(self, member_id: int, farewell: Renderable) -> None:
        target = self.s.get(Member, member_id)
        if target is None or target.state == MemberState.REMOVED:
            return
        _cancel_open(self.s, member_id)
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


class _Handling:
    """The handling of one inbound event inside one transaction."""

    def __init__(self, relay: Relay, s: Session, inbound: Inbound) -> None:
        self.relay = relay
        self.s = s
        self.inbound = inbound
        self.now = relay.clock.now()

    def run(self) -> Result:
        ib = self.inbound
        keys = self.relay.keys
        dedup = keys.lookup_hash(ib.dedup_key, "dedup")
        # Older rows may hold the hash under the previous key, or re-keyed by a rotation.
        seen = keys.lookup_hashes(ib.dedup_key, "dedup", rehashed=True)
        if self.s.exec(select(InboundRow.id).where(col(InboundRow.dedup_hash).in_(seen))).first():
            log.info("inbound dropped: duplicate")
            return Result.DUPLICATE
        member = self.relay.find_member(self.s, ib.channel, ib.sender.address, ib.sender.uuid)
        if member is None:
            # JOIN <code> is the one thing an unknown sender may say (relay/invites.py).
            if (joined := invites.try_join(self.relay, self.s, ib, dedup, self.now)) is not None:
                return Result(joined)
            # Unknown senders learn nothing: no answer at all, and nothing kept about them.
            log.info("inbound dropped: unknown sender on %s", ib.channel)
            return Result.UNKNOWN_SENDER
        group = self.s.get(Group, member.group_id)
        if group is None or group.closed_at is not None:
            log.info("inbound dropped: group closed")
            return Result.UNKNOWN_SENDER
        if self.relay.uuid_differs(member, ib.sender.uuid):
            return self._other_account(member, group)
        self._learn_uuid(member)
        row = InboundRow(
            dedup_hash=dedup,
            dedup_key_id=keys.kid,
            member_id=member.id,
            group_id=group.id,
            author_ref=ib.ref,
            received_at=self.now,
            expires_at=self.now + max(DEDUP_TTL, timedelta(seconds=group.timer_seconds)),
        )
        self.s.add(row)
        self.s.flush()
        member.last_active_on = self.now.date()
        self.s.add(member)
        self.member, self.group, self.row = member, group, row
        self.apply = _Applier(self.relay, self.s, group, member, self.now)
        result = self._dispatch()
        log.info("inbound %s: %s", ib.kind, result)
        return result

    def _other_account(self, member: Member, group: Group) -> Result:
        """A member's number writing from another Signal account: a recycled number, or
        someone who took it. Not relayed, not answered; staff are told (at most hourly)."""
        log.info("inbound dropped: member's number on another signal account")
        applier = _Applier(self.relay, self.s, group, None, self.now)
        if reports.due(self.s, member.id or 0, "other_account", self.now) is not None:
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

    def _learn_uuid(self, member: Member) -> None:
        uuid = self.inbound.sender.uuid
        if uuid and member.uuid_hash is None:
            member.uuid_enc = self.relay.keys.encrypt_text(uuid.lower(), UUID_CONTEXT)
            member.uuid_hash = self.relay.uuid_hash(uuid)

    def _dispatch(self) -> Result:
        ib, m = self.inbound, self.member
        match ib.kind:
            case InboundKind.OPTED_OUT:
                return self._opted_out()
            case InboundKind.OPTED_IN:
                return self._opted_in()
            case InboundKind.TIMER_CHANGED:
                self._enforce_timer(ib.expires_in_seconds, always=True)
                return Result.STATE
            case InboundKind.IDENTITY_CHANGED:
                return self._identity_changed()
        # The exit word works in every state; newcomers awaiting approval wait (relay/safety.py).
        if (handled := safety.first(self)) is not None:
            return Result(handled)
        if m.state == MemberState.OPTED_OUT:
            # They texted again after STOP without START: carrier will not deliver anyway.
            return Result.IGNORED
        if ib.expires_in_seconds is not None:
            self._enforce_timer(ib.expires_in_seconds, always=False)
        text = clean_text(ib.text or "")
        parsed = commands.parse(text) if ib.kind == InboundKind.MESSAGE else None
        if m.state == MemberState.INVITED:
            return self._before_consent(text, parsed)
        if parsed is not None:
            return self._command(parsed)
        match ib.kind:
            case InboundKind.EDIT:
                return self._edit()
            case InboundKind.DELETE:
                return self._delete()
            case InboundKind.REACTION:
                return self._reaction()
        return self._relay()

    # -- consent --

    def _before_consent(self, text: str, parsed: commands.Parsed | None) -> Result:
        if parsed is not None:
            return self._command(parsed, consented=False)
        if _is_agree(text):
            m = self.member
            m.state = MemberState.ACTIVE
            m.consent_version = self.relay.texts.consent_version(m.lang, m.channel == "sms")
            m.consented_at = self.now
            self.apply.apply(
                Outcome.of(
                    Reply(
                        T(
                            "Thank you. You are now in the group as {name}. Send {help} to see "
                            "what you can do.",
                            name=display_name(m),
                            help=Raw("/" + commands.COMMANDS_BY_NAME["help"].words[m.lang]),
                        )
                    ),
                    ToGroup(T("{name} has joined the group.", name=display_name(m)), exclude=m.id),
                    Audit("consent", target=m.pseudonym, detail=m.consent_version),
                )
            )
            return Result.CONSENT
        self.apply.apply(Outcome.of(Reply(self.relay._consent_prompt(self.member))))
        return Result.HELD_BACK

    # -- commands --

    def _command(self, parsed: commands.Parsed, *, consented: bool = True) -> Result:
        m = self.member
        cmd = commands.lookup(parsed.word, m, consented=consented)
        if cmd is None:
            near = commands.suggest(parsed.word, m, consented=consented)
            help_word = Raw("/" + commands.COMMANDS_BY_NAME["help"].words[m.lang])
            text = (
                T(
                    "Unknown command. Did you mean {suggestion}? Send {help} for the list.",
                    suggestion=Raw("/" + near),
                    help=help_word,
                )
                if near
                else T("Unknown command. Send {help} for the list.", help=help_word)
            )
            self.apply.apply(Outcome.of(Reply(text)))
            return Result.COMMAND
        ctx = Context(
            member=m,
            group=self.group,
            roster=self.apply.roster(),
            args=parsed.args,
            now=self.now,
            texts=self.relay.texts,
            org_name=self.relay.org_name,
        )
        try:
            outcome = cmd.handler(ctx)
        except UsageError:
            outcome = Outcome.of(Reply(Joined((T("Usage:"), cmd.usage), " ")))
        except Refusal as exc:
            outcome = Outcome.of(Reply(exc.text))
        self.apply.apply(outcome)
        return Result.COMMAND

    # -- state events --

    def _opted_out(self) -> Result:
        m = self.member
        if m.state in (MemberState.ACTIVE, MemberState.PAUSED, MemberState.INVITED):
            m.state = MemberState.OPTED_OUT
            _cancel_open(self.s, m.id)  # type: ignore[arg-type]
            self.apply.apply(
                Outcome.of(
                    ToStaff(
                        T(
                            "{name} texted STOP: SMS can no longer reach them until they text "
                            "START.",
                            name=display_name(m),
                        )
                    ),
                    Audit("opted_out", target=m.pseudonym),
                )
            )
        return Result.STATE

    def _opted_in(self) -> Result:
        m = self.member
        if m.state == MemberState.OPTED_OUT:
            m.state = MemberState.ACTIVE if m.consented_at else MemberState.INVITED
            self.apply.apply(
                Outcome.of(
                    ToStaff(
                        T(
                            "{name} texted START and can receive messages again.",
                            name=display_name(m),
                        )
                    ),
                    Audit("opted_in", target=m.pseudonym),
                )
            )
            if m.state == MemberState.INVITED:
                self.relay._send_consent(self.apply.writer, self.group, m)
        return Result.STATE

    def _enforce_timer(self, seconds: int | None, *, always: bool) -> None:
        m, group = self.member, self.group
        if seconds == group.timer_seconds:
            m.timer_seconds = seconds
            return
        # Reset before anything else is relayed to them: the TIMER row is queued first.
        self.apply.writer.timer(m, group.timer_seconds)
        m.timer_seconds = group.timer_seconds
        if always or seconds is not None:
            self.apply.apply(
                Outcome.of(
                    Reply(
                        T(
                            "In this group, messages disappear after {timer}, to protect "
                            "everyone. Cercle has reset your timer to the group's.",
                            timer=describe(group.timer_seconds),
                        )
                    )
                )
            )

    def _identity_changed(self) -> Result:
        m = self.member
        self.apply.apply(
            Outcome.of(
                ToStaff(
                    T(
                        "{name}'s safety number changed. It may be a new phone or a reinstall, or "
                        "someone else may now be using their account. Check with them by another "
                        "safe way if you can.",
                        name=display_name(m),
                    )
                ),
                Audit("identity_changed", target=m.pseudonym),
            )
        )
        return Result.STATE

    # -- relaying --

    def _relay_guard(self) -> Result | None:
        m = self.member
        if m.state == MemberState.PAUSED:
            self.apply.apply(
                Outcome.of(
                    Reply(
                        T(
                            "You are paused, so your message was not sent to the group. "
                            "Send {resume} to come back.",
                            resume=Raw("/" + commands.COMMANDS_BY_NAME["resume"].words[m.lang]),
                        )
                    )
                )
            )
            return Result.HELD_BACK
        if m.muted_until is not None and m.muted_until > self.now:
            policy.tally(self.s, m.group_id, policy.Tally.MUTED, self.now)
            left = int((m.muted_until - self.now).total_seconds())
            self.apply.apply(
                Outcome.of(
                    Reply(
                        T(
                            "A facilitator has muted you; your message was not sent to the "
                            "group. You can write again in {duration}. You can still reach the "
                            "facilitators with {staff}.",
                            duration=describe(max(left, 60)),
                            staff=Raw("/" + commands.COMMANDS_BY_NAME["staff"].words[m.lang]),
                        )
                    )
                )
            )
            return Result.HELD_BACK
        return None

    def _flood_guard(self) -> Result | None:
        """Hold back messages over the member's flood limit; tell them and staff once."""
        m, rule = self.member, self.relay.flood_limit
        verdict = flood.count(self.s, m.id, self.now, rule)  # type: ignore[arg-type]
        if verdict is flood.Verdict.OK:
            return None
        policy.tally(self.s, m.group_id, policy.Tally.LIMITED, self.now)
        if verdict is flood.Verdict.FIRST_OVER:
            wait = flood.seconds_left(self.s, m.id, self.now, rule)  # type: ignore[arg-type]
            self.apply.apply(
                Outcome.of(
                    Reply(
                        T(
                            "You are sending a lot of messages quickly, so this one and the next "
                            "ones were not sent to the group. You can write again in {duration}.",
                            duration=describe(max(wait, 60)),
                        )
                    ),
                    ToStaff(
                        T(
                            "{name} sent more than {n} messages in {window}; their messages are "
                            "held back for now.",
                            name=display_name(m),
                            n=rule.limit,
                            window=describe(max(int(rule.window), 60)),
                        )
                    ),
                    Audit("flood", target=m.pseudonym),
                )
            )
        log.info("inbound held back: flood limit")
        return Result.HELD_BACK

    def _text_or_refuse(self, raw: str | None) -> str | None:
        text = clean_text(self._rewrite_mentions(raw or ""))
        if len(text) > MAX_TEXT:
            self.apply.apply(
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

    def _rewrite_mentions(self, text: str) -> str:
        # Signal offers mentions only in group chats, so one arriving in a one-to-one chat
        # with the relay was crafted. Resolving its UUID to a pseudonym would let someone who
        # knows a survivor's account, and a member who colludes, learn which pseudonym is
        # theirs: every mention becomes "@?" and no UUID is ever looked up.
        if not self.inbound.mentions:
            return text
        return rewrite(text, self.inbound.mentions, lambda _uuid: "?")

    def _relay(self) -> Result:
        alerted = safety.check_alert(self)  # before the guards: a muted member in danger too
        if (held := self._relay_guard()) is not None:
            return held
        if (held := self._flood_guard()) is not None:
            return held
        text = self._text_or_refuse(self.inbound.text)
        if text is None:
            return Result.HELD_BACK
        attachments = self._attachments()
        if not text and not attachments:
            log.info("inbound dropped: empty")
            return Result.IGNORED
        # Open hours, pre-moderation, held alerts (relay/safety.py).
        if (handled := safety.review(self, text, attachments, alerted=alerted)) is not None:
            return Result(handled)
        m = self.member
        target = self._find_target(self.inbound.quote_ref) if self.inbound.quote_ref else None
        body: Renderable = (
            T("{name}: {text}", name=display_name(m), text=Raw(text))
            if text
            else T("{name} sent:", name=display_name(m))
        )
        extra: dict[str, object] = {}
        if attachments:
            extra["attachments"] = attachments
        if self.inbound.view_once:
            extra["view_once"] = True
        notes = (
            {
                lang: {
                    "media_note": T(
                        "({name} sent a photo or file that cannot be shown here.)",
                        name=display_name(m),
                    ).render(lang)
                }
                for lang in LANGS
            }
            if attachments
            else None
        )
        count = self.apply.writer.fan_out(
            [r for r in self.apply.receivers(m.id) if not _muted(r, self.now)],
            body,
            inbound_id=self.row.id,
            target_inbound_id=target,
            extra=extra,
            extra_by_lang=notes,
        )
        self.row.relayed = True
        self.s.add(self.row)
        log.info("relayed to %d recipients", count)
        return Result.RELAYED

    def _attachments(self) -> list[dict[str, str]]:
        atts = self.inbound.attachments
        if not atts:
            return []
        if not self.group.allow_media:
            self.apply.apply(
                Outcome.of(
                    Reply(
                        T("Photos and files are not shared in this group; only your text was sent.")
                    )
                )
            )
            return []
        out: list[dict[str, str]] = []
        for i, att in enumerate(atts, start=1):
            try:
                clean = sanitize(att, i)
            except UnsupportedType:
                self.apply.apply(Outcome.of(Reply(_ONLY_PHOTOS)))
                continue
            except UnsupportedMedia:
                self.apply.apply(Outcome.of(Reply(_UNREADABLE_PHOTO)))
                continue
            out.append(
                {
                    "content_type": clean.content_type,
                    "filename": clean.filename,
                    "data": base64.b64encode(clean.data).decode("ascii"),
                }
            )
        return out

    def _find_target(self, ref: str | None) -> int | None:
        """The inbound message that the sender's ``ref`` points at, in their conversation."""
        if not ref:
            return None
        m = self.member
        copy = self.s.exec(
            select(Outbox.inbound_id).where(
                col(Outbox.recipient_id) == m.id,
                col(Outbox.provider_ref) == ref,
                col(Outbox.kind) == OutboxKind.MESSAGE,
            )
        ).first()
        if copy is not None:
            return copy
        return self.s.exec(
            select(InboundRow.id).where(
                col(InboundRow.member_id) == m.id,
                col(InboundRow.author_ref) == ref,
                col(InboundRow.relayed).is_(True),
            )
        ).first()

    def _own_target(self, ref: str | None) -> InboundRow | None:
        if not ref:
            return None
        return self.s.exec(
            select(InboundRow).where(
                col(InboundRow.member_id) == self.member.id,
                col(InboundRow.author_ref) == ref,
                col(InboundRow.relayed).is_(True),
            )
        ).first()

    def _copies(self, target_id: int) -> Sequence[Outbox]:
        return self.s.exec(
            select(Outbox).where(
                col(Outbox.inbound_id) == target_id, col(Outbox.kind) == OutboxKind.MESSAGE
            )
        ).all()

    def _edit(self) -> Result:
        if (held := self._relay_guard()) is not None:
            return held
        target = self._own_target(self.inbound.edit_ref)
        text = self._text_or_refuse(self.inbound.text)
        if target is None or not text:
            return Result.IGNORED
        recipients = [
            c.recipient_id
            for c in self._copies(target.id)  # type: ignore[arg-type]
            if c.state not in (OutboxState.CANCELLED, OutboxState.FAILED)
        ]
        members = [m for m in self.apply.roster() if m.id in set(recipients)]
        self.apply.writer.fan_out(
            members,
            T("{name}: {text}", name=display_name(self.member), text=Raw(text)),
            kind=OutboxKind.EDIT,
            inbound_id=self.row.id,
            target_inbound_id=target.id,
        )
        return Result.RELAYED

    def _delete(self) -> Result:
        target = self._own_target(self.inbound.delete_ref)
        if target is None:
            return Result.IGNORED
        copies = self._copies(target.id)  # type: ignore[arg-type]
        # Copies not yet sent are simply never sent; the rest are deleted on the phones.
        for c in copies:
            if c.state in (OutboxState.PENDING, OutboxState.RETRY, OutboxState.HELD):
                c.state = OutboxState.CANCELLED
                self.s.add(c)
        sent_to = {
            c.recipient_id for c in copies if c.state in (OutboxState.SENT, OutboxState.SENDING)
        }
        members = [m for m in self.apply.roster() if m.id in sent_to]
        self.apply.writer.fan_out(
            members,
            Raw(""),
            kind=OutboxKind.DELETE,
            inbound_id=self.row.id,
            target_inbound_id=target.id,
            report_failure=False,
        )
        return Result.RELAYED

    def _reaction(self) -> Result:
        reaction = self.inbound.reaction
        if reaction is None or reaction.remove:
            return Result.IGNORED
        target_id = self._find_target(reaction.target_ref)
        target = self.s.get(InboundRow, target_id) if target_id else None
        if target is None or target.member_id == self.member.id:
            return Result.IGNORED
        author = self.s.get(Member, target.member_id)
        if author is None or author.state != MemberState.ACTIVE:
            return Result.IGNORED
        # Only the author hears of it, as a short note quoting their message: the bot can hold
        # one reaction per message, so relaying reactions natively would merge everyone's.
        emoji = clean_text(reaction.emoji)[:16]
        self.apply.writer.fan_out(
            [author],
            T(
                "{name} reacted {emoji} to your message.",
                name=display_name(self.member),
                emoji=Raw(emoji),
            ),
            inbound_id=self.row.id,
            target_inbound_id=target.id,
            report_failure=False,
        )
        return Result.RELAYED


def _muted(member: Member, now: datetime) -> bool:
    return member.muted_until is not None and member.muted_until > now
