"""Database tables. Identifiers and bodies are stored only sealed (see :mod:`relay.storage.crypto`).

Times are timezone-aware UTC. Columns that hold sealed values end in ``_enc``; their lookup
hashes end in ``_hash``. Nothing here holds a plaintext number, UUID, profile name or message body.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

# The staff console's tables are in their own module; named here too, with every other table.
from relay.storage.staff_tables import StaffAccount as StaffAccount  # noqa: PLC0414
from relay.storage.staff_tables import StaffCredential as StaffCredential  # noqa: PLC0414
from relay.storage.staff_tables import StaffGroup as StaffGroup  # noqa: PLC0414
from relay.storage.staff_tables import StaffRole as StaffRole  # noqa: PLC0414
from relay.storage.staff_tables import StaffSession as StaffSession  # noqa: PLC0414


class Role(StrEnum):
    """What a member may do. Order matters: each role may do what the ones before it may."""

    MEMBER = "member"
    FACILITATOR = "facilitator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Position in the order member < facilitator < admin."""
        return list(Role).index(self)

    @property
    def is_staff(self) -> bool:
        """Facilitators and admins are staff: marked as such wherever their name appears."""
        return self is not Role.MEMBER


class MemberState(StrEnum):
    """Where a member is in their life in the group."""

    INVITED = "invited"  # enrolled, consent text sent, not yet agreed
    PENDING = "pending"  # came in with an invite code; waits for a facilitator's approval
    ACTIVE = "active"
    PAUSED = "paused"  # chose to stop receiving for a while
    OPTED_OUT = "opted_out"  # texted STOP to the carrier; SMS cannot reach them
    REMOVED = "removed"  # tombstone: identifiers and pseudonym deleted


class Group(SQLModel, table=True):
    """A support group: its language, its timer and what members may do."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=64)
    lang: str = Field(default="fr", max_length=8)
    timer_seconds: int = Field(default=7 * 24 * 3600)
    allow_rename: bool = Field(default=False)
    allow_sms: bool = Field(default=True)
    allow_media: bool = Field(default=False)
    # Whether a web member's chat page shows the group's name. Off: the page names nothing a
    # glance at a watched screen could read.
    show_name: bool = Field(default=False)
    # Sessions also meet by video, on the organization's own Jitsi Meet (CERCLE_VIDEO_URL).
    video: bool = Field(default=False)
    created_at: datetime
    closed_at: datetime | None = None


class Member(SQLModel, table=True):
    """One enrolled number in one group. A tombstone once removed (identifiers nulled)."""

    __table_args__ = (
        UniqueConstraint("channel", "address_hash", name="uq_member_channel_address"),
        UniqueConstraint("channel", "uuid_hash", name="uq_member_channel_uuid"),
        UniqueConstraint("group_id", "name_key", name="uq_member_group_name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="group.id", index=True)
    channel: str = Field(max_length=16)
    address_enc: bytes | None = Field(default=None, sa_type=LargeBinary)
    address_hash: str | None = Field(default=None, max_length=64)
    uuid_enc: bytes | None = Field(default=None, sa_type=LargeBinary)
    uuid_hash: str | None = Field(default=None, max_length=64)
    pseudonym: str | None = Field(default=None, max_length=32)
    name_key: str | None = Field(default=None, max_length=32)  # folded pseudonym, for uniqueness
    role: str = Field(default=Role.MEMBER, max_length=16)
    lang: str = Field(default="fr", max_length=8)
    state: str = Field(default=MemberState.INVITED, max_length=16)
    muted_until: datetime | None = None
    consent_version: str | None = Field(default=None, max_length=32)
    consented_at: datetime | None = None
    leave_requested_at: datetime | None = None
    timer_seconds: int | None = None  # the timer we last set on this conversation
    last_active_on: date | None = None  # day resolution only: enough for staff, less to leak
    created_at: datetime


class Inbound(SQLModel, table=True):
    """One accepted inbound event: de-duplication, and the anchor for quotes/edits/deletes.

    ``author_ref`` is the sender's own id for the message (a Signal timestamp); it and the
    outbox rows pointing here are what maps reactions, quotes, edits and deletes, and they are
    purged when the group's timer expires.
    """

    __tablename__ = "inbound"
    __table_args__ = (Index("ix_inbound_author_ref", "member_id", "author_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    dedup_hash: str = Field(max_length=64, unique=True)
    # Which data key made ``dedup_hash``: the key it hashes is not kept, so rotation can only
    # re-key it by hashing the hash (relay.privacy.rotation) and must tell done rows from the rest.
    dedup_key_id: str | None = Field(default=None, max_length=8)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    group_id: int | None = Field(default=None, foreign_key="group.id")
    author_ref: str | None = Field(default=None, max_length=64)
    relayed: bool = Field(default=False)
    # The provider still holds a copy (an SMS at Twilio) until this is set.
    provider_purged: bool = Field(default=False)
    received_at: datetime
    expires_at: datetime = Field(index=True)


class OutboxBody(SQLModel, table=True):
    """A sealed payload shared by the outbox rows of one fan-out in one language."""

    __tablename__ = "outbox_body"

    id: int | None = Field(default=None, primary_key=True)
    payload_enc: bytes | None = Field(default=None, sa_type=LargeBinary)
    created_at: datetime


class OutboxState(StrEnum):
    """The life of one outbox row."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    RETRY = "retry"  # failed, retryable, waits for next_attempt_at
    FAILED = "failed"  # permanent
    CANCELLED = "cancelled"  # recipient removed or paused before send
    HELD = "held"  # waits for a person (safety number changed)

    @property
    def is_final(self) -> bool:
        """Whether nothing more will happen to the row."""
        return self in (OutboxState.SENT, OutboxState.FAILED, OutboxState.CANCELLED)


