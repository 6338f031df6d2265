"""Deny list, key ids beside de-duplication hashes, and indexes for retention.

``ban`` holds a keyed hash of each banned number (and a sealed copy, only so that a key
rotation can rebuild the hash). ``inbound.dedup_key_id`` says which data key made a row's
de-duplication hash; rows from before this revision have none and are treated as old by
``cercle keys rotate``. The outbox indexes let the retention jobs find the rows that still
use a body or point at an inbound message, and a group's old rows, without scanning the table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 08:45:58.458693
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql import sqltypes

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ban",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_hash", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("address_enc", sa.LargeBinary(), nullable=True),
        sa.Column("reason", sqltypes.AutoString(length=16), nullable=False, server_default="other"),
        sa.Column("created_at", sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address_hash"),
    )
    with op.batch_alter_table("inbound", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dedup_key_id", sqltypes.AutoString(length=8), nullable=True))

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_body", ["body_id"], unique=False)
        batch_op.create_index("ix_outbox_target", ["target_inbound_id"], unique=False)
        batch_op.create_index(
            "ix_outbox_group_created", ["group_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_group_created")
        batch_op.drop_index("ix_outbox_target")
        batch_op.drop_index("ix_outbox_body")

    with op.batch_alter_table("inbound", schema=None) as batch_op:
        batch_op.drop_column("dedup_key_id")

    op.drop_table("ban")
