"""``siyu import events|people|orders FILE`` and ``siyu import jobs``: thin commands."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from siyu.cli_stores import cli_settings as _settings
from siyu.cli_stores import console, err_console, handle_errors
from siyu.collect.importer import mapping as mp
from siyu.collect.importer.models import ImportKind
from siyu.collect.importer.service import (
    DEFAULT_BATCH_SIZE,
    ImportRequest,
    ImportSummary,
    import_into_stores,
    jobs_in_store,
)
from siyu.core.i18n import N_
from siyu.core.i18n import gettext as _

import_app: typer.Typer = typer.Typer(
    help="Bulk import of events, people and orders from CSV, JSON Lines or Parquet files.",
    no_args_is_help=True,
)

FileArg = Annotated[
    Path, typer.Argument(help="The file (.csv, .jsonl, .parquet).", exists=True, dir_okay=False)
]
FormatOpt = Annotated[
    str | None, typer.Option("--format", help="csv, jsonl or parquet (default: by extension).")
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option("--map", help="target=source column, repeatable (e.g. --map ts=created_at)."),
]
MappingOpt = Annotated[
    Path | None,
    typer.Option("--mapping", help="YAML or JSON file of target: source columns.", exists=True),
]
IdTypeOpt = Annotated[
    str, typer.Option("--id-type", help="Identifier that makes the user_id (type:value).")
]
CurrencyOpt = Annotated[str, typer.Option("--currency", help="Currency of amounts without one.")]
ChannelOpt = Annotated[
    str | None, typer.Option("--channel", help="Channel of rows without one (e.g. store, crm).")
]
EncodingOpt = Annotated[
    str, typer.Option("--encoding", help="Text encoding of CSV/JSONL (e.g. gb18030).")
]
BatchOpt = Annotated[
    int, typer.Option("--batch-size", min=1, max=5_000_000, help="Rows per batch (checkpoint).")
]
ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report", help="Problems file, .jsonl or .csv (default: FILE.import-report.jsonl)."
    ),
]
ResumeOpt = Annotated[
    bool | None,
    typer.Option(
        "--resume/--no-resume",
        help="Continue an unfinished import of the same file (default: yes if there is one).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]

SUMMARY_LABELS = {
    "job_id": N_("Job"),
    "kind": N_("Kind"),
    "format": N_("Format"),
    "resumed": N_("Resumed"),
    "batches": N_("Batches"),
    "rows_read": N_("Rows read"),
    "accepted": N_("Accepted"),
    "duplicates": N_("Duplicates"),
    "rejected": N_("Rejected"),
    "seconds": N_("Seconds"),
    "rows_per_second": N_("Rows per second"),
    "report_path": N_("Report"),
}


def _import(
    kind: ImportKind,
    path: Path,
    *,
    fmt: str | None,
    pairs: list[str] | None,
    mapping_file: Path | None,
    id_type: str,
    currency: str,
    channel: str | None,
    encoding: str,
    batch_size: int,
    report: Path | None,
    resume: bool | None,
    as_json: bool,
) -> None:
    settings = _settings()
    columns = mp.load_mapping_file(mapping_file) if mapping_file is not None else {}
    columns.update(mp.parse_pairs(pairs or []))
    request = ImportRequest(
        kind=kind,
        path=path,
        format=fmt,
        columns=columns,
        id_type=id_type,
        currency=currency.upper(),
        channel=channel.lower() if channel else None,
        encoding=encoding,
        batch_size=batch_size,
        report=report,
        resume=resume,
    )
    quiet = as_json or not sys.stderr.isatty()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} " + _("rows")),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet,
    )
    started = time.perf_counter()
    with progress:
        task = progress.add_task(_("Importing {name}").format(name=path.name), total=None, rate="")

        def on_progress(rows: int, total: int | None) -> None:
            elapsed = time.perf_counter() - started
            rate = f"{rows / elapsed:,.0f} {_('rows/s')}" if elapsed > 0 else ""
            progress.update(task, completed=rows, total=total, rate=rate)

        summary = import_into_stores(settings, request, on_progress)
    _print_summary(summary, as_json)


def _print_summary(summary: ImportSummary, as_json: bool) -> None:
    data: dict[str, Any] = dict(summary.__dict__)
    if as_json:
        console.print_json(json.dumps(data, default=str, ensure_ascii=False))
        return
    table = Table(title=_("Import finished"))
    table.add_column(_("Item"))
    table.add_column(_("Value"), justify="right")
    for key, label in SUMMARY_LABELS.items():
        value = data.get(key)
        if value is None:
            continue
        shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
        table.add_row(_(label), str(shown))
    for reason, count in sorted(summary.problems_by_reason.items()):
        table.add_row(f"  {_('Rejected')}: {reason}", f"{count:,}")
    console.print(table)


def _command(kind: ImportKind, doc: str) -> None:
    @import_app.command(kind.value, help=doc)
    @handle_errors
    def command(
        path: FileArg,
        fmt: FormatOpt = None,
        pairs: MapOpt = None,
        mapping_file: MappingOpt = None,
        id_type: IdTypeOpt = "member_no",
        currency: CurrencyOpt = "CNY",
        channel: ChannelOpt = None,
        encoding: EncodingOpt = "utf-8",
        batch_size: BatchOpt = DEFAULT_BATCH_SIZE,
        report: ReportOpt = None,
        resume: ResumeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        _import(
            kind,
            path,
            fmt=fmt,
            pairs=pairs,
            mapping_file=mapping_file,
            id_type=id_type,
            currency=currency,
            channel=channel,
            encoding=encoding,
            batch_size=batch_size,
            report=report,
            resume=resume,
            as_json=as_json,
        )


_command(ImportKind.events, "Import events (one row per event: name, ts, who, properties …).")
_command(
    ImportKind.people,
    "Import people as identify events (identifier columns + traits).",
)
_command(ImportKind.orders, "Import orders as order_paid events (order_id, amount, paid_at …).")


@import_app.command("jobs")
@handle_errors
def jobs(
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 50,
) -> None:
    """List import jobs, newest first."""
    found = jobs_in_store(_settings(), limit)
    if as_json:
        console.print_json(
            json.dumps([job.model_dump(mode="json") for job in found], ensure_ascii=False)
        )
        return
    table = Table(title=_("Import jobs"))
    for header in (
        "ID",
        _("Kind"),
        _("File"),
        _("Status"),
        _("Batches"),
        _("Rows read"),
        _("Accepted"),
        _("Duplicates"),
        _("Rejected"),
        _("Started"),
    ):
        table.add_column(header)
    for job in found:
        table.add_row(
            str(job.id),
            job.kind.value,
            job.path,
            job.status.value,
            str(job.batches_done),
            f"{job.rows_read:,}",
            f"{job.accepted:,}",
            f"{job.duplicates:,}",
            f"{job.rejected:,}",
            job.started_at.isoformat(timespec="seconds"),
        )
    console.print(table)
