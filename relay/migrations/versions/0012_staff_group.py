"""staff scoping: the groups a facilitator account may see in the console

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 04:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_group",
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["group.id"]),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_account.id"]),
        sa.PrimaryKeyConstraint("staff_id", "group_id"),
    )
    with op.batch_alter_table("staff_group", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_group_group_id"), ["group_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_group", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_group_group_id"))
    op.drop_table("staff_group")
