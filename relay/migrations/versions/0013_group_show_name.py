"""a group may show its name on web members' chat page (off by default)

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('group', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('show_name', sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table('group', schema=None) as batch_op:
        batch_op.drop_column('show_name')
