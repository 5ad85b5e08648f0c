"""``/v1/analytics/retention``, ``/v1/analytics/cohort-ltv`` and ``siyu analytics retention``
/ ``ltv``: thin over :mod:`siyu.analytics.retention`."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

import ibis.expr.types as ir
import typer
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from rich.table import Table
from sqlalchemy.orm import Session

from siyu.analytics import retention as service
from siyu.analytics.cli_app import (
    FromOption,
    JsonOption,
    ToOption,
    analytics_app,
    cli_query,
    console,
    print_json,
)
from siyu.analytics.common import Grain
from siyu.analytics.retention import LtvQuery, LtvResult, RetentionQuery, RetentionResult
from siyu.api.deps import Context, DbSession, Events
from siyu.api.problems import documented
from siyu.core.i18n import gettext as _
from siyu.events import EventStore

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])
PROBLEMS = documented(404, 422)


def _members(
    db_session: Session, events: EventStore, tz: ZoneInfo, segment: str | None
) -> ir.Table | None:
    if segment is None:
        return None
    return service.segment_people(db_session, events, tz=tz, key=segment)


@router.post(
    "/retention",
    response_model=RetentionResult,
    summary="Retention by cohort (bounded or on-or-after)",
    responses=PROBLEMS,
)
async def retention(
    query: RetentionQuery, db_session: DbSession, events: Events, ctx: Context
) -> RetentionResult:
    tz = ctx.settings.tz

    def work() -> RetentionResult:
        members = _members(db_session, events, tz, query.segment)
        return service.retention(events, query, tz=tz, members=members)

    return await run_in_threadpool(work)


@router.post(
    "/cohort-ltv",
    response_model=LtvResult,
    summary="Cumulative net revenue per cohort member",
    responses=PROBLEMS,
)
async def cohort_ltv(
    query: LtvQuery, db_session: DbSession, events: Events, ctx: Context
) -> LtvResult:
    tz = ctx.settings.tz

    def work() -> LtvResult:
        members = _members(db_session, events, tz, query.segment)
        return service.cohort_ltv(events, query, tz=tz, members=members)

    return await run_in_threadpool(work)


# -- CLI --------------------------------------------------------------------------------------


CohortEventOption = Annotated[
    str | None, typer.Option("--cohort-event", help="Cohort by this event's first occurrence.")
]
GrainOption = Annotated[Grain, typer.Option("--grain", help="day, week or month.")]
PeriodsOption = Annotated[
    int, typer.Option("--periods", min=1, max=service.MAX_PERIODS, help="Periods after period 0.")
]
SegmentOption = Annotated[
    str | None, typer.Option("--segment", help="Only members of this saved segment.")
]
ByChannelOption = Annotated[
    bool, typer.Option("--by-channel", help="One row per channel of the first event.")
]


def _grain_label(grain: Grain) -> str:
    if grain is Grain.day:
        return _("day")
    return _("week") if grain is Grain.week else _("month")


def _cohort_label(cohort: date, channel: str | None, breakdown: str | None) -> str:
    if breakdown is None:
        return cohort.isoformat()
    return f"{cohort.isoformat()} {channel or _('(no channel)')}"


def _retention_table(result: RetentionResult) -> Table:
    title = _("Retention by {grain} cohort ({kind})").format(
        grain=_grain_label(result.grain),
        kind=_("on or after") if result.unbounded else _("exactly in the period"),
    )
    table = Table(title=title)
    table.add_column(_("Cohort"))
    table.add_column(_("People"), justify="right")
    for k in range(result.periods + 1):
        table.add_column(str(k), justify="right")
    for row in result.cohorts:
        cells = [
            ("-" if not cell.complete else "" if cell.rate is None else f"{cell.rate:.1%}")
            for cell in row.periods
        ]
        label = _cohort_label(row.cohort, row.channel, result.breakdown)
        table.add_row(label, f"{row.size:,}", *cells)
    average = ["-" if a.rate is None else f"{a.rate:.1%}" for a in result.average]
    people = result.average[0].size if result.average else 0
    table.add_row(_("Average (weighted)"), f"{people:,}", *average, style="bold")
    return table


def _ltv_table(result: LtvResult) -> Table:
    table = Table(
        title=_("Cumulative revenue per member by {grain} cohort").format(
            grain=_grain_label(result.grain)
        )
    )
    table.add_column(_("Cohort"))
    table.add_column(_("People"), justify="right")
    for k in range(result.periods + 1):
        table.add_column(str(k), justify="right")
    for row in result.cohorts:
        cells = [
            "-" if not c.complete else "" if c.per_member is None else f"{c.per_member:,.2f}"
            for c in row.periods
        ]
        label = _cohort_label(row.cohort, row.channel, result.breakdown)
        table.add_row(label, f"{row.size:,}", *cells)
    average = ["-" if a.per_member is None else f"{a.per_member:,.2f}" for a in result.average]
    people = result.average[0].size if result.average else 0
    table.add_row(_("Average (weighted)"), f"{people:,}", *average, style="bold")
    return table


def _register() -> None:
    from siyu.cli_stores import handle_errors, open_stores

    @analytics_app.command("retention")
    @handle_errors
    def retention_command(
        cohort_event: CohortEventOption = None,
        return_event: Annotated[
            str | None, typer.Option("--return-event", help="Return event (default: any).")
        ] = None,
        grain: GrainOption = Grain.week,
        periods: PeriodsOption = 12,
        unbounded: Annotated[
            bool, typer.Option("--unbounded", help="Returned in the period or later.")
        ] = False,
        start: FromOption = None,
        end: ToOption = None,
        segment: SegmentOption = None,
        by_channel: ByChannelOption = False,
        as_json: JsonOption = False,
    ) -> None:
        """Retention by cohort of first occurrence (any event unless --cohort-event)."""
        query = cli_query(
            RetentionQuery,
            cohort_event=cohort_event,
            return_event=return_event,
            grain=grain,
            periods=periods,
            unbounded=unbounded,
            start=start,
            end=end,
            segment=segment,
            breakdown="channel" if by_channel else None,
        )
        with open_stores() as (settings, session, events):
            members = _members(session, events, settings.tz, segment)
            result = service.retention(events, query, tz=settings.tz, members=members)
        if as_json:
            print_json(result)
            return
        if result.empty:
            console.print(_("No cohort in this period."))
        console.print(_retention_table(result))

    @analytics_app.command("ltv")
    @handle_errors
    def ltv_command(
        cohort_event: CohortEventOption = None,
        grain: GrainOption = Grain.month,
        periods: PeriodsOption = 12,
        start: FromOption = None,
        end: ToOption = None,
        segment: SegmentOption = None,
        by_channel: ByChannelOption = False,
        as_json: JsonOption = False,
    ) -> None:
        """Cumulative net revenue (orders minus refunds) per cohort member."""
        query = cli_query(
            LtvQuery,
            cohort_event=cohort_event,
            grain=grain,
            periods=periods,
            start=start,
            end=end,
            segment=segment,
            breakdown="channel" if by_channel else None,
        )
        with open_stores() as (settings, session, events):
            members = _members(session, events, settings.tz, segment)
            result = service.cohort_ltv(events, query, tz=settings.tz, members=members)
        if as_json:
            print_json(result)
            return
        if result.empty:
            console.print(_("No cohort in this period."))
        console.print(_ltv_table(result))


_register()
