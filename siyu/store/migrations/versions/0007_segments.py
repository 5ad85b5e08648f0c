"""segments: saved rules and lists, evaluations

Revision ID: 0007
Revises: 0001
Create Date: 2026-11-23 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import siyu.store.base

revision: str = "0007"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = siyu.store.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "segment",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rule", JSON, nullable=True),
        sa.Column("rule_text", sa.Text(), nullable=True),
        sa.Column("schedule", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=True),
        sa.Column("evaluated_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_segment")),
    )
    op.create_index(op.f("ix_segment_status"), "segment", ["status"])
    op.create_table(
        "segment_evaluation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("segment_key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("entered", sa.Integer(), nullable=False),
        sa.Column("exited", sa.Integer(), nullable=False),
        sa.Column("evaluated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_evaluation")),
    )
    op.create_index(
        op.f("ix_segment_evaluation_segment_key"), "segment_evaluation", ["segment_key"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_segment_evaluation_segment_key"), table_name="segment_evaluation")
    op.drop_table("segment_evaluation")
    op.drop_index(op.f("ix_segment_status"), table_name="segment")
    op.drop_table("segment")
