"""``POST /v1/analytics/paths`` and ``siyu analytics paths``: thin over
:mod:`siyu.analytics.paths`."""

from __future__ import annotations

from typing import Annotated

import typer
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from rich.table import Table

from siyu.analytics import paths
from siyu.analytics.cli_app import (
    FromOption,
    JsonOption,
    ToOption,
    analytics_app,
    console,
    print_json,
)
from siyu.analytics.common import AnalysisError
from siyu.analytics.funnels_api import PROBLEMS
from siyu.analytics.paths import PathQuery, PathResult
from siyu.api.deps import Context, Events
from siyu.core.i18n import N_
from siyu.core.i18n import gettext as _

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


@router.post(
    "/paths",
    response_model=PathResult,
    summary="Top paths after or before an event",
    responses=PROBLEMS,
)
async def compute_paths(query: PathQuery, events: Events, ctx: Context) -> PathResult:
    tz = ctx.settings.tz
    return await run_in_threadpool(lambda: paths.compute(events, query, tz=tz))


def print_paths(result: PathResult) -> None:
    direction = _("before") if result.before else _("after")
    table = Table(
        title=_("Paths {direction} {event} ({people:,} people)").format(
            direction=direction, event=result.start_event, people=result.people
        )
    )
    table.add_column(_("Path"))
    table.add_column(_("People"), justify="right")
    table.add_column(_("Share"), justify="right")
    for row in result.paths:
        share = "-" if row.share is None else f"{row.share:.1%}"
        table.add_row(" → ".join(row.events), f"{row.count:,}", share)
    console.print(table)


def _register() -> None:
    from siyu.cli_stores import handle_errors, open_stores

    @analytics_app.command("paths")
    @handle_errors
    def paths_command(
        start_event: Annotated[
            str, typer.Option("--start", help="The anchor event, e.g. page_view.")
        ],
        steps: Annotated[int, typer.Option(help="Path length, the anchor included (2 to 10).")] = 4,
        before: Annotated[
            bool, typer.Option("--before", help="Paths leading to the event.")
        ] = False,
        keep_repeats: Annotated[
            bool, typer.Option("--keep-repeats", help="Do not merge a run of one event name.")
        ] = False,
        exclude: Annotated[list[str] | None, typer.Option(help="Leave these events out.")] = None,
        top: Annotated[int, typer.Option(help="How many top paths.")] = 20,
        start: FromOption = None,
        end: ToOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """The most common paths after (or before) an event."""
        try:
            query = PathQuery(
                start_event=start_event,
                steps=steps,
                before=before,
                collapse=not keep_repeats,
                exclude=exclude or [],
                top=top,
                start=start,
                end=end,
            )
        except ValidationError as exc:
            raise AnalysisError(
                N_("Invalid paths query: {reason}"),
                field="steps",
                reason="; ".join(str(e["msg"]) for e in exc.errors()),
            ) from None
        with open_stores() as (settings, _session, events):
            result = paths.compute(events, query, tz=settings.tz)
        if as_json:
            print_json(result)
            return
        print_paths(result)


_register()
