"""tags: definitions (versioned), assignments, refresh runs

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-23 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import siyu.store.base

revision: str = "0006"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = siyu.store.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tag_definition",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("value_type", sa.String(length=16), nullable=False),
        sa.Column("cadence", sa.String(length=16), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("refreshed_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_tag_definition")),
    )
    op.create_index(op.f("ix_tag_definition_status"), "tag_definition", ["status"])
    op.create_index(op.f("ix_tag_definition_category"), "tag_definition", ["category"])
    op.create_table(
        "tag_definition_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("changed_by", sa.String(length=128), nullable=False),
        sa.Column("changed_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_definition_version")),
        sa.UniqueConstraint("key", "version", name=op.f("uq_tag_definition_version_key_version")),
    )
    op.create_table(
        "tag_assignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=32), nullable=False),
        sa.Column("tag_key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("assigned_by", sa.String(length=128), nullable=False),
        sa.Column("assigned_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_assignment")),
        sa.UniqueConstraint("person_id", "tag_key", name=op.f("uq_tag_assignment_person_id_tag_key")),
    )
    op.create_index("ix_tag_assignment_tag_key", "tag_assignment", ["tag_key"])
    op.create_table(
        "tag_refresh",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("as_of", WHEN, nullable=False),
        sa.Column("watermark", WHEN, nullable=True),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("finished_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_refresh")),
    )


def downgrade() -> None:
    op.drop_table("tag_refresh")
    op.drop_index("ix_tag_assignment_tag_key", table_name="tag_assignment")
    op.drop_table("tag_assignment")
    op.drop_table("tag_definition_version")
    op.drop_index(op.f("ix_tag_definition_category"), table_name="tag_definition")
    op.drop_index(op.f("ix_tag_definition_status"), table_name="tag_definition")
    op.drop_table("tag_definition")
