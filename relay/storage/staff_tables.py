"""The staff console's tables: accounts, the groups a facilitator sees, passkeys, sessions.

Nothing here holds a member's identifier; a staff account is not a group member.
:mod:`relay.storage.models` names these tables too, with every other table.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel


class StaffRole(StrEnum):
    """What a staff account may do in the console."""

    ADMIN = "admin"  # everything, including enrolment, bans and revealing a number
    FACILITATOR = "facilitator"  # groups, members (masked), invites and the audit trail


class StaffAccount(SQLModel, table=True):
    """A person who runs groups from the staff console; not a group member. No password:
    a passkey, registered from a one-time setup link of which only a keyed hash is kept."""

    __tablename__ = "staff_account"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=32, unique=True)
    role: str = Field(default=StaffRole.FACILITATOR, max_length=16)
    lang: str = Field(default="fr", max_length=8)
    created_at: datetime
    setup_hash: str | None = Field(default=None, max_length=64, unique=True)
    setup_expires_at: datetime | None = None


class StaffGroup(SQLModel, table=True):
    """A group a facilitator account may see and act on in the console. Admins see every
    group and have no rows here; a facilitator with no rows sees no group at all."""

    __tablename__ = "staff_group"

    staff_id: int = Field(foreign_key="staff_account.id", primary_key=True)
    group_id: int = Field(foreign_key="group.id", primary_key=True, index=True)


class StaffCredential(SQLModel, table=True):
    """A passkey's public key (nothing secret is stored for it)."""

    __tablename__ = "staff_credential"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff_account.id", index=True)
    credential_id: str = Field(max_length=1400, unique=True)  # base64url, as browsers send it
    public_key: str = Field(max_length=2048)  # base64url COSE key: public, so not sealed
    sign_count: int = Field(default=0)
    created_at: datetime
    last_used_at: datetime | None = None


class StaffSession(SQLModel, table=True):
    """A browser's session with the console, kept server-side so that signing out and the
    idle timeout end it for real. Found by a hash of the cookie's token; ``staff_id`` is
    empty until the passkey is verified (the session then gets a new token)."""

    __tablename__ = "staff_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    staff_id: int | None = Field(default=None, foreign_key="staff_account.id", index=True)
    csrf: str = Field(max_length=64)
    lang: str = Field(default="fr", max_length=8)
    challenge: str | None = Field(default=None, max_length=128)  # pending ceremony, base64url
    created_at: datetime
    seen_at: datetime = Field(index=True)
