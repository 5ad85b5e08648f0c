"""``/v1/tiers`` and ``siyu tiers``: thin over :mod:`siyu.segments.tiers`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from rich.console import Console
from rich.table import Table

from siyu.api.deps import Context, DbSession, Events
from siyu.api.problems import documented
from siyu.core.i18n import gettext as _
from siyu.identity import service as identity
from siyu.segments import tiers
from siyu.segments.tiers import TierRun, TierScheme

router = APIRouter(prefix="/v1", tags=["tiers"])
PROBLEMS = documented(404, 422)
tiers_app = typer.Typer(
    help="Tiers: the scheme, moving people, movement matrix.", no_args_is_help=True
)
console = Console()


@router.get("/tiers/scheme", response_model=TierScheme, summary="The tier scheme in force")
async def get_scheme(ctx: Context) -> TierScheme:
    return tiers.load_scheme(ctx.settings.home)


@router.get("/tiers/touch-frequency", summary="Recommended touches per RFM group")
async def touch_frequency() -> dict[str, dict[str, Any]]:
    return tiers.TOUCH_FREQUENCY


@router.post(
    "/tiers/evaluate",
    response_model=TierRun,
    summary="Move people between tiers now",
    responses=PROBLEMS,
)
async def evaluate(events: Events, ctx: Context) -> TierRun:
    scheme = tiers.load_scheme(ctx.settings.home)
    return await run_in_threadpool(lambda: tiers.evaluate(events, scheme, tz=ctx.settings.tz))


@router.get(
    "/tiers/movement", summary="Tier movement matrix between two instants", responses=PROBLEMS
)
async def movement(
    start: datetime, end: datetime, events: Events, ctx: Context
) -> dict[str, dict[str, int]]:
    scheme = tiers.load_scheme(ctx.settings.home)
    return await run_in_threadpool(tiers.movement_matrix, events, scheme, start, end)


@router.get(
    "/people/{person_id}/tier", summary="A person's tier", tags=["people"], responses=PROBLEMS
)
async def person_tier(person_id: str, db_session: DbSession, events: Events) -> dict[str, Any]:
    person = identity.get_person_or_raise(db_session=db_session, person_id=person_id)
    return {"person_id": person.id, "tier": tiers.person_tier(events, person.id)}


def _register() -> None:
    from siyu.cli_stores import handle_errors, open_stores

    @tiers_app.command("evaluate")
    @handle_errors
    def evaluate_command(
        as_of: Annotated[datetime | None, typer.Option(help="As of this instant.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Move everybody between tiers (after `siyu tags refresh`)."""
        with open_stores() as (settings, _session, events):
            run = tiers.evaluate(
                events, tiers.load_scheme(settings.home), tz=settings.tz, as_of=as_of
            )
        if as_json:
            console.print_json(run.model_dump_json())
            return
        console.print(
            _(
                "{people:,} people: {changes:,} changes ({upgrades:,} up, {downgrades:,} down)"
            ).format(**run.model_dump())
        )
        table = Table(title=_("Tiers"))
        table.add_column(_("Tier"))
        table.add_column(_("People"), justify="right")
        for key, count in sorted(run.distribution.items()):
            table.add_row(key, f"{count:,}")
        console.print(table)

    @tiers_app.command("movement")
    @handle_errors
    def movement_command(
        start: Annotated[datetime, typer.Option("--from", help="From this instant.")],
        end: Annotated[datetime, typer.Option("--to", help="To this instant.")],
    ) -> None:
        """How many people moved from each tier to each other tier."""
        with open_stores() as (settings, _session, events):
            matrix = tiers.movement_matrix(events, tiers.load_scheme(settings.home), start, end)
        console.print_json(json.dumps(matrix, ensure_ascii=False))


_register()
