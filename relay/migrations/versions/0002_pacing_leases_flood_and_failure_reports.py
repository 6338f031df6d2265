"""Shared channel pacing, singleton leases, flood counters and failure-report windows.

New tables only; no data moves. Nothing here holds content or identifiers in clear.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 08:13:52.690993
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql import sqltypes

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "channel_pace",
        sa.Column("channel", sqltypes.AutoString(length=16), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refilled_at", sqltypes.UTCDateTime(), nullable=False),
        sa.Column("blocked_until", sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("channel"),
    )
    op.create_table(
        "singleton_lease",
        sa.Column("name", sqltypes.AutoString(length=80), nullable=False),
        sa.Column("owner", sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "failure_report",
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("reason", sqltypes.AutoString(length=32), nullable=False),
        sa.Column("last_at", sqltypes.UTCDateTime(), nullable=False),
        sa.Column("suppressed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("recipient_id", "reason"),
    )
    op.create_table(
        "flood_window",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("window_start", sqltypes.UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("notified", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("member_id"),
    )


def downgrade() -> None:
    op.drop_table("flood_window")
    op.drop_table("failure_report")
    op.drop_table("singleton_lease")
    op.drop_table("channel_pace")
