"""held messages point at their inbound message, so a released one is linked to its copies

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 05:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("held_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inbound_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_held_message_inbound_id_inbound", "inbound", ["inbound_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("held_message", schema=None) as batch_op:
        batch_op.drop_constraint("fk_held_message_inbound_id_inbound", type_="foreignkey")
        batch_op.drop_column("inbound_id")
