"""The ``import_job`` table: one row per import run, the checkpoint a resumed import starts from."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import BigInteger, Enum, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.store.base import Base


class ImportKind(enum.StrEnum):
    events = "events"
    people = "people"
    orders = "orders"


class ImportFormat(enum.StrEnum):
    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"


class JobStatus(enum.StrEnum):
    running = "running"
    done = "done"
    failed = "failed"


class ImportJob(Base):
    """An import of one file. The fingerprint (size, mtime, sha256 of the first MiB) tells a
    re-run of the same file from a new one; ``batches_done`` is where a resumed run starts."""

    __tablename__ = "import_job"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ImportKind] = mapped_column(
        Enum(ImportKind, native_enum=False, length=16, validate_strings=True)
    )
    path: Mapped[str] = mapped_column(Text)
    file_size: Mapped[int] = mapped_column(BigInteger)
    file_mtime_ns: Mapped[int] = mapped_column(BigInteger)
    head_sha256: Mapped[str] = mapped_column(String(64), index=True)
    format: Mapped[ImportFormat] = mapped_column(
        Enum(ImportFormat, native_enum=False, length=16, validate_strings=True)
    )
    mapping: Mapped[dict[str, Any]]
    batch_size: Mapped[int] = mapped_column(Integer)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=16, validate_strings=True),
        default=JobStatus.running,
    )
    batches_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected_by_reason: Mapped[dict[str, Any]]
    report_path: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ImportJobRead(BaseModel):
    """An import job as the CLI (``siyu import jobs --json``) and the API show it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: ImportKind
    path: str
    file_size: int
    head_sha256: str
    format: ImportFormat
    mapping: dict[str, Any]
    batch_size: int
    status: JobStatus
    batches_done: int
    rows_read: int
    accepted: int
    duplicates: int
    rejected: int
    rejected_by_reason: dict[str, int]
    report_path: str | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None
