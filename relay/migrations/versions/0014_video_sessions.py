"""video sessions: a group's choice, the running session's room (sealed) and its links

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('group', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('video', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table('group_policy', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('video_for', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
    op.create_table('video_room',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('url_enc', sa.LargeBinary(), nullable=False),
    sa.Column('starts_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('ends_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['group.id'], ),
    sa.PrimaryKeyConstraint('group_id')
    )
    with op.batch_alter_table('video_room', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_video_room_ends_at'), ['ends_at'], unique=False)
    op.create_table('video_link',
    sa.Column('body_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('body_id')
    )
    with op.batch_alter_table('video_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_video_link_group_id'), ['group_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('video_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_video_link_group_id'))
    op.drop_table('video_link')
    with op.batch_alter_table('video_room', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_video_room_ends_at'))
    op.drop_table('video_room')
    with op.batch_alter_table('group_policy', schema=None) as batch_op:
        batch_op.drop_column('video_for')
    with op.batch_alter_table('group', schema=None) as batch_op:
        batch_op.drop_column('video')
