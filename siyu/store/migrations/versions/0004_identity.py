"""identity: people, identifiers, merge log

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-23 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import siyu.store.base

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "person",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", siyu.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("merged_into", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["merged_into"], ["person.id"], name=op.f("fk_person_merged_into_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
    )
    op.create_index(op.f("ix_person_merged_into"), "person", ["merged_into"], unique=False)
    op.create_table(
        "identifier",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("masked", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=32), nullable=False),
        sa.Column("first_seen", siyu.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_seen", siyu.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_identifier_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identifier")),
        sa.UniqueConstraint("type", "key_hash", name=op.f("uq_identifier_type_key_hash")),
    )
    op.create_index(op.f("ix_identifier_person_id"), "identifier", ["person_id"], unique=False)
    op.create_table(
        "merge_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=32), nullable=False),
        sa.Column("merged_id", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("created_at", siyu.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("undone_at", siyu.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["merged_id"], ["person.id"], name=op.f("fk_merge_log_merged_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_merge_log_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merge_log")),
    )
    op.create_index("ix_merge_log_merged_id", "merge_log", ["merged_id"], unique=False)
    op.create_index(op.f("ix_merge_log_person_id"), "merge_log", ["person_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_merge_log_person_id"), table_name="merge_log")
    op.drop_index("ix_merge_log_merged_id", table_name="merge_log")
    op.drop_table("merge_log")
    op.drop_index(op.f("ix_identifier_person_id"), table_name="identifier")
    op.drop_table("identifier")
    op.drop_index(op.f("ix_person_merged_into"), table_name="person")
    op.drop_table("person")
