"""Invite codes: a way in that does not need an admin to type a survivor's number.

A facilitator (``/invite``) or an admin (``cercle invite create``) makes a one-time code and
gives it to a vetted person privately. That person texts ``JOIN <code>`` (``REJOINDRE`` in
French) to the organization's number, and is enrolled on the channel they wrote from, with a
pseudonym and the usual consent flow; or, where the group requires it, waits for a
facilitator's ``/approve``.

Typed codes are 12 characters from an alphabet without look-alikes (about 59 bits), stored
only as a keyed hash, and used once. Each invite also has a private web link (:func:`link_token`,
160 bits: a link is clicked, never typed). Guessing is defeated by those bits and by a limit
per sender (a keyed hash of their number, kept an hour), never by a limit on everyone together:
such a lock would let anyone who floods wrong guesses keep every right person out. Wrong
guesses are still counted, per door and per hour with nothing about who made them
(:mod:`relay.groups.guesses`), for staff to see a surge. A wrong, expired, used or
rate-limited code gets exactly what any unknown sender gets: silence.

Codes made before 12 characters (10, about 49 bits) keep working until they expire, by text
and, for invites that have no link token, as a web link: no invite already given is stranded.
"""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlmodel import Session, col, select

from relay.core.handlers import display_name, named
from relay.core.outcome import Audit, Outcome, Reply, Service, Store
from relay.core.words import JOIN_WORD, CommandWord
from relay.delivery.outbox import ADDRESS_CONTEXT, UUID_CONTEXT, OutboxWriter
from relay.errors import CercleError
from relay.groups import guesses, policy, video
from relay.language.durations import describe
from relay.language.i18n import LANGS, Joined, Raw, Renderable, T
from relay.language.pseudonyms import assign, name_key
from relay.messages import Channel, Inbound, InboundKind
from relay.storage.crypto import DataKeys
from relay.storage.models import AuditEvent, Group, Invite, JoinAttempt, Member, MemberState, Role
from relay.storage.models import Inbound as InboundRow

log = logging.getLogger(__name__)

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud or copied by hand
CODE_LENGTH = 12
LEGACY_LENGTH = 10  # codes made before 12 characters; all expire within MAX_EXPIRY
LINK_BYTES = 20  # 160 bits in a web link's token
LINK_HASH_KIND = "invite-link-token"
DEFAULT_EXPIRY = timedelta(hours=48)
MAX_EXPIRY = timedelta(days=14)
ATTEMPT_WINDOW = timedelta(hours=1)
PER_SENDER = 5  # JOIN attempts per sender per hour (the arithmetic: docs/threat-model.md)
# How long a joining message's de-duplication record lasts (as in relay.inbound.identify).
DEDUP_TTL = timedelta(days=2)
_JOIN_LANG = {word.casefold(): lang for lang, word in JOIN_WORD.items()}


def new_code() -> str:
    """A fresh code from the unambiguous alphabet."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str | None:
    """The code a person typed (any case, spaces or dashes), or ``None`` if it cannot be one."""
    code = "".join(c for c in text.upper() if c not in " -_.")
    if len(code) not in (CODE_LENGTH, LEGACY_LENGTH) or any(c not in ALPHABET for c in code):
        return None
    return code


def code_hash(keys: DataKeys, code: str) -> str:
    """The keyed hash a code is stored and found by."""
    return keys.lookup_hash(code, "invite")


def link_token(keys: DataKeys, code: str) -> str:
    """The token of a code's private web link: 160 bits that only this key can make from the
    code, so whoever holds the typed code cannot build the link, and a guesser faces 2^160."""
    digest = keys.lookup_hash(code, "invite-link")
    return base64.urlsafe_b64encode(bytes.fromhex(digest)[:LINK_BYTES]).decode().rstrip("=")


def link_hash(keys: DataKeys, token: str) -> str:
    """The keyed hash a link's token is stored and found by."""
    return keys.lookup_hash(token, LINK_HASH_KIND)


