"""Staff accounts: people who use the console, separate from group members.

An account has no password. ``cercle staff add`` (or ``link``, for recovery) makes a one-time
setup link valid 24 hours; only a keyed hash of its token is stored. Registering a passkey
through the link uses it up, replaces the account's earlier passkeys (a lost or stolen device
stops working) and ends its sessions.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from relay.core.actor import current_actor
from relay.errors import CercleError
from relay.language.i18n import LANGS
from relay.storage.crypto import DataKeys
from relay.storage.engine import transaction
from relay.storage.models import (
    AuditEvent,
    Group,
    StaffAccount,
    StaffCredential,
    StaffGroup,
    StaffRole,
    StaffSession,
)

SETUP_VALID = timedelta(hours=24)
SETUP_KIND = "staff-setup"
SETUP_PATH = "/staff/setup/"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")


def actor_name(account: StaffAccount) -> str:
    """How the audit trail names a staff member (never confused with a pseudonym)."""
    return f"staff:{account.name}"


def _audit(s: Session, now: datetime, actor: str, action: str, target: str) -> None:
    s.add(AuditEvent(at=now, actor=actor, action=action, target=target))


def _new_token(s: Session, keys: DataKeys, account: StaffAccount, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    account.setup_hash = keys.lookup_hash(token, SETUP_KIND)
    account.setup_expires_at = now + SETUP_VALID
    s.add(account)
    return token


def named(s: Session, name: str) -> StaffAccount:
    """The account called ``name``, or a clear error."""
    account = s.exec(select(StaffAccount).where(StaffAccount.name == name)).first()
    if account is None:
        raise CercleError("There is no staff account with that name.")
    return account


def create(
    s: Session, keys: DataKeys, now: datetime, name: str, role: StaffRole, lang: str = "fr"
) -> tuple[StaffAccount, str]:
    """Create an account inside ``s``; return it and the token of its setup link."""
    if not _NAME.fullmatch(name):
        raise CercleError(
            "A staff name is 1 to 32 lower-case letters, digits, dots, dashes or underscores."
        )
    if lang not in LANGS:
        raise CercleError(f"Language must be one of: {', '.join(LANGS)}.")
    if s.exec(select(StaffAccount).where(StaffAccount.name == name)).first():
        raise CercleError("A staff account with that name already exists.")
    account = StaffAccount(name=name, role=role, lang=lang, created_at=now)
    token = _new_token(s, keys, account, now)
    _audit(s, now, current_actor(), "staff_add", name)
    return account, token


def add(
    engine: Engine, keys: DataKeys, now: datetime, name: str, role: StaffRole, lang: str = "fr"
) -> str:
    """Create an account; return the token of its setup link (shown once)."""
    with transaction(engine) as s:
        return create(s, keys, now, name, role, lang)[1]


def new_link(engine: Engine, keys: DataKeys, now: datetime, name: str) -> str:
    """A fresh setup link for an account (a lost passkey); earlier links stop working."""
    with transaction(engine) as s:
        token = _new_token(s, keys, named(s, name), now)
        _audit(s, now, current_actor(), "staff_link", name)
        return token


def remove(engine: Engine, now: datetime, name: str) -> None:
    """Delete an account, its passkeys and its sessions."""
    with transaction(engine) as s:
        account = named(s, name)
        s.execute(delete(StaffSession).where(col(StaffSession.staff_id) == account.id))
        s.execute(delete(StaffCredential).where(col(StaffCredential.staff_id) == account.id))
        s.execute(delete(StaffGroup).where(col(StaffGroup.staff_id) == account.id))
        s.delete(account)
        _audit(s, now, current_actor(), "staff_remove", name)


@dataclass(frozen=True)
class AccountRow:
    """What ``cercle staff list`` shows of an account."""

    name: str
    role: str
    lang: str
    passkeys: int
    setup_link_live: bool
    groups: list[str]  # a facilitator's groups; an admin sees every group and has none here


def listing(engine: Engine, now: datetime) -> list[AccountRow]:
    """Every account, with how many passkeys it has and whether a setup link is live."""
    with Session(engine) as s:
        accounts = s.exec(select(StaffAccount).order_by(col(StaffAccount.name))).all()
        creds = s.exec(select(StaffCredential.staff_id)).all()
        links = s.exec(
            select(StaffGroup.staff_id, Group.name)
            .join(Group, col(Group.id) == col(StaffGroup.group_id))
            .order_by(col(Group.name))
        ).all()
        return [
            AccountRow(
                a.name,
                a.role,
                a.lang,
                sum(1 for c in creds if c == a.id),
                a.setup_expires_at is not None and a.setup_expires_at > now,
                [g for staff_id, g in links if staff_id == a.id],
            )
            for a in accounts
        ]


def by_setup_token(s: Session, keys: DataKeys, token: str, now: datetime) -> StaffAccount | None:
    """The account whose live setup link carries ``token``; ``None`` if unknown, used or
    expired (all three look the same to the person holding it)."""
    if not token or len(token) > 100:
        return None
    account = s.exec(
        select(StaffAccount).where(
            col(StaffAccount.setup_hash).in_(keys.lookup_hashes(token, SETUP_KIND))
        )
    ).first()
    if account is None or account.setup_expires_at is None or account.setup_expires_at <= now:
        return None
    return account


def finish_setup(
    s: Session,
    account: StaffAccount,
    credential_id: str,
    public_key: str,
    sign_count: int,
    now: datetime,
) -> None:
    """Store the passkey registered through the setup link, and use the link up."""
    assert account.id is not None  # noqa: S101 - a stored account has an id
    s.execute(delete(StaffSession).where(col(StaffSession.staff_id) == account.id))
    s.execute(delete(StaffCredential).where(col(StaffCredential.staff_id) == account.id))
    s.add(
        StaffCredential(
            staff_id=account.id,
            credential_id=credential_id,
            public_key=public_key,
            sign_count=sign_count,
            created_at=now,
        )
    )
    account.setup_hash = account.setup_expires_at = None
    s.add(account)
    _audit(s, now, actor_name(account), "staff_passkey", account.name)
