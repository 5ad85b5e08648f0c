"""webhook endpoints

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-24 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import siyu.store.base


revision: str = '0003'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('webhook_endpoint',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('corp_id', sa.String(length=64), nullable=True),
    sa.Column('token', sa.Text(), nullable=True),
    sa.Column('encoding_aes_key', sa.Text(), nullable=True),
    sa.Column('secret', sa.Text(), nullable=True),
    sa.Column('field_mapping', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', siyu.store.base.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('wecom', 'order')", name=op.f('ck_webhook_endpoint_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoint')),
    sa.UniqueConstraint('name', name=op.f('uq_webhook_endpoint_name'))
    )


def downgrade() -> None:
    op.drop_table('webhook_endpoint')