# The states of a row that is not final yet: what may still go out, the one definition the
# claims (a recipient's oldest open row is their head), recalls and retention all use.
OPEN_STATES = (OutboxState.PENDING, OutboxState.SENDING, OutboxState.RETRY, OutboxState.HELD)


class OutboxKind(StrEnum):
    """What an outbox row asks the transport to do."""

    MESSAGE = "message"
    EDIT = "edit"
    DELETE = "delete"
    REACTION = "reaction"
    TIMER = "timer"
    TRUST = "trust"  # accept a new safety number that staff confirmed; releases held rows


class Outbox(SQLModel, table=True):
    """One thing to deliver to one recipient, claimed by a worker under a lease."""

    __table_args__ = (
        Index("ix_outbox_open", "state", "recipient_id", "id"),
        Index("ix_outbox_ref", "recipient_id", "provider_ref"),
        Index("ix_outbox_inbound", "inbound_id", "recipient_id"),
        # Retention asks "does any row still use this body / point at this inbound?".
        Index("ix_outbox_body", "body_id"),
        Index("ix_outbox_target", "target_inbound_id"),
        Index("ix_outbox_group_created", "group_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int | None = Field(default=None, foreign_key="group.id")
    recipient_id: int = Field(foreign_key="member.id")
    channel: str = Field(max_length=16)
    kind: str = Field(default=OutboxKind.MESSAGE, max_length=16)
    body_id: int | None = Field(default=None, foreign_key="outbox_body.id")
    inbound_id: int | None = Field(default=None, foreign_key="inbound.id")
    target_inbound_id: int | None = Field(default=None, foreign_key="inbound.id")
    # A sealed copy of the address, only for the last words to someone whose data is gone.
    address_enc: bytes | None = Field(default=None, sa_type=LargeBinary)
    report_failure: bool = Field(default=True)
    state: str = Field(default=OutboxState.PENDING, max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = None
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    provider_ref: str | None = Field(default=None, max_length=64)
    # Later news from the provider (status callbacks), kept monotonic by rank.
    provider_status: str | None = Field(default=None, max_length=16)
    provider_status_rank: int | None = None
    provider_purged: bool = Field(default=False)
    error_reason: str | None = Field(default=None, max_length=32)
    segments: int | None = None
    created_at: datetime
    done_at: datetime | None = None


class AuditEvent(SQLModel, table=True):
    """A moderation or admin action: who, what, to whom, when. Pseudonyms only, no content."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    group_id: int | None = Field(default=None, foreign_key="group.id", index=True)
    at: datetime = Field(index=True)
    actor: str = Field(max_length=48)
    action: str = Field(max_length=32)
    target: str | None = Field(default=None, max_length=48)
    detail: str | None = Field(default=None, max_length=64)


class ChannelPace(SQLModel, table=True):
    """One channel's shared token bucket: every worker takes its send tokens from this row.

    ``tokens`` is the level at ``refilled_at``; ``blocked_until`` is pushed forward when the
    provider says "slow down", so every worker backs off, not just the one that was told.
    """

    __tablename__ = "channel_pace"

    channel: str = Field(primary_key=True, max_length=16)
    tokens: float = Field(default=0.0)
    refilled_at: datetime
    blocked_until: datetime | None = None


class SingletonLease(SQLModel, table=True):
    """A named lease that at most one process holds at a time (e.g. one Signal receiver).

    ``name`` is a fixed channel name or a keyed hash, never a number in clear.
    """

    __tablename__ = "singleton_lease"

    name: str = Field(primary_key=True, max_length=80)
    owner: str = Field(max_length=64)
    expires_at: datetime


class FloodWindow(SQLModel, table=True):
    """How many messages a member sent in the current window: a counter, never content."""

    __tablename__ = "flood_window"

    member_id: int = Field(primary_key=True, foreign_key="member.id")
    window_start: datetime
    count: int = Field(default=0)
    notified: bool = Field(default=False)  # member and staff told for this window
    # Escalating cooldowns: each flood within a day holds the member back longer.
    strikes: int = Field(default=0)
    last_strike_at: datetime | None = None
    hold_until: datetime | None = None


class FailureReport(SQLModel, table=True):
    """When staff were last told that messages to one member failed for one reason.

    Keeps failure reports to one per recipient and reason per window; ``suppressed`` counts
    the failures folded into the next report.
    """

    __tablename__ = "failure_report"

    recipient_id: int = Field(primary_key=True, foreign_key="member.id")
    reason: str = Field(primary_key=True, max_length=32)
    last_at: datetime
    suppressed: int = Field(default=0)


class BanReason(StrEnum):
    """Why a number is on the deny list: a code, never words about anyone."""

    STAFF = "staff"  # a facilitator sent /ban
    ABUSE = "abuse"
    INTRUDER = "intruder"
    SAFETY = "safety"
    OTHER = "other"


class Ban(SQLModel, table=True):
    """A number that may not be enrolled in any group of the deployment.

    Looked up by a keyed hash of the number (the same for Signal and SMS). The number itself
    is kept only sealed, and only so that ``cercle keys rotate`` can rebuild the hash under a
    new key: a keyed hash cannot be re-keyed without its input. Nothing ever shows it.
    """

    id: int | None = Field(default=None, primary_key=True)
    address_hash: str = Field(max_length=64, unique=True)
    address_enc: bytes | None = Field(default=None, sa_type=LargeBinary)
    reason: str = Field(default=BanReason.OTHER, max_length=16)
    created_at: datetime


# --- open hours, invites and safety choices -----------------------------------------------------


class GroupPolicy(SQLModel, table=True):
    """A group's open hours, end date, admission and safety choices (one row per group).

    A group without a row has the defaults: always open, open-ended, no approval, no
    pre-moderation, no default exit word, alerts relayed without content.
    """

    __tablename__ = "group_policy"

    group_id: int = Field(primary_key=True, foreign_key="group.id")
    # Weekly sessions as a compact spec ("tue 19:00-20:30; thu 10:00-11:30"); None = always open.
    schedule: str | None = Field(default=None, max_length=400)
    tz: str = Field(default="America/Toronto", max_length=64)
    # A facilitator's /open or /close: the state it forces, until when (None = until undone).
    override_open: bool | None = None
    override_until: datetime | None = None
    reminded_for: datetime | None = None  # start of the session reminders went out for
    video_for: datetime | None = None  # start of the session video links went out for
    ends_at: datetime | None = None  # the group closes for good at this time
    end_notices: int = Field(default=0)  # 1 = a week's notice sent, 2 = a day's notice sent
    require_approval: bool = Field(default=False)  # invite codes wait for a facilitator
    premoderate: int = Field(default=0)  # a newcomer's first N messages wait for a facilitator
    premoderate_since: datetime | None = None  # members who agreed before this are not new
    exit_word: str | None = Field(default=None, max_length=32)  # folded; not secret
    alert_hold: bool = Field(default=False)  # hold an alerting message for a facilitator
    alert_content: bool = Field(default=False)  # quote the message in the staff alert


class MemberSafety(SQLModel, table=True):
    """One member's own safety choices and counters. Deleted when the member is removed."""

    __tablename__ = "member_safety"

    member_id: int = Field(primary_key=True, foreign_key="member.id")
    reminders: bool = Field(default=False)
    exit_word_hash: str | None = Field(default=None, max_length=64)  # keyed hash, never the word
    # The word sealed, read only by `cercle keys rotate` to rebuild the hash under a new key:
    # without it a survivor's quick exit would silently stop working after a rotation.
    exit_word_enc: bytes | None = Field(default=None, sa_type=LargeBinary)
    premoderate_left: int | None = None  # None: not yet decided for this member
    last_alert_at: datetime | None = None


class Invite(SQLModel, table=True):
    """A one-time code that admits one number to a group. Only a keyed hash of it is stored."""

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="group.id", index=True)
    code_hash: str = Field(max_length=64, unique=True)
    # A keyed hash of the private web link's token; None for invites made before links had
    # their own token (their link carries the typed code).
    link_hash: str | None = Field(default=None, max_length=64, unique=True, index=True)
    role: str = Field(default=Role.MEMBER, max_length=16)
    lang: str | None = Field(default=None, max_length=8)  # None: the language of the word used
    created_by: str = Field(max_length=48)  # a pseudonym or "admin"
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class JoinAttempt(SQLModel, table=True):
    """Recent JOIN attempts per keyed hash of a sender, and refused attempts per door and hour
    (``guesses:<door>:<hour>``, :mod:`relay.groups.guesses`): counters only."""

    __tablename__ = "join_attempt"

    key: str = Field(primary_key=True, max_length=64)
    window_start: datetime
    count: int = Field(default=0)


class HeldMessage(SQLModel, table=True):
    """A member's message waiting: for a facilitator's decision, or for the member to send it
    privately to staff instead (outside open hours). The content is only in the sealed body."""

    __tablename__ = "held_message"

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="group.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    body_id: int = Field(foreign_key="outbox_body.id")
    # The message as it arrived (review and alert holds): released, it becomes the group
    # message its copies point at, so /delete and the author's own edits and deletes reach them.
    inbound_id: int | None = Field(default=None, foreign_key="inbound.id")
    reason: str = Field(max_length=16)  # review | alert | closed
    created_at: datetime
    expires_at: datetime = Field(index=True)


class GroupTally(SQLModel, table=True):
    """How many messages were held, muted or rate-limited per group and day: counts only."""

    __tablename__ = "group_tally"

    group_id: int = Field(primary_key=True, foreign_key="group.id")
    day: date = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=16)
    count: int = Field(default=0)


# --- the web door -----------------------------------------------------------------------------


class WebSeat(SQLModel, table=True):
    """A web member's seat: how their browser proves who it is, and where their copies wait.

    ``token_hash`` is a keyed hash of the random bearer token the browser holds (the token is
    never stored); ``seat_hash`` is the keyed hash of the opaque address the core sends to.
    No number, no IP address, nothing about the browser.
    """

    __tablename__ = "web_seat"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", unique=True)
    token_hash: str = Field(max_length=64, unique=True)
    seat_hash: str = Field(max_length=64, unique=True)
    timer_seconds: int  # how long copies stay on the page: the group's timer
    created_at: datetime
    touched_at: datetime  # last copy stored: a removed member's seat goes once it is quiet


WEB_COPY_CONTEXT = (
    "web.copy"  # what a web copy's payload is sealed for (see relay/service/web_seats)
)


class WebCopy(SQLModel, table=True):
    """One copy waiting for a web member's browser, sealed. Wiped once the browser has it
    (acknowledged) or when the group's timer passes, whichever comes first.

    Ids only grow (AUTOINCREMENT on SQLite too), so a browser's "everything after id N" and
    the push hub's "new rows since N" never miss a row.
    """

    __tablename__ = "web_copy"
    __table_args__ = (Index("ix_web_copy_seat", "seat_hash", "id"), {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    seat_hash: str = Field(max_length=64)
    ref: str = Field(max_length=32)  # what the core knows this copy by (its provider ref)
    kind: str = Field(max_length=16)  # message | own | edit | delete | end
    target_ref: str | None = Field(default=None, max_length=32)
    payload_enc: bytes | None = Field(default=None, sa_type=LargeBinary)
    created_at: datetime
    expires_at: datetime = Field(index=True)


class PendingInbound(SQLModel, table=True):
    """A received message not yet handed to the core: an SMS webhook, or a Signal frame.

    Written first (an SMS in the webhook's own request, before the provider gets its answer;
    a Signal message as soon as it comes off the receive connection), and deleted once any
    media is fetched and the core has accepted the message: a crash between the two loses
    nothing. The whole event (sender, text, media
    references) is in the sealed payload; ``dedup_hash`` is a keyed hash of the provider's
    message id, so a retried webhook is queued once.
    """

    __tablename__ = "pending_inbound"

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    dedup_hash: str = Field(max_length=64, unique=True)
    payload_enc: bytes | None = Field(default=None, sa_type=LargeBinary)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(index=True)
    received_at: datetime


class MediaLink(SQLModel, table=True):
    """A stripped photo waiting for Twilio to fetch it for an MMS.

    Served once at an unguessable URL, then deleted; also deleted when its message's status is
    final or when it expires a few minutes after it was made. Only a keyed hash of the URL's
    token is stored; the photo is sealed.
    """

    __tablename__ = "media_link"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    payload_enc: bytes | None = Field(default=None, sa_type=LargeBinary)
    message_ref: str | None = Field(default=None, max_length=64, index=True)
    expires_at: datetime = Field(index=True)
    created_at: datetime


# --- pacing per recipient, grouped join notices ------------------------------------------


class RecipientPace(SQLModel, table=True):
    """One recipient's conversation pace with the organization's number, shared by every
    worker (Signal limits messages per sender-recipient pair; a member is one address on one
    channel). ``due`` is the "theoretical arrival time" of the generic cell rate algorithm:
    the next send may go at ``due - (burst - 1) / rate`` at the earliest. No foreign key, so a
    removed member's tombstone can still be purged; rows fully refilled are deleted."""

    __tablename__ = "recipient_pace"

    recipient_id: int = Field(primary_key=True)
    due: datetime = Field(index=True)


class PendingJoin(SQLModel, table=True):
    """Someone joined and the group has not been told yet: joins within a short window are
    announced in one notice. Written in the join's own transaction, so a crash loses nothing;
    deleted when the notice is written. Holds ids only, never a name."""

    __tablename__ = "pending_join"

    member_id: int = Field(primary_key=True)
    group_id: int = Field(index=True)
    joined_at: datetime


# --- when the worker's periodic jobs last ran ---------------------------------------------


class JobRun(SQLModel, table=True):
    """When one periodic job (retention, scheduled jobs, ...) last finished a round, and
    whether that round succeeded: for ``cercle doctor`` and the console. One row per job,
    overwritten each round; a time and a flag, never anything about a member or a message."""

    __tablename__ = "job_run"

    job: str = Field(primary_key=True, max_length=32)
    finished_at: datetime
    ok: bool
    every_seconds: int  # the job's period, so a reader can tell a late job from an idle one


# --- video sessions on the organization's own Jitsi Meet ---------------------------------


VIDEO_ROOM_CONTEXT = "video.room"  # what a room's address is sealed for


class VideoRoom(SQLModel, table=True):
    """The video room of the session a group is in now: its address (server and random
    room name) sealed, and when the session ends. One row per group at most; deleted when
    the session ends, so no room name is kept at rest afterwards."""

    __tablename__ = "video_room"

    group_id: int = Field(primary_key=True, foreign_key="group.id")
    url_enc: bytes = Field(sa_type=LargeBinary)
    starts_at: datetime
    ends_at: datetime = Field(index=True)


class VideoLink(SQLModel, table=True):
    """An outbox body that carries a member's link to the running room: at the session's end
    its copies not yet sent are cancelled, those on phones that can lose them are deleted,
    and the sealed body is wiped. Ids only."""

    __tablename__ = "video_link"

    body_id: int = Field(primary_key=True)
    group_id: int = Field(index=True)
