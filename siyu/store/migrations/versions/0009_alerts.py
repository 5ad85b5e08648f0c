"""alerts: anomaly alert rules and the alerts they raised

Revision ID: 0009
Revises: 0001
Create Date: 2026-11-23 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import siyu.store.base

revision: str = "0009"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = siyu.store.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("sensitivity", sa.Double(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("targets", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rule")),
    )
    op.create_index(op.f("ix_alert_rule_metric"), "alert_rule", ["metric"])
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("expected", sa.Double(), nullable=False),
        sa.Column("change", sa.Double(), nullable=True),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("deliveries", JSON, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("acknowledged_at", WHEN, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
        sa.UniqueConstraint("rule_id", "day", name=op.f("uq_alert_rule_id_day")),
    )
    op.create_index(op.f("ix_alert_rule_id"), "alert", ["rule_id"])
    op.create_index(op.f("ix_alert_status"), "alert", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_alert_status"), table_name="alert")
    op.drop_index(op.f("ix_alert_rule_id"), table_name="alert")
    op.drop_table("alert")
    op.drop_index(op.f("ix_alert_rule_metric"), table_name="alert_rule")
    op.drop_table("alert_rule")
