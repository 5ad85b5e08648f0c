"""Bulk import: stream a file through mapping and validation into the event store, one
checkpointed batch at a time.

Reading and converting batch k+1 overlaps appending batch k (DuckDB and Arrow release the
GIL), with one batch in flight, so memory stays bounded by the batch size. After each append
the job row records the batch as done: an interrupted import resumes after the last recorded
batch, and since appends skip known event ids, a crash between an append and its checkpoint
stores nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.collect.importer import mapping as mp
from siyu.collect.importer.convert import Engine
from siyu.collect.importer.errors import ImportFileError, ImportJobConflictError
from siyu.collect.importer.formats import (
    Batch,
    Fingerprint,
    detect_format,
    fingerprint,
    read_batches,
)
from siyu.collect.importer.models import (
    ImportFormat,
    ImportJob,
    ImportJobRead,
    ImportKind,
    JobStatus,
)
from siyu.collect.importer.report import ReportWriter, default_report_path, parser_problems
from siyu.collect.importer.transform import Converted, Options, convert_batch
from siyu.core.clock import utcnow
from siyu.core.config import Settings, ensure_home
from siyu.core.i18n import N_
from siyu.events import AppendResult, EventStore, open_event_store
from siyu.store import Database, open_database
from siyu.store.migrate import upgrade

DEFAULT_BATCH_SIZE = 200_000

ProgressCallback = Callable[[int, int | None], None]


@dataclass(frozen=True)
class ImportRequest:
    """What ``siyu import KIND FILE …`` asks for."""

    kind: ImportKind
    path: Path
    format: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    id_type: str = "member_no"
    currency: str = "CNY"
    channel: str | None = None
    encoding: str = "utf-8"
    batch_size: int = DEFAULT_BATCH_SIZE
    report: Path | None = None
    resume: bool | None = None  # None: resume an unfinished job of the same file if any

    def spec(self) -> dict[str, Any]:
        """The part of the request a resumed job must share (stored as the job's mapping)."""
        return {
            "columns": dict(sorted(self.columns.items())),
            "id_type": self.id_type,
            "currency": self.currency,
            "channel": self.channel,
            "encoding": self.encoding,
        }


@dataclass
class ImportSummary:
    job_id: int
    kind: str
    path: str
    format: str
    status: str
    resumed: bool
    batches: int
    rows_read: int
    accepted: int
    duplicates: int
    rejected: int
    problems_by_reason: dict[str, int]
    report_path: str | None
    mapping: dict[str, str]
    seconds: float
    rows_per_second: float


def check_request(request: ImportRequest) -> ImportFormat:
    if not request.path.is_file():
        raise ImportFileError(N_("{path} is not a file"), path=str(request.path))
    mp.check_targets(request.kind, request.columns)
    if request.id_type not in mp.IDENTIFIER_TYPES:
        raise ImportFileError(
            N_("Unknown identifier type {id_type!r}; use one of {choices}"),
            id_type=request.id_type,
            choices=", ".join(mp.IDENTIFIER_TYPES),
            path=str(request.path),
        )
    try:
        "".encode(request.encoding)
    except LookupError:
        raise ImportFileError(
            N_("Unknown encoding {encoding!r}"),
            path=str(request.path),
            encoding=request.encoding,
        ) from None
    return detect_format(request.path, request.format)


# -- jobs -------------------------------------------------------------------------------------


def list_jobs(*, db_session: Session, limit: int = 50) -> list[ImportJob]:
    """The most recent import jobs first."""
    return list(db_session.scalars(select(ImportJob).order_by(ImportJob.id.desc()).limit(limit)))


def get_unfinished(
    *,
    db_session: Session,
    kind: ImportKind,
    fmt: ImportFormat,
    print_: Fingerprint,
    spec: dict[str, Any],
    batch_size: int,
) -> ImportJob | None:
    """The latest unfinished job of the same file, kind and options, if any."""
    candidates = db_session.scalars(
        select(ImportJob)
        .where(
            ImportJob.head_sha256 == print_.head_sha256,
            ImportJob.file_size == print_.size,
            ImportJob.file_mtime_ns == print_.mtime_ns,
            ImportJob.kind == kind,
            ImportJob.format == fmt,
            ImportJob.batch_size == batch_size,
            ImportJob.status != JobStatus.done,
        )
        .order_by(ImportJob.id.desc())
    )
    return next((job for job in candidates if job.mapping == spec), None)


def _start_job(
    database: Database, request: ImportRequest, fmt: ImportFormat, report: Path
) -> tuple[ImportJob, bool]:
    print_ = fingerprint(request.path)
    spec = request.spec()
    with database.unit_of_work() as session:
        unfinished = None
        if request.resume is not False:
            unfinished = get_unfinished(
                db_session=session,
                kind=request.kind,
                fmt=fmt,
                print_=print_,
                spec=spec,
                batch_size=request.batch_size,
            )
        if unfinished is None and request.resume:
            raise ImportJobConflictError(
                N_("There is no unfinished import of {path} with these options to resume"),
                hint=N_("Run it without --resume, or see `siyu import jobs`."),
                path=str(request.path),
            )
        if unfinished is not None:
            unfinished.status = JobStatus.running
            unfinished.error = None
            unfinished.report_path = str(report)
            session.flush()
            return unfinished, True
        job = ImportJob(
            kind=request.kind,
            path=str(request.path.resolve()),
            file_size=print_.size,
            file_mtime_ns=print_.mtime_ns,
            head_sha256=print_.head_sha256,
            format=fmt,
            mapping=spec,
            batch_size=request.batch_size,
            status=JobStatus.running,
            batches_done=0,
            rows_read=0,
            accepted=0,
            duplicates=0,
            rejected=0,
            rejected_by_reason={},
            report_path=str(report),
        )
        session.add(job)
        session.flush()
        return job, False


def _save(database: Database, job: ImportJob) -> None:
    with database.unit_of_work() as session:
        session.merge(job)


# -- the run ----------------------------------------------------------------------------------


@dataclass
class _InFlight:
    """A batch being appended: what its checkpoint needs, not the rows it was read from."""

    index: int
    parser_rejects: list[tuple[int, str, str]]
    converted: Converted
    append: Future[AppendResult]


class _Run:
    def __init__(
        self,
        database: Database,
        events: EventStore,
        request: ImportRequest,
        job: ImportJob,
        report: ReportWriter,
        timezone: str,
    ) -> None:
        self.database = database
        self.events = events
        self.request = request
        self.job = job
        self.report = report
        self.engine = Engine(timezone)
        self.options = Options(
            kind=request.kind,
            id_type=request.id_type,
            currency=request.currency,
            channel=request.channel,
        )
        self.now = utcnow()
        self.mapping: dict[str, str] | None = None

    def resolve(self, columns: list[str]) -> dict[str, str]:
        resolved = mp.resolve(self.request.kind, columns, self.request.columns)
        if self.mapping is None:
            mp.check_resolved(self.request.kind, columns, resolved, self.request.id_type)
            self.mapping = resolved
        return {target: source for target, source in resolved.items() if source in columns}

    def convert(self, batch: Batch) -> Converted:
        if batch.table.num_rows == 0:
            return convert_batch(
                batch.table, mapping={}, options=self.options, engine=self.engine, now=self.now
            )
        mapping = self.resolve(batch.table.column_names)
        return convert_batch(
            batch.table, mapping=mapping, options=self.options, engine=self.engine, now=self.now
        )

    def checkpoint(self, flight: _InFlight) -> None:
        result = flight.append.result()
        job, converted = self.job, flight.converted
        parsed_badly = flight.parser_rejects
        problems = dict(job.rejected_by_reason)
        if converted.rejects.num_rows:
            for item in pc.value_counts(converted.rejects.column("reason")).to_pylist():
                problems[item["values"]] = problems.get(item["values"], 0) + item["counts"]
        if parsed_badly:
            problems["malformed_record"] = problems.get("malformed_record", 0) + len(parsed_badly)
            self.report.write(parser_problems(parsed_badly))
        self.report.write(converted.rejects)
        job.batches_done = flight.index + 1
        job.rows_read += converted.rows + len(parsed_badly)
        job.accepted += result.inserted
        job.duplicates += result.duplicates
        job.rejected += converted.rejected_rows + len(parsed_badly)
        job.rejected_by_reason = problems
        _save(self.database, job)

    def run(self, fmt: ImportFormat, on_progress: ProgressCallback | None) -> None:
        total = _row_count(self.request.path, fmt)
        batches = read_batches(
            self.request.path,
            fmt,
            batch_size=self.request.batch_size,
            encoding=self.request.encoding,
            start=self.job.batches_done,
        )
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="siyu-import") as writer:
            flight: _InFlight | None = None
            try:
                for batch in batches:
                    converted = self.convert(batch)
                    if flight is not None:
                        self.checkpoint(flight)
                        if on_progress is not None:
                            on_progress(self.job.rows_read, total)
                    appending = writer.submit(self.events.append, converted.events)
                    flight = _InFlight(batch.index, batch.parser_rejects, converted, appending)
                if flight is not None:
                    self.checkpoint(flight)
                    flight = None
                    if on_progress is not None:
                        on_progress(self.job.rows_read, total)
            finally:
                if flight is not None:
                    flight.append.cancel()
                self.engine.close()


