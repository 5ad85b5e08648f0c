"""``POST /v1/analytics/funnels`` and ``siyu analytics funnel``: thin over
:mod:`siyu.analytics.funnels`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import typer
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from rich.table import Table

from siyu.analytics import funnels
from siyu.analytics.cli_app import (
    FromOption,
    JsonOption,
    ToOption,
    analytics_app,
    console,
    print_json,
)
from siyu.analytics.common import AnalysisError, Grain
from siyu.analytics.funnels import FunnelDefinition, FunnelResult
from siyu.api.deps import Context, DbSession, Events
from siyu.api.problems import documented
from siyu.core.i18n import N_
from siyu.core.i18n import gettext as _
from siyu.segments.models import SegmentRead
from siyu.tags.definitions import KEY_PATTERN

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])
PROBLEMS = documented(404, 422)


class DropoffSegmentCreate(BaseModel):
    """Save the people who dropped off before ``step`` as a static segment."""

    model_config = ConfigDict(extra="forbid")

    funnel: FunnelDefinition
    step: int = Field(ge=2, le=funnels.MAX_STEPS, description="1-based: dropped before it")
    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=200)


class DropoffSegmentRead(BaseModel):
    segment: SegmentRead
    members: int
    unknown: int


@router.post(
    "/funnels", response_model=FunnelResult, summary="Compute a funnel", responses=PROBLEMS
)
async def compute_funnel(
    definition: FunnelDefinition, events: Events, ctx: Context
) -> FunnelResult:
    tz = ctx.settings.tz
    return await run_in_threadpool(lambda: funnels.compute(events, definition, tz=tz))


@router.post(
    "/funnels/dropoff-segment",
    response_model=DropoffSegmentRead,
    status_code=201,
    summary="Save a funnel's drop-off people as a static segment",
    responses=PROBLEMS,
)
async def dropoff_segment(
    spec: DropoffSegmentCreate, events: Events, db_session: DbSession, ctx: Context
) -> DropoffSegmentRead:
    tz = ctx.settings.tz
    segment, result = await run_in_threadpool(
        lambda: funnels.save_dropoff_segment(
            db_session, events, spec.funnel, step=spec.step, key=spec.key, name=spec.name, tz=tz
        )
    )
    return DropoffSegmentRead(segment=segment, members=result["members"], unknown=result["unknown"])


def definition_from_options(
    steps: str,
    *,
    window: str,
    mode: str,
    start: date | None,
    end: date | None,
    breakdown: str | None = None,
    where: list[str] | None = None,
    exclude: list[str] | None = None,
    grain: Grain = Grain.day,
) -> FunnelDefinition:
    """A definition from the command line: ``--steps a,b,c``, ``--where "2:amount >= 100"``
    (the step's 1-based position, a colon, a condition), ``--exclude refund``."""
    names = [name.strip() for name in steps.split(",") if name.strip()]
    conditions: dict[int, list[object]] = {}
    for text in where or []:
        position, _sep, condition = text.partition(":")
        if not position.strip().isdigit() or not 1 <= int(position) <= len(names):
            raise AnalysisError(
                N_("{value!r}: begin a condition with its step and a colon, like 2:amount >= 100"),
                field="where",
                value=text,
            )
        conditions.setdefault(int(position) - 1, []).append(funnels.parse_condition(condition))
    try:
        return FunnelDefinition.model_validate(
            {
                "steps": [
                    {"event": name, "where": conditions.get(index, [])}
                    for index, name in enumerate(names)
                ],
                "window": window,
                "mode": mode,
                "exclusions": [{"event": name} for name in exclude or []],
                "breakdown": breakdown,
                "grain": grain,
                "start": start,
                "end": end,
            }
        )
    except ValueError as exc:
        raise AnalysisError(
            N_("Invalid funnel: {reason}"), field="steps", reason=str(exc)
        ) from None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def print_funnel(result: FunnelResult) -> None:
    """Steps, breakdown rows and the time-to-convert histogram as tables."""
    period = result.period
    table = Table(title=_("Funnel {start} – {end}").format(**period))
    for title in (N_("Step"), N_("Event"), N_("People"), N_("From start"), N_("From previous"),
                  N_("Dropped"), N_("Median time")):  # fmt: skip
        table.add_column(_(title), justify="left" if title in ("Step", "Event") else "right")
    for step in result.steps:
        table.add_row(
            str(step.step),
            step.label,
            f"{step.count:,}",
            _percent(step.conversion_from_start),
            _percent(step.conversion_from_previous),
            f"{step.dropped:,}",
            _duration(step.median_seconds_from_previous),
        )
    console.print(table)
    if result.breakdown_rows:
        rows = Table(title=_("By {field}").format(field=result.breakdown))
        rows.add_column(_("Value"))
        for step in result.steps:
            rows.add_column(step.label, justify="right")
        rows.add_column(_("Conversion"), justify="right")
        for row in result.breakdown_rows:
            label = _("(not set)") if row.value is None else row.value
            if row.value == funnels.OTHER:
                label = _("(other)")
            rows.add_row(label, *(f"{c:,}" for c in row.counts), _percent(row.conversion))
        console.print(rows)
    ttc = result.time_to_convert
    console.print(
        _("Time to convert: median {median}, p90 {p90} ({people:,} people)").format(
            median=_duration(ttc.median_seconds), p90=_duration(ttc.p90_seconds), people=ttc.people
        )
    )


def _register() -> None:
    from siyu.cli_stores import handle_errors, open_stores

    @analytics_app.command("funnel")
    @handle_errors
    def funnel_command(
        steps: Annotated[
            str, typer.Option(help="Event names in order, comma-separated (2 to 20).")
        ],
        start: FromOption = None,
        end: ToOption = None,
        window: Annotated[str, typer.Option(help="Conversion window: 30m, 24h, 7d, 2w.")] = "7d",
        mode: Annotated[
            Literal["any", "strict"],
            typer.Option(help="any: later steps any time after; strict: the very next step."),
        ] = "any",
        breakdown: Annotated[
            str | None, typer.Option(help="channel, utm_source, category, properties.KEY …")
        ] = None,
        where: Annotated[
            list[str] | None,
            typer.Option(help="A step's condition, e.g. \"2:properties.category = '美妆'\"."),
        ] = None,
        exclude: Annotated[
            list[str] | None, typer.Option(help="An event that disqualifies an attempt.")
        ] = None,
        grain: Annotated[Grain, typer.Option(help="Trend grain.")] = Grain.day,
        dropoff_step: Annotated[
            int | None,
            typer.Option(help="Save who dropped off before this step (with --segment)."),
        ] = None,
        segment: Annotated[
            str | None, typer.Option(help="Key of the static segment for --dropoff-step.")
        ] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Conversion through ordered steps within a window."""
        definition = definition_from_options(
            steps,
            window=window,
            mode=mode,
            start=start,
            end=end,
            breakdown=breakdown,
            where=where,
            exclude=exclude,
            grain=grain,
        )
        if (dropoff_step is None) != (segment is None):
            raise AnalysisError(N_("Give --dropoff-step and --segment together"), field="segment")
        with open_stores() as (settings, session, events):
            result = funnels.compute(events, definition, tz=settings.tz)
            saved = None
            if dropoff_step is not None and segment is not None:
                saved = funnels.save_dropoff_segment(
                    session,
                    events,
                    definition,
                    step=dropoff_step,
                    key=segment,
                    name=segment,
                    tz=settings.tz,
                )
        if as_json:
            print_json(result)
            return
        print_funnel(result)
        if saved is not None:
            console.print(
                _("Segment {key} saved: {members:,} people").format(
                    key=saved[0].key, members=saved[1]["members"]
                )
            )


_register()
