"""Tag definitions (versioned), assigned values and refresh runs in the operational store.

Computed values live in the event store next to the events they come from: ``tag_values``
(one row per person, one column per tag), ``tag_history`` (person, tag, old, new, when) and
``tag_stats``. A million people × 200 tags is an analytic table, not an OLTP one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.store.base import Base


class TagDefinitionRow(Base):
    """The current version of a tag definition (the whole definition as JSON)."""

    __tablename__ = "tag_definition"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    builtin: Mapped[bool] = mapped_column(default=False)
    category: Mapped[str] = mapped_column(String(16), index=True)
    value_type: Mapped[str] = mapped_column(String(16))
    cadence: Mapped[str] = mapped_column(String(16))
    name_zh: Mapped[str] = mapped_column(String(100))
    definition: Mapped[dict[str, Any]]
    refreshed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TagDefinitionVersion(Base):
    """Every version a definition has had, with who changed it and how."""

    __tablename__ = "tag_definition_version"
    __table_args__ = (UniqueConstraint("key", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    change: Mapped[str] = mapped_column(String(16))  # create, update, retire, restore
    definition: Mapped[dict[str, Any]]
    changed_by: Mapped[str] = mapped_column(String(128), default="system")
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class TagAssignment(Base):
    """A value given to a person by hand or by an import, for ``manual``/``import`` tags."""

    __tablename__ = "tag_assignment"
    __table_args__ = (
        UniqueConstraint("person_id", "tag_key"),
        Index("ix_tag_assignment_tag_key", "tag_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[str] = mapped_column(String(32))
    tag_key: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="manual")
    assigned_by: Mapped[str] = mapped_column(String(128), default="system")
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)


class TagRefresh(Base):
    """One refresh run: what it computed, for how many people, and how it ended."""

    __tablename__ = "tag_refresh"

    id: Mapped[int] = mapped_column(primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))  # full, incremental
    status: Mapped[str] = mapped_column(String(16), default="running")
    as_of: Mapped[datetime]
    watermark: Mapped[datetime | None] = mapped_column(default=None)
    tags: Mapped[list[str]]
    people: Mapped[int] = mapped_column(default=0)
    changes: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class TagRefreshRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    mode: str
    status: str
    as_of: datetime
    tags: list[str]
    people: int
    changes: int
    error: str | None
    started_at: datetime
    finished_at: datetime | None
