"""Saved segments (dynamic: a rule; static: an uploaded list) and their evaluations.

Members and their entered/exited changes live in the event store (``segment_members``,
``segment_changes``, ``segment_static_members``): a segment of a million people is an analytic
table. The operational store keeps the definitions and a log of evaluations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.store.base import Base
from siyu.tags.definitions import KEY_PATTERN


class Segment(Base):
    __tablename__ = "segment"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16))  # dynamic, static
    rule: Mapped[dict[str, Any] | None] = mapped_column(default=None)  # the JSON form
    rule_text: Mapped[str | None] = mapped_column(Text, default=None)
    schedule: Mapped[str] = mapped_column(String(16), default="daily")  # manual, daily, hourly
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    version: Mapped[int] = mapped_column(default=1)
    members: Mapped[int | None] = mapped_column(default=None)
    evaluated_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SegmentEvaluation(Base):
    """One evaluation: how many members, who entered and who left."""

    __tablename__ = "segment_evaluation"

    id: Mapped[int] = mapped_column(primary_key=True)
    segment_key: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int]
    members: Mapped[int] = mapped_column(default=0)
    entered: Mapped[int] = mapped_column(default=0)
    exited: Mapped[int] = mapped_column(default=0)
    evaluated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SegmentCreate(BaseModel):
    """A new segment: a rule (text or JSON) for a dynamic one, nothing for a static one."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    kind: Literal["dynamic", "static"] = "dynamic"
    rule_text: str | None = Field(default=None, max_length=20_000)
    rule: dict[str, Any] | None = None
    schedule: Literal["manual", "daily", "hourly"] = "daily"

    @model_validator(mode="after")
    def _rule_for_dynamic(self) -> SegmentCreate:
        has_rule = self.rule_text is not None or self.rule is not None
        if self.kind == "dynamic" and not has_rule:
            raise ValueError("a dynamic segment needs rule_text or rule")
        if self.kind == "static" and has_rule:
            raise ValueError("a static segment has members, not a rule")
        if self.rule_text is not None and self.rule is not None:
            raise ValueError("give rule_text or rule, not both")
        return self


class SegmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    name: str
    description: str
    kind: str
    rule: dict[str, Any] | None
    rule_text: str | None
    schedule: str
    status: str
    version: int
    members: int | None
    evaluated_at: datetime | None
    updated_at: datetime


class EvaluationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    segment_key: str
    version: int
    members: int
    entered: int
    exited: int
    evaluated_at: datetime
