"""collect: sources and dead letters

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import siyu.store.base


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('source',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('write_key_hash', sa.String(length=64), nullable=False),
    sa.Column('key_prefix', sa.String(length=8), nullable=False),
    sa.Column('user_id_type', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', siyu.store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('rotated_at', siyu.store.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', siyu.store.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_source')),
    sa.UniqueConstraint('write_key_hash', name=op.f('uq_source_write_key_hash'))
    )
    op.create_table('dead_letter',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('source_id', sa.String(length=40), nullable=True),
    sa.Column('received_at', siyu.store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('payload_truncated', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('field', sa.String(length=200), nullable=True),
    sa.Column('replayed_at', siyu.store.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['source_id'], ['source.id'], name=op.f('fk_dead_letter_source_id_source'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letter'))
    )
    with op.batch_alter_table('dead_letter', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dead_letter_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_dead_letter_source_id'), ['source_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dead_letter', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dead_letter_source_id'))
        batch_op.drop_index(batch_op.f('ix_dead_letter_received_at'))
    op.drop_table('dead_letter')
    op.drop_table('source')
