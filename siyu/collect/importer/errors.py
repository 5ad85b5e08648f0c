"""Errors of the bulk import: a file or a mapping siyu cannot use, or a job that cannot resume."""

from __future__ import annotations

from siyu.core.errors import ConflictError, NotFoundError, SiyuError
from siyu.core.i18n import N_


class BulkImportError(SiyuError):
    """Base of the import errors; ``path`` names the file."""

    code = "import_failed"
    status = 422
    title = N_("Import failed")


class ImportFileError(BulkImportError):
    """The file cannot be read as the format it claims (encoding, syntax, unknown format)."""

    code = "import_file_invalid"
    title = N_("Import file unreadable")


class ImportMappingError(BulkImportError):
    """The column mapping names columns the file lacks, or lacks a required target."""

    code = "import_mapping_invalid"
    title = N_("Import mapping invalid")


class ImportJobConflictError(ConflictError):
    """``--resume`` was asked for but there is nothing to resume, or the job differs."""

    code = "import_job_conflict"


class ImportJobNotFoundError(NotFoundError):
    code = "import_job_not_found"
