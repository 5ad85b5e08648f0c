"""Bulk import of events, people and orders from CSV, JSON Lines and Parquet files."""

from __future__ import annotations

from siyu.collect.importer.models import (
    ImportFormat,
    ImportJob,
    ImportJobRead,
    ImportKind,
    JobStatus,
)
from siyu.collect.importer.service import (
    DEFAULT_BATCH_SIZE,
    ImportRequest,
    ImportSummary,
    list_jobs,
    run_import,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "ImportFormat",
    "ImportJob",
    "ImportJobRead",
    "ImportKind",
    "ImportRequest",
    "ImportSummary",
    "JobStatus",
    "list_jobs",
    "run_import",
]