def create(
    s: Session,
    keys: DataKeys,
    group: Group,
    now: datetime,
    *,
    expires: timedelta = DEFAULT_EXPIRY,
    role: Role = Role.MEMBER,
    lang: str | None = None,
    created_by: str = "admin",
) -> str:
    """Store a new invite for ``group`` and return its code (shown once, never stored)."""
    if not timedelta(minutes=5) <= expires <= MAX_EXPIRY:
        raise CercleError("An invite must last between 5 minutes and 14 days.")
    if lang is not None and lang not in LANGS:
        raise CercleError(f"Language must be one of: {', '.join(LANGS)}.")
    if group.closed_at is not None or group.id is None:
        raise CercleError("There is no open group with that name.")
    code = new_code()
    s.add(
        Invite(
            group_id=group.id,
            code_hash=code_hash(keys, code),
            link_hash=link_hash(keys, link_token(keys, code)),
            role=role,
            lang=lang,
            created_by=created_by,
            created_at=now,
            expires_at=now + expires,
        )
    )
    s.add(
        AuditEvent(
            group_id=group.id,
            at=now,
            actor=created_by,
            action="invite_create",
            detail=f"{int(expires.total_seconds())}s {role}",
        )
    )
    return code


def how_to_use(code: str, expires: timedelta, link: str | None = None) -> Renderable:
    """What a facilitator is told with a new code (and its private web link, if any)."""
    text = T(
        "Invite code: {code}. It admits one person and is valid for {duration}. Give it "
        "privately to someone you have vetted; they text JOIN {code} (or REJOINDRE {code} in "
        "French) to this number.",
        code=code,
        duration=describe(int(expires.total_seconds())),
    )
    if link is None:
        return text
    return Joined(
        (
            text,
            T(
                "Or, with no app and no phone number, they open this private link in a "
                "browser: {link}",
                link=Raw(link),
            ),
        ),
        " ",
    )


def parse_join(text: str | None) -> tuple[str, str] | None:
    """``JOIN code`` → (language of the word, the code as typed); anything else → ``None``."""
    if not text:
        return None
    head, _, rest = text.strip().partition(" ")
    lang = _JOIN_LANG.get(head.casefold())
    if lang is None or not rest.strip() or len(rest) > 40:
        return None
    return lang, rest.strip()


def _count(s: Session, key: str, now: datetime) -> int:
    """Count one attempt under ``key`` in its hourly window; return the count."""
    row = s.get(JoinAttempt, key)
    if row is None:
        row = JoinAttempt(key=key, window_start=now, count=0)
    elif now - row.window_start >= ATTEMPT_WINDOW:
        row.window_start, row.count = now, 0
    row.count += 1
    s.add(row)
    return row.count


def try_join(relay: Service, s: Session, ib: Inbound, dedup: str, now: datetime) -> str | None:
    """Handle a message from an unknown sender that may be ``JOIN <code>``.

    Returns ``None`` when it is not a JOIN at all (the caller drops it as usual),
    ``"unknown_sender"`` when it is refused for any reason (same silence), and ``"state"``
    once the sender is enrolled.
    """
    parsed = parse_join(ib.text) if ib.kind == InboundKind.MESSAGE else None
    if parsed is None:
        return None
    word_lang, typed = parsed
    who = ib.sender.uuid.lower() if ib.sender.uuid else ib.sender.address
    if not who:
        return "unknown_sender"
    # The limit is this sender's own: someone else's guesses never shut them out.
    sender_key = relay.keys.lookup_hash(f"{ib.channel}:{who}", "join")
    if _count(s, sender_key, now) > PER_SENDER:
        guesses.count(s, ib.channel, now)
        log.info("join attempt refused: rate limited")
        return "unknown_sender"
    found = find_usable(relay, s, typed, ib.channel, now)
    if found is None:
        return "unknown_sender"
    invite, group = found
    if not claim(s, invite, now):
        return "unknown_sender"
    _enroll(
        relay,
        s,
        Arrival(ib.channel, ib.sender.address, ib.sender.uuid, dedup, ib.ref),
        now,
        invite,
        group,
        invite.lang or word_lang,
    )
    log.info("joined with an invite code on %s", ib.channel)
    return "state"