def _row_count(path: Path, fmt: ImportFormat) -> int | None:
    if fmt is not ImportFormat.parquet:
        return None
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, ValueError):  # the reader reports an unreadable file properly
        return None


def run_import(
    *,
    database: Database,
    events: EventStore,
    request: ImportRequest,
    timezone: str = "Asia/Shanghai",
    on_progress: ProgressCallback | None = None,
) -> ImportSummary:
    """Import ``request.path`` into ``events``, checkpointing in ``database``; resumes an
    unfinished job of the same file (same fingerprint, kind and options) unless told not to."""
    started = time.perf_counter()
    fmt = check_request(request)
    report_path = request.report or default_report_path(request.path)
    job, resumed = _start_job(database, request, fmt, report_path)
    rows_before = job.rows_read
    report = ReportWriter(report_path, append=resumed)
    run = _Run(database, events, request, job, report, timezone)
    try:
        run.run(fmt, on_progress)
    except BaseException as exc:
        job.status = JobStatus.failed
        job.error = (str(exc) or type(exc).__name__)[:2000]
        job.finished_at = utcnow()
        _save(database, job)
        raise
    finally:
        report.close()
    job.status = JobStatus.done
    job.finished_at = utcnow()
    _save(database, job)
    seconds = time.perf_counter() - started
    done_now = job.rows_read - rows_before
    return ImportSummary(
        job_id=job.id,
        kind=job.kind.value,
        path=job.path,
        format=fmt.value,
        status=job.status.value,
        resumed=resumed,
        batches=job.batches_done,
        rows_read=job.rows_read,
        accepted=job.accepted,
        duplicates=job.duplicates,
        rejected=job.rejected,
        problems_by_reason=dict(job.rejected_by_reason),
        report_path=str(report_path) if job.rejected else None,
        mapping=run.mapping or {},
        seconds=round(seconds, 3),
        rows_per_second=round(done_now / seconds) if seconds > 0 else 0.0,
    )


def import_into_stores(
    settings: Settings, request: ImportRequest, on_progress: ProgressCallback | None = None
) -> ImportSummary:
    """The command's unit of work: open the configured stores (the event store file must not
    be held by a running server: that is an EventStoreLockedError naming it), import, close."""
    ensure_home(settings)
    check_request(request)
    database = open_database(settings.resolved_database_url)
    try:
        upgrade(database)
        with open_event_store(settings.resolved_events_url) as events:
            return run_import(
                database=database,
                events=events,
                request=request,
                timezone=settings.timezone,
                on_progress=on_progress,
            )
    finally:
        database.dispose()


def jobs_in_store(settings: Settings, limit: int = 50) -> list[ImportJobRead]:
    database = open_database(settings.resolved_database_url)
    try:
        upgrade(database)
        with database.unit_of_work() as session:
            return [
                ImportJobRead.model_validate(job)
                for job in list_jobs(db_session=session, limit=limit)
            ]
    finally:
        database.dispose()
