"""People (OneIDs), their identifiers and the merge log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.store.base import Base


class Person(Base):
    """A OneID. A merged person points at the person it was merged into."""

    __tablename__ = "person"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    merged_into: Mapped[str | None] = mapped_column(
        ForeignKey("person.id"), default=None, index=True
    )


class Identifier(Base):
    """One normalised identifier of a person.

    The value itself is not stored here: ``key_hash`` is a keyed hash (a blind index) for
    lookups, ``masked`` is what people may see (138****5678). The raw values stay in the
    event store, where they arrived.
    """

    __tablename__ = "identifier"
    __table_args__ = (UniqueConstraint("type", "key_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(48))
    key_hash: Mapped[str] = mapped_column(String(64))
    masked: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    first_seen: Mapped[datetime | None] = mapped_column(default=None)
    last_seen: Mapped[datetime | None] = mapped_column(default=None)


class MergeLog(Base):
    """``merged_id`` joined ``person_id`` by ``rule`` on ``evidence``; undone by unmerge."""

    __tablename__ = "merge_log"
    __table_args__ = (Index("ix_merge_log_merged_id", "merged_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    merged_id: Mapped[str] = mapped_column(ForeignKey("person.id"))
    rule: Mapped[str] = mapped_column(String(64))
    evidence: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(default=None)


class IdentifierRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    type: str
    masked: str
    first_seen: datetime | None
    last_seen: datetime | None


class MergeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    person_id: str
    merged_id: str
    rule: str
    evidence: dict[str, Any]
    created_at: datetime
    undone_at: datetime | None


class ResolveSummary(BaseModel):
    identifiers: int
    people: int
    new_people: int
    merges: int
    splits: int
    shared_devices: int
    invalid_values: int
    seconds: float
