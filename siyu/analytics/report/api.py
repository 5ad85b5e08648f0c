"""``/v1/reports`` and ``siyu report``: thin over :mod:`.service`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from rich.table import Table

from siyu.analytics.cli_app import JsonOption, console, print_json
from siyu.analytics.report import service
from siyu.analytics.report.service import BuildResult, ReportFile
from siyu.analytics.report.suggestions import format_change, format_number
from siyu.analytics.report.weekly import WEEK_PATTERN
from siyu.api.deps import Context, DbSession, Events
from siyu.api.problems import documented
from siyu.core.i18n import gettext as _

router = APIRouter(prefix="/v1/reports", tags=["reports"])
PROBLEMS = documented(404, 422)
report_app = typer.Typer(help="Reports: the weekly report.", no_args_is_help=True)


@router.get("", response_model=list[ReportFile], summary="Stored reports, newest first")
async def list_reports(ctx: Context) -> list[ReportFile]:
    return service.list_reports(ctx.settings)


@router.post(
    "/weekly",
    response_model=BuildResult,
    summary="Build (or rebuild) the weekly report of an ISO week and store it",
    responses=PROBLEMS,
)
async def build_weekly(
    ctx: Context,
    db_session: DbSession,
    events: Events,
    week: Annotated[
        str | None,
        Query(pattern=WEEK_PATTERN, description="ISO week YYYY-Www; default: the last complete"),
    ] = None,
    pdf: bool = True,
) -> BuildResult:
    _report, result = await run_in_threadpool(
        service.build_and_save, ctx.settings, db_session, events, week=week, pdf=pdf
    )
    return result


@router.get(
    "/{file_name}",
    summary="Download a stored report: weekly-YYYY-Www.html, .pdf or .json",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The report file",
            "content": {"text/html": {}, "application/pdf": {}, "application/json": {}},
        },
        **PROBLEMS,
    },
)
async def download(file_name: str, ctx: Context) -> FileResponse:
    path, media_type = service.report_file(ctx.settings, file_name)
    return FileResponse(path, media_type=media_type, filename=path.name)


# -- CLI -----------------------------------------------------------------------------------


def _register() -> None:
    from siyu.cli_stores import cli_settings, handle_errors, open_stores

    @report_app.command("weekly")
    @handle_errors
    def weekly_command(
        week: Annotated[
            str | None,
            typer.Option(help="ISO week, e.g. 2026-W47; default: the last complete week."),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option(help="Also copy the files to this directory."),
        ] = None,
        pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Make the PDF.")] = True,
        send: Annotated[
            bool, typer.Option("--send", help="Mail it to SIYU_REPORT_SUBSCRIBERS.")
        ] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Build the weekly report (HTML, PDF, JSON) under SIYU_HOME/reports."""
        with open_stores() as (settings, session, events):
            report, result = service.build_and_save(
                settings, session, events, week=week, pdf=pdf, send=send
            )
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            copies = []
            for name in result.files:
                target = out / Path(name).name
                target.write_bytes(Path(name).read_bytes())
                copies.append(str(target))
            result.files += copies
        if as_json:
            print_json(
                {"result": result.model_dump(mode="json"), "report": report.model_dump(mode="json")}
            )
            return
        table = Table(title=_("Weekly report {week}").format(week=report.week))
        for column in (_("Metric"), _("This week"), _("Last week"), _("Change")):
            table.add_column(column, justify="left" if column == _("Metric") else "right")
        for kpi in report.kpis:
            table.add_row(
                kpi.label,
                format_number(kpi.value, kpi.unit),
                format_number(kpi.previous, kpi.unit),
                format_change(kpi.change),
            )
        console.print(table)
        for item in report.suggestions:
            console.print(f"[bold]{item.dimension_label}[/]: {item.text}", highlight=False)
        for name in result.files:
            console.print(name, highlight=False)
        if result.sent_to:
            console.print(_("Sent to {to}").format(to=", ".join(result.sent_to)))

    @report_app.command("list")
    @handle_errors
    def list_command(as_json: JsonOption = False) -> None:
        """Stored reports, newest first."""
        items = service.list_reports(cli_settings())
        if as_json:
            print_json([item.model_dump(mode="json") for item in items])
            return
        table = Table(title=_("Reports"))
        for column in (_("Name"), _("Formats"), _("Modified")):
            table.add_column(column)
        for item in items:
            table.add_row(
                item.name, ", ".join(item.formats), item.modified_at.strftime("%Y-%m-%d %H:%M")
            )
        console.print(table)


_register()
