"""pacing per recipient, grouped join notices

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recipient_pace",
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("due", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("recipient_id"),
    )
    op.create_index(op.f("ix_recipient_pace_due"), "recipient_pace", ["due"], unique=False)
    op.create_table(
        "pending_join",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("member_id"),
    )
    op.create_index(op.f("ix_pending_join_group_id"), "pending_join", ["group_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_pending_join_group_id"), table_name="pending_join")
    op.drop_table("pending_join")
    op.drop_index(op.f("ix_recipient_pace_due"), table_name="recipient_pace")
    op.drop_table("recipient_pace")
