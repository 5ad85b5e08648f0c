"""``/v1/experiments``: thin over :mod:`~siyu.analytics.experiments.service` and
:mod:`~siyu.analytics.experiments.analysis`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.concurrency import run_in_threadpool

from siyu.analytics.experiments import analysis, cli, service
from siyu.analytics.experiments.models import (
    ExperimentCreate,
    ExperimentPage,
    ExperimentRead,
    ExperimentResults,
    ExperimentUpdate,
    ExposureBatch,
    ExposureResult,
    Kind,
    PowerRequest,
    PowerResult,
    Status,
)
from siyu.api.deps import Context, DbSession, Events
from siyu.api.problems import documented
from siyu.core.config import secret_key
from siyu.identity.service import derive_hash_key
from siyu.tags.definitions import KEY_PATTERN

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])
commands = cli  # the ``siyu experiments`` commands register when the router is imported
PROBLEMS = documented(404, 409, 422)


@router.get("", response_model=ExperimentPage, summary="List experiments", responses=PROBLEMS)
async def list_experiments(
    db_session: DbSession,
    experiment_status: Annotated[Status | None, Query(alias="status")] = None,
    kind: Kind | None = None,
    target_segment: Annotated[str | None, Query(pattern=KEY_PATTERN)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ExperimentPage:
    return service.list_experiments(
        db_session,
        status=experiment_status,
        kind=kind,
        target_segment=target_segment,
        offset=offset,
        limit=limit,
    )


@router.post(
    "",
    response_model=ExperimentRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create an experiment (a draft)",
    responses=PROBLEMS,
)
async def create_experiment(
    experiment_in: ExperimentCreate, db_session: DbSession, events: Events
) -> ExperimentRead:
    return await run_in_threadpool(service.create, db_session, events, experiment_in)


@router.post(
    "/power",
    response_model=PowerResult,
    summary="People (and days) needed to detect a change",
    responses=PROBLEMS,
)
async def power(request: PowerRequest) -> PowerResult:
    return analysis.plan(request)


@router.get("/{key}", response_model=ExperimentRead, summary="An experiment", responses=PROBLEMS)
async def get_experiment(key: str, db_session: DbSession) -> ExperimentRead:
    return service.get_or_raise(db_session, key)


@router.patch("/{key}", response_model=ExperimentRead, summary="Change a draft", responses=PROBLEMS)
async def update_experiment(
    key: str, experiment_in: ExperimentUpdate, db_session: DbSession, events: Events
) -> ExperimentRead:
    return await run_in_threadpool(service.update, db_session, events, key, experiment_in)


@router.delete(
    "/{key}", response_model=ExperimentRead, summary="Delete a draft", responses=PROBLEMS
)
async def delete_experiment(key: str, db_session: DbSession) -> ExperimentRead:
    return service.delete(db_session, key)


@router.post(
    "/{key}/start",
    response_model=ExperimentRead,
    summary="Start (draft → running)",
    responses=PROBLEMS,
)
async def start_experiment(key: str, db_session: DbSession) -> ExperimentRead:
    return service.start(db_session, key)


@router.post(
    "/{key}/stop",
    response_model=ExperimentRead,
    summary="Stop (running → stopped)",
    responses=PROBLEMS,
)
async def stop_experiment(key: str, db_session: DbSession) -> ExperimentRead:
    return service.stop(db_session, key)


@router.post(
    "/{key}/exposures",
    response_model=ExposureResult,
    summary="Log exposures (person ids or identifiers); each item succeeds or fails alone",
    responses=PROBLEMS,
)
async def log_exposures(
    key: str, batch: ExposureBatch, db_session: DbSession, events: Events, ctx: Context
) -> ExposureResult:
    hash_key = derive_hash_key(secret_key(ctx.settings))
    return await run_in_threadpool(
        lambda: service.expose(
            db_session,
            events,
            key,
            batch.people,
            hash_key=hash_key,
            tz=ctx.settings.tz,
            at=batch.at,
        )
    )


@router.get(
    "/{key}/results",
    response_model=ExperimentResults,
    summary="Each treatment against the control, per metric",
    responses=PROBLEMS,
)
async def experiment_results(
    key: str,
    db_session: DbSession,
    events: Events,
    alpha: Annotated[float, Query(gt=0, le=0.5)] = 0.05,
) -> ExperimentResults:
    experiment = service.get_or_raise(db_session, key)
    return await run_in_threadpool(lambda: analysis.results(events, experiment, alpha=alpha))