def find_usable(
    relay: Service, s: Session, typed: str, channel: str, now: datetime
) -> tuple[Invite, Group] | None:
    """The invite a typed code names and its group, when it can still admit someone on
    ``channel``. A failure is counted (for the health check only) and logged without the code.
    """
    code = normalize_code(typed)
    # During a key rotation a code made before it is stored under the previous key's hash.
    invite = (
        s.exec(
            select(Invite).where(
                col(Invite.code_hash).in_(relay.keys.lookup_hashes(code, "invite"))
            )
        ).first()
        if code
        else None
    )
    return _checked(s, invite, channel, now)


def find_by_link(
    relay: Service, s: Session, token: str, channel: str, now: datetime
) -> tuple[Invite, Group] | None:
    """The invite a private web link names and its group, when it can still admit someone.

    A link carries :func:`link_token`. An invite made before links had their own token has
    none, and its link carries the typed code: that still works until the invite expires.
    """
    if len(token) > 64:
        invite = None
    elif (legacy := normalize_code(token)) is not None and len(legacy) == LEGACY_LENGTH:
        invite = s.exec(
            select(Invite).where(
                col(Invite.code_hash).in_(relay.keys.lookup_hashes(legacy, "invite")),
                col(Invite.link_hash).is_(None),
            )
        ).first()
    else:
        # During a key rotation a link made before it is stored under the previous key's hash.
        hashes = relay.keys.lookup_hashes(token, LINK_HASH_KIND)
        invite = s.exec(select(Invite).where(col(Invite.link_hash).in_(hashes))).first()
    return _checked(s, invite, channel, now)


def _checked(
    s: Session, invite: Invite | None, channel: str, now: datetime
) -> tuple[Invite, Group] | None:
    group = s.get(Group, invite.group_id) if invite is not None else None
    usable = (
        invite is not None
        and invite.used_at is None
        and invite.expires_at > now
        and group is not None
        and group.closed_at is None
        and (channel != Channel.SMS or group.allow_sms)
    )
    if not usable or invite is None or group is None:
        guesses.count(s, channel, now)
        log.info("join attempt refused: no usable code")
        return None
    return invite, group


def claim(s: Session, invite: Invite, now: datetime) -> bool:
    """Mark the invite used; ``False`` if someone else used it first."""
    # Used once: the compare-and-set makes two racing messages with one code admit one.
    claimed: CursorResult[tuple[()]] = s.execute(  # type: ignore[assignment]
        update(Invite)
        .where(col(Invite.id) == invite.id, col(Invite.used_at).is_(None))
        .values(used_at=now)
    )
    return claimed.rowcount == 1


@dataclass(frozen=True)
class Arrival:
    """Who is joining, as their door knows them: a channel, an address (a number, or a web
    seat's opaque id), a Signal UUID, and the de-duplication hash and ref of their message."""

    channel: str
    address: str | None
    uuid: str | None = None
    dedup: str | None = None
    ref: str | None = None

    def __repr__(self) -> str:  # never print identifiers by accident
        return f"Arrival({self.channel})"


