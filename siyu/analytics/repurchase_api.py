"""``/v1/analytics/repurchase[/next-purchase]`` and ``siyu analytics repurchase`` /
``next-purchase``: thin over :mod:`siyu.analytics.repurchase`."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from rich.table import Table

from siyu.analytics import repurchase as service
from siyu.analytics.cli_app import (
    FromOption,
    JsonOption,
    ToOption,
    analytics_app,
    cli_query,
    console,
    print_json,
)
from siyu.analytics.common import Day
from siyu.analytics.repurchase import (
    NextPurchasePage,
    NextPurchaseQuery,
    RepurchaseQuery,
    RepurchaseResult,
)
from siyu.api.deps import Context, Events
from siyu.api.problems import documented
from siyu.core.i18n import gettext as _

router = APIRouter(prefix="/v1/analytics/repurchase", tags=["analytics"])
PROBLEMS = documented(404, 422)
Category = Annotated[str | None, Query(min_length=1, max_length=200)]


async def _repurchase(query: RepurchaseQuery, events: Events, ctx: Context) -> RepurchaseResult:
    return await run_in_threadpool(service.repurchase, events, query, tz=ctx.settings.tz)


@router.get(
    "",
    response_model=RepurchaseResult,
    summary="Repurchase rates and intervals",
    responses=PROBLEMS,
)
async def get_repurchase(
    events: Events,
    ctx: Context,
    start: Annotated[Day | None, Query(alias="from")] = None,
    end: Annotated[Day | None, Query(alias="to")] = None,
    category: Category = None,
) -> RepurchaseResult:
    query = RepurchaseQuery(start=start, end=end, category=category)
    return await _repurchase(query, events, ctx)


@router.post(
    "",
    response_model=RepurchaseResult,
    summary="Repurchase rates and intervals",
    responses=PROBLEMS,
)
async def post_repurchase(query: RepurchaseQuery, events: Events, ctx: Context) -> RepurchaseResult:
    return await _repurchase(query, events, ctx)


async def _next(query: NextPurchaseQuery, events: Events, ctx: Context) -> NextPurchasePage:
    return await run_in_threadpool(service.next_purchase, events, query, tz=ctx.settings.tz)


@router.get(
    "/next-purchase",
    response_model=NextPurchasePage,
    summary="Buyers with their expected next order, most overdue first",
    responses=PROBLEMS,
)
async def get_next_purchase(
    events: Events,
    ctx: Context,
    as_of: Day | None = None,
    category: Category = None,
    overdue_only: bool = False,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
) -> NextPurchasePage:
    query = NextPurchaseQuery(
        as_of=as_of, category=category, overdue_only=overdue_only, offset=offset, limit=limit
    )
    return await _next(query, events, ctx)


@router.post(
    "/next-purchase",
    response_model=NextPurchasePage,
    summary="Buyers with their expected next order, most overdue first",
    responses=PROBLEMS,
)
async def post_next_purchase(
    query: NextPurchaseQuery, events: Events, ctx: Context
) -> NextPurchasePage:
    return await _next(query, events, ctx)


# -- CLI --------------------------------------------------------------------------------------

CategoryOption = Annotated[
    str | None, typer.Option("--category", help="Only orders of this category.")
]


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _print_repurchase(result: RepurchaseResult) -> None:
    period = result.period
    console.print(
        _("{start} – {end}: {buyers:,} buyers, {orders:,} orders").format(
            start=period["start"], end=period["end"], buyers=result.buyers, orders=result.orders
        )
    )
    rates = Table(title=_("Repurchase"))
    rates.add_column(_("Measure"))
    rates.add_column(_("People"), justify="right")
    rates.add_column(_("Rate"), justify="right")
    for label, count, rate in (
        (_("Bought twice or more in the period"), result.repeat_buyers, result.repurchase_rate),
        (_("Had bought before the period"), result.returning_buyers, result.returning_rate),
    ):
        rates.add_row(label, f"{count:,}", "-" if rate is None else f"{rate:.1%}")
    console.print(rates)
    table = Table(title=_("Days between consecutive orders"))
    table.add_column(_("Category"))
    table.add_column(_("Intervals"), justify="right")
    table.add_column("P25", justify="right")
    table.add_column(_("Median"), justify="right")
    table.add_column("P75", justify="right")
    for stats in result.intervals:
        table.add_row(
            stats.category or _("(all categories)"),
            f"{stats.intervals:,}",
            _days(stats.p25),
            _days(stats.median),
            _days(stats.p75),
        )
    console.print(table)


def _register() -> None:
    from siyu.cli_stores import handle_errors, open_stores

    @analytics_app.command("repurchase")
    @handle_errors
    def repurchase_command(
        category: CategoryOption = None,
        start: FromOption = None,
        end: ToOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Repurchase and returning-buyer rates, and days between orders per category."""
        query = cli_query(RepurchaseQuery, start=start, end=end, category=category)
        with open_stores() as (settings, _session, events):
            result = service.repurchase(events, query, tz=settings.tz)
        if as_json:
            print_json(result)
            return
        _print_repurchase(result)

    @analytics_app.command("next-purchase")
    @handle_errors
    def next_purchase_command(
        category: CategoryOption = None,
        as_of: Annotated[
            date | None, typer.Option("--as-of", help="Local day (default: latest event's).")
        ] = None,
        overdue: Annotated[bool, typer.Option("--overdue", help="Only overdue buyers.")] = False,
        offset: Annotated[int, typer.Option(min=0)] = 0,
        limit: Annotated[int, typer.Option(min=1, max=service.MAX_PAGE)] = 50,
        as_json: JsonOption = False,
    ) -> None:
        """Buyers with their expected next order date, most overdue first."""
        query = cli_query(
            NextPurchaseQuery,
            as_of=as_of,
            category=category,
            overdue_only=overdue,
            offset=offset,
            limit=limit,
        )
        with open_stores() as (settings, _session, events):
            page = service.next_purchase(events, query, tz=settings.tz)
        if as_json:
            print_json(page)
            return
        table = Table(
            title=_("Expected next orders as of {day} ({total:,} buyers)").format(
                day=page.as_of.isoformat(), total=page.total
            )
        )
        for column in (_("Person"), _("Last order"), _("Expected next"), _("Days overdue")):
            table.add_column(column)
        for row in page.items:
            table.add_row(
                row.person_id,
                row.last_order.isoformat(),
                "-" if row.expected_next is None else row.expected_next.isoformat(),
                "-" if row.days_overdue is None else str(row.days_overdue),
            )
        console.print(table)


_register()
