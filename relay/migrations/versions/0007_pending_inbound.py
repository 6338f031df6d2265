"""pending inbound webhooks, kept until the worker has handed them to the core; media links
for outbound MMS

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-30 02:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_inbound",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("dedup_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("payload_enc", sa.LargeBinary(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedup_hash"),
    )
    op.create_index(
        op.f("ix_pending_inbound_next_attempt_at"),
        "pending_inbound",
        ["next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "media_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("payload_enc", sa.LargeBinary(), nullable=True),
        sa.Column("message_ref", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index(op.f("ix_media_link_expires_at"), "media_link", ["expires_at"], unique=False)
    op.create_index(op.f("ix_media_link_message_ref"), "media_link", ["message_ref"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_media_link_message_ref"), table_name="media_link")
    op.drop_index(op.f("ix_media_link_expires_at"), table_name="media_link")
    op.drop_table("media_link")
    op.drop_index(op.f("ix_pending_inbound_next_attempt_at"), table_name="pending_inbound")
    op.drop_table("pending_inbound")