def _enroll(
    relay: Service,
    s: Session,
    who: Arrival,
    now: datetime,
    invite: Invite,
    group: Group,
    lang: str,
    *,
    agreed: bool = False,
) -> Member:
    """Enroll someone who came with a code. ``agreed``: they already read the welcome and
    agreed where they joined (the web page), so they are in at once unless approval is due."""
    keys = relay.keys
    address, uuid = who.address, who.uuid
    group_policy = policy.policy_of(s, group.id)
    waits = group_policy is not None and group_policy.require_approval
    taken = {m.name_key for m in relay.members_of(s, group) if m.name_key}
    pseudonym = assign(taken)
    assert group.id is not None  # noqa: S101 - a stored group has an id
    member = Member(
        group_id=group.id,
        channel=who.channel,
        address_enc=keys.encrypt_text(address, ADDRESS_CONTEXT) if address else None,
        address_hash=relay.address_hash(address) if address else None,
        uuid_enc=keys.encrypt_text(uuid.lower(), UUID_CONTEXT) if uuid else None,
        uuid_hash=relay.uuid_hash(uuid) if uuid else None,
        pseudonym=pseudonym,
        name_key=name_key(pseudonym),
        role=invite.role,
        lang=lang,
        state=MemberState.PENDING if waits else MemberState.INVITED,
        created_at=now,
    )
    if agreed and not waits:
        member.state = MemberState.ACTIVE
        member.consent_version = relay.texts.consent_version(lang, False, web=True)
        member.consented_at = now
    s.add(member)
    s.flush()
    writer = OutboxWriter(s, keys, now)
    # The timer first, as for any enrollment: nothing reaches a Signal phone before it.
    writer.timer(member, group.timer_seconds)
    member.timer_seconds = group.timer_seconds
    name = display_name(member)
    staff = [
        m
        for m in relay.members_of(s, group)
        if m.state == MemberState.ACTIVE and Role(m.role).is_staff
    ]
    if waits:
        writer.fan_out(
            [member],
            T(
                "Thank you. A facilitator will confirm your place soon; Cercle will write to "
                "you then."
            ),
        )
        writer.fan_out(
            staff,
            T(
                "{name} used an invite code and is waiting for your approval. Send {approve} "
                "{name} to let them in, or {reject} {name} to turn them away.",
                name=name,
                approve=CommandWord("approve"),
                reject=CommandWord("reject"),
            ),
        )
    elif agreed:
        _welcome_in(relay, writer, group, member)
    else:
        relay.send_consent(writer, group, member)
        writer.fan_out(
            staff,
            T(
                "{name} used an invite code and has received the welcome; they join once they "
                "agree.",
                name=name,
            ),
        )
    if who.dedup is not None:
        s.add(
            InboundRow(
                dedup_hash=who.dedup,
                member_id=member.id,
                group_id=group.id,
                author_ref=who.ref,
                received_at=now,
                expires_at=now + DEDUP_TTL,
            )
        )
    s.add(
        AuditEvent(
            group_id=group.id,
            at=now,
            actor=invite.created_by,
            action="invite_used",
            target=pseudonym,
            detail="pending" if waits else None,
        )
    )
    return member


def _welcome_in(relay: Service, writer: OutboxWriter, group: Group, member: Member) -> None:
    """Someone who agreed where they joined: the welcome line to them, the news to the group."""
    writer.fan_out(
        [member],
        T(
            "Thank you. You are now in the group as {name}. Send {help} to see what you can do.",
            name=display_name(member),
            help=Raw("/" + named("help").words[member.lang]),
        ),
    )
    others = [
        m
        for m in relay.members_of(writer.session, group)
        if m.state == MemberState.ACTIVE and m.id != member.id
    ]
    writer.fan_out(others, T("{name} has joined the group.", name=display_name(member)))
    video.send_if_live(writer.session, writer, group, member)  # a session running now


def admit(st: Store, member: Member) -> Outcome:
    """A facilitator approved a newcomer who came with a code: send them the welcome."""
    member.state = MemberState.INVITED
    st.s.add(member)
    st.relay.send_consent(st.writer, st.group, member)
    return Outcome.of(
        Reply(
            T(
                "{name} is admitted and has received the welcome; they join once they agree.",
                name=display_name(member),
            )
        ),
        Audit("approve_join", target=member.pseudonym),
    )


def live_invites(s: Session, group_id: int, now: datetime) -> list[Invite]:
    """Codes of a group that can still be used (their hashes only)."""
    return list(
        s.exec(
            select(Invite).where(
                col(Invite.group_id) == group_id,
                col(Invite.used_at).is_(None),
                col(Invite.expires_at) > now,
            )
        ).all()
    )
