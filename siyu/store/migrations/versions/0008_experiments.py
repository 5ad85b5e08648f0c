"""experiments: definitions (exposures are events)

Revision ID: 0008
Revises: 0001
Create Date: 2026-11-23 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import siyu.store.base

revision: str = "0008"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = siyu.store.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "experiment",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("hypothesis", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("variants", JSON, nullable=False),
        sa.Column("target_segment", sa.String(length=64), nullable=True),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start_at", WHEN, nullable=True),
        sa.Column("end_at", WHEN, nullable=True),
        sa.Column("primary_metric", JSON, nullable=False),
        sa.Column("secondary_metrics", JSON, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_experiment")),
    )
    op.create_index(op.f("ix_experiment_kind"), "experiment", ["kind"])
    op.create_index(op.f("ix_experiment_status"), "experiment", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_experiment_status"), table_name="experiment")
    op.drop_index(op.f("ix_experiment_kind"), table_name="experiment")
    op.drop_table("experiment")
