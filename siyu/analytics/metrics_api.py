"""``/v1/analytics/metrics`` and ``siyu analytics metrics``: thin over :mod:`.metrics`."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from rich.table import Table

from siyu.analytics import metrics
from siyu.analytics.cli_app import (
    FromOption,
    JsonOption,
    ToOption,
    analytics_app,
    console,
    print_json,
)
from siyu.analytics.common import Grain, last_event_date, resolve_period
from siyu.analytics.metrics import MetricInfo, MetricQuery, MetricResult, Unit
from siyu.api.deps import Context, Events
from siyu.api.problems import documented
from siyu.core.i18n import gettext as _
from siyu.events import EventStore

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])
PROBLEMS = documented(422)


def run(events: EventStore, query: MetricQuery, tz: ZoneInfo) -> MetricResult:
    """The query over its period (default: the last 30 days of data) in ``tz``."""
    period = resolve_period(events, tz, query.start, query.end)
    return metrics.compute(events, period, query, last_day=last_event_date(events, tz))


@router.get("/metrics/catalog", response_model=list[MetricInfo], summary="Every metric")
async def metric_catalog() -> list[MetricInfo]:
    return metrics.catalog()


@router.get(
    "/metrics",
    response_model=MetricResult,
    summary="Metrics over a period, compared, by grain, optionally broken down",
    responses=PROBLEMS,
)
async def get_metrics(
    events: Events,
    ctx: Context,
    metric: Annotated[
        list[str] | None,
        Query(description="Metric keys (default: the overview set)", max_length=40),
    ] = None,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    grain: Grain = Grain.day,
    dimension: Annotated[str | None, Query(max_length=80)] = None,
    channel: Annotated[str | None, Query(max_length=32)] = None,
    compare: bool = True,
) -> MetricResult:
    query = MetricQuery(
        metrics=metric or list(metrics.OVERVIEW),
        start=start,
        end=end,
        grain=grain,
        dimension=dimension,
        channel=channel,
        compare=compare,
    )
    return await run_in_threadpool(run, events, query, ctx.settings.tz)


def format_value(value: float | None, unit: Unit) -> str:
    """A metric value for people: percentages, money with two decimals, counts with commas."""
    if value is None:
        return "—"
    if unit is Unit.rate:
        return f"{value:.1%}"
    if unit is Unit.money:
        return f"¥{value:,.2f}"
    if unit is Unit.per_person:
        return f"{value:,.2f}"
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.1f}"


def format_change(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1%}"


def _register() -> None:
    from siyu.cli_stores import handle_errors, open_stores

    @analytics_app.command("metrics")
    @handle_errors
    def metrics_command(
        metric: Annotated[
            list[str] | None,
            typer.Option("--metric", "-m", help="A metric key (repeat); default: the overview."),
        ] = None,
        start: FromOption = None,
        end: ToOption = None,
        grain: Annotated[Grain, typer.Option(help="Series grain.")] = Grain.day,
        dimension: Annotated[
            str | None, typer.Option(help="Break down by: channel, tier, segment:KEY, …")
        ] = None,
        channel: Annotated[str | None, typer.Option(help="Only this channel's events.")] = None,
        catalog: Annotated[bool, typer.Option("--catalog", help="List the metrics.")] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Core metrics for a period with the previous period and last year beside them."""
        if catalog:
            _print_catalog(as_json)
            return
        query = MetricQuery(
            metrics=metric or list(metrics.OVERVIEW),
            start=start,
            end=end,
            grain=grain,
            dimension=dimension,
            channel=channel,
        )
        with open_stores() as (settings, _session, events):
            result = run(events, query, settings.tz)
        if as_json:
            print_json(result)
            return
        _print_result(result)


def _print_catalog(as_json: bool) -> None:
    items = metrics.catalog()
    if as_json:
        print_json([item.model_dump(mode="json") for item in items])
        return
    table = Table(title=_("Metrics"))
    for column in (_("Key"), _("Metric"), _("Group"), _("Description")):
        table.add_column(column)
    for item in items:
        table.add_row(item.key, item.label, item.family_label, item.description)
    console.print(table)


def _print_result(result: MetricResult) -> None:
    period = result.period
    table = Table(title=_("Metrics {start} – {end}").format(**period))
    table.add_column(_("Metric"))
    table.add_column(_("Value"), justify="right")
    table.add_column(_("vs previous"), justify="right")
    table.add_column(_("vs last year"), justify="right")
    for value in result.metrics:
        table.add_row(
            value.label,
            format_value(value.value, value.unit),
            format_change(value.change),
            format_change(value.year_change),
        )
    console.print(table)
    if result.breakdown:
        units = {m.key: m.unit for m in result.metrics}
        labels = {m.key: m.label for m in result.metrics}
        breakdown = Table(title=_("By {dimension}").format(dimension=result.dimension))
        breakdown.add_column(str(result.dimension))
        for key in labels:
            breakdown.add_column(labels[key], justify="right")
        for row in result.breakdown:
            breakdown.add_row(
                row.value, *(format_value(row.metrics.get(k), units[k]) for k in labels)
            )
        console.print(breakdown)


_register()
