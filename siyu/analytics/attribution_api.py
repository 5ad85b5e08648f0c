"""``/v1/analytics/attribution|roi|sources|costs`` and ``siyu analytics attribution|roi|
sources|costs``: thin over :mod:`siyu.analytics.attribution` and :mod:`siyu.analytics.costs`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from rich.table import Table

from siyu.analytics import attribution, costs
from siyu.analytics import sources as new_sources
from siyu.analytics.attribution import AttributionQuery, AttributionResult, Model, RuleModel
from siyu.analytics.cli_app import (
    FromOption,
    JsonOption,
    ToOption,
    analytics_app,
    console,
    print_json,
)
from siyu.analytics.costs import CostBatch, CostPage, CostStored, RoiQuery, RoiResult
from siyu.api.deps import Context, Events
from siyu.api.problems import documented
from siyu.core.errors import InvalidInputError
from siyu.core.i18n import N_
from siyu.core.i18n import gettext as _

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])
PROBLEMS = documented(404, 422)
costs_app = typer.Typer(help="Campaign costs: import and list.", no_args_is_help=True)
analytics_app.add_typer(costs_app, name="costs")


@router.post(
    "/attribution",
    response_model=AttributionResult,
    summary="Conversions and revenue per channel and campaign, every model side by side",
    responses=PROBLEMS,
)
async def attribute(query: AttributionQuery, events: Events, ctx: Context) -> AttributionResult:
    return await run_in_threadpool(lambda: attribution.attribute(events, query, tz=ctx.settings.tz))


@router.get(
    "/roi",
    response_model=RoiResult,
    summary="Cost, revenue, ROI, ROAS, CAC, LTV/CAC and payback per channel and campaign",
    responses=PROBLEMS,
)
async def roi(
    events: Events,
    ctx: Context,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    model: RuleModel = RuleModel.linear,
    window: Annotated[str, Query(min_length=2, max_length=12)] = "30d",
    half_life: Annotated[str, Query(min_length=2, max_length=12)] = "7d",
    conversion: Annotated[str, Query(min_length=1, max_length=64)] = "order_paid",
    subtract_refunds: bool = False,
    ltv_days: Annotated[int, Query(ge=1, le=730)] = 365,
) -> RoiResult:
    query = RoiQuery(
        start=start,
        end=end,
        model=model,
        window=window,
        half_life=half_life,
        conversion=conversion,
        subtract_refunds=subtract_refunds,
        ltv_days=ltv_days,
    )
    return await run_in_threadpool(lambda: costs.roi(events, query, tz=ctx.settings.tz))


@router.get(
    "/sources",
    response_model=new_sources.SourcesResult,
    summary="Where the people first seen in the period came from",
    responses=PROBLEMS,
)
async def sources(
    events: Events,
    ctx: Context,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> new_sources.SourcesResult:
    return await run_in_threadpool(
        lambda: new_sources.sources(
            events, tz=ctx.settings.tz, start=start, end=end, limit=limit, offset=offset
        )
    )


@router.post(
    "/costs",
    response_model=CostStored,
    summary="Store campaign costs (all or nothing; a known key is replaced)",
    responses=PROBLEMS,
)
async def store_costs(batch: CostBatch, events: Events) -> CostStored:
    return await run_in_threadpool(costs.store, events, batch.items)


@router.get("/costs", response_model=CostPage, summary="Stored campaign costs", responses=PROBLEMS)
async def list_costs(
    events: Events,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    channel: Annotated[str | None, Query(max_length=64)] = None,
    campaign: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> CostPage:
    return await run_in_threadpool(
        lambda: costs.list_costs(
            events,
            start=start,
            end=end,
            channel=channel,
            campaign=campaign,
            limit=limit,
            offset=offset,
        )
    )


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _register() -> None:
    from siyu.cli_stores import handle_errors, open_stores, read_text_file

    @analytics_app.command("attribution")
    @handle_errors
    def attribution_command(
        start: FromOption = None,
        end: ToOption = None,
        model: Annotated[
            Model | None, typer.Option(help="One model; all of them when omitted.")
        ] = None,
        window: Annotated[str, typer.Option(help="Lookback before each conversion.")] = "30d",
        half_life: Annotated[str, typer.Option(help="Time-decay half-life.")] = "7d",
        conversion: Annotated[str, typer.Option(help="The conversion event.")] = "order_paid",
        subtract_refunds: Annotated[
            bool, typer.Option(help="Net revenue of the orders' refunds.")
        ] = False,
        campaigns: Annotated[bool, typer.Option(help="Per campaign, not per channel.")] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Conversions and revenue credited to channels by each attribution model."""
        query = AttributionQuery(
            start=start,
            end=end,
            models=[model] if model else None,
            window=window,
            half_life=half_life,
            conversion=conversion,
            subtract_refunds=subtract_refunds,
        )
        with open_stores() as (settings, _session, events):
            result = attribution.attribute(events, query, tz=settings.tz)
        if as_json:
            print_json(result)
            return
        console.print(
            _("{start} – {end}: {conversions:,} conversions, revenue {revenue:,.2f}").format(
                start=result.period["start"],
                end=result.period["end"],
                conversions=result.conversions,
                revenue=result.revenue,
            )
        )
        table = Table(title=_("Attributed revenue (conversions)"))
        table.add_column(_("Channel"))
        if campaigns:
            table.add_column(_("Campaign"))
        for each in result.models:
            table.add_column(each.value, justify="right")
        for row in result.campaigns if campaigns else result.channels:
            cells = [row.channel] + ([row.campaign or "-"] if campaigns else [])
            for each in result.models:
                credit = row.credits[each]
                cells.append(f"{credit.revenue:,.2f} ({credit.conversions:,.1f})")
            table.add_row(*cells)
        console.print(table)

    @analytics_app.command("roi")
    @handle_errors
    def roi_command(
        start: FromOption = None,
        end: ToOption = None,
        model: Annotated[RuleModel, typer.Option(help="Attribution model.")] = RuleModel.linear,
        window: Annotated[str, typer.Option(help="Lookback before each conversion.")] = "30d",
        conversion: Annotated[str, typer.Option(help="The conversion event.")] = "order_paid",
        subtract_refunds: Annotated[
            bool, typer.Option(help="Net revenue of the orders' refunds.")
        ] = False,
        campaigns: Annotated[bool, typer.Option(help="Per campaign, not per channel.")] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Cost, revenue, ROI, ROAS, CAC, LTV/CAC and payback per channel."""
        query = RoiQuery(
            start=start,
            end=end,
            model=model,
            window=window,
            conversion=conversion,
            subtract_refunds=subtract_refunds,
        )
        with open_stores() as (settings, _session, events):
            result = costs.roi(events, query, tz=settings.tz)
        if as_json:
            print_json(result)
            return
        table = Table(title=_("Return on campaign costs ({model})").format(model=model.value))
        labels = [
            _("Channel"),
            _("Cost"),
            _("Revenue"),
            _("ROI"),
            _("ROAS"),
            _("New customers"),
            _("CAC"),
            _("LTV/CAC"),
            _("Payback days"),
        ]
        if campaigns:
            labels.insert(1, _("Campaign"))
        for index, label in enumerate(labels):
            table.add_column(label, justify="left" if index < (2 if campaigns else 1) else "right")
        for row in result.campaigns if campaigns else result.channels:
            cells = [
                row.channel,
                _number(row.cost),
                _number(row.revenue),
                _number(row.roi),
                _number(row.roas),
                _number(row.new_customers, 1),
                _number(row.cac),
                _number(row.ltv_cac),
                "-" if row.payback_days is None else str(row.payback_days),
            ]
            if campaigns:
                cells.insert(1, row.campaign or "-")
            table.add_row(*cells)
        console.print(table)
        for gap in result.gaps:
            console.print(
                _("No cost for {channel} on {days} days: {dates}").format(
                    channel=gap.channel,
                    days=len(gap.dates),
                    dates=", ".join(d.isoformat() for d in gap.dates[:10])
                    + (" …" if len(gap.dates) > 10 else ""),
                )
            )

    @analytics_app.command("sources")
    @handle_errors
    def sources_command(
        start: FromOption = None, end: ToOption = None, as_json: JsonOption = False
    ) -> None:
        """Where the people first seen in the period came from."""
        with open_stores() as (settings, _session, events):
            result = new_sources.sources(events, tz=settings.tz, start=start, end=end, limit=20)
        if as_json:
            print_json(result)
            return
        table = Table(title=_("New people by source ({people:,})").format(people=result.people))
        table.add_column(_("Source"))
        table.add_column(_("People"), justify="right")
        for row in result.channels:
            table.add_row(row.channel, f"{row.people:,}")
        console.print(table)

    @costs_app.command("import")
    @handle_errors
    def import_command(
        file: Annotated[Path, typer.Argument(help="CSV: date,channel,campaign,cost[,currency]")],
        dry_run: Annotated[bool, typer.Option(help="Check the file, store nothing.")] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Import campaign costs; nothing is stored when any row is wrong."""
        read = costs.read_csv(read_text_file(file))
        if read.errors:
            if as_json:
                print_json({"rows": read.rows, "stored": None, "errors": read.errors})
            else:
                table = Table(title=_("Problems in {path}").format(path=str(file)))
                for label in (_("Line"), _("Column"), _("Problem")):
                    table.add_column(label)
                for problem in read.errors:
                    table.add_row(str(problem["line"]), problem["column"], problem["reason"])
                console.print(table)
            raise InvalidInputError(
                N_("{count} problems in {path}: nothing was imported"),
                count=len(read.errors),
                path=str(file),
            )
        stored: CostStored | None = None
        if not dry_run:
            with open_stores() as (_settings, _session, events):
                stored = costs.store(events, read.items)
        if as_json:
            print_json({"rows": read.rows, "stored": stored and stored.model_dump(), "errors": []})
        elif stored is None:
            console.print(
                _("{rows:,} rows are valid (dry run: nothing stored)").format(rows=read.rows)
            )
        else:
            console.print(
                _("{rows:,} rows stored: {inserted:,} new, {replaced:,} replaced").format(
                    rows=stored.received, inserted=stored.inserted, replaced=stored.replaced
                )
            )

    @costs_app.command("list")
    @handle_errors
    def list_command(
        start: FromOption = None,
        end: ToOption = None,
        channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
        campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
        limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
        offset: Annotated[int, typer.Option(min=0)] = 0,
        as_json: JsonOption = False,
    ) -> None:
        """Stored campaign costs."""
        with open_stores() as (_settings, _session, events):
            page = costs.list_costs(
                events,
                start=start,
                end=end,
                channel=channel,
                campaign=campaign,
                limit=limit,
                offset=offset,
            )
        if as_json:
            print_json(page)
            return
        table = Table(title=_("Campaign costs ({total:,})").format(total=page.total))
        for label in (_("Date"), _("Channel"), _("Campaign"), _("Cost"), _("Currency")):
            table.add_column(label)
        for item in page.items:
            table.add_row(
                item.date.isoformat(),
                item.channel,
                item.campaign or "-",
                f"{item.cost:,.2f}",
                item.currency,
            )
        console.print(table)


_register()
