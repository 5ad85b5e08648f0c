"""import jobs (bulk import checkpoints)

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import siyu.store.base


revision: str = '0005'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def _enum(*values: str, name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=16)


def upgrade() -> None:
    op.create_table('import_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', _enum('events', 'people', 'orders', name='importkind'), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('file_size', sa.BigInteger(), nullable=False),
    sa.Column('file_mtime_ns', sa.BigInteger(), nullable=False),
    sa.Column('head_sha256', sa.String(length=64), nullable=False),
    sa.Column('format', _enum('csv', 'jsonl', 'parquet', name='importformat'), nullable=False),
    sa.Column('mapping', JSON, nullable=False),
    sa.Column('batch_size', sa.Integer(), nullable=False),
    sa.Column('status', _enum('running', 'done', 'failed', name='jobstatus'), nullable=False),
    sa.Column('batches_done', sa.Integer(), nullable=False),
    sa.Column('rows_read', sa.BigInteger(), nullable=False),
    sa.Column('accepted', sa.BigInteger(), nullable=False),
    sa.Column('duplicates', sa.BigInteger(), nullable=False),
    sa.Column('rejected', sa.BigInteger(), nullable=False),
    sa.Column('rejected_by_reason', JSON, nullable=False),
    sa.Column('report_path', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', siyu.store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', siyu.store.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_job'))
    )
    op.create_index(op.f('ix_import_job_head_sha256'), 'import_job', ['head_sha256'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_import_job_head_sha256'), table_name='import_job')
    op.drop_table('import_job')
