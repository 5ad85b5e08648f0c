"""``/v1/segments``: saved segments, live counts of unsaved rules, samples, evaluations, exports."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, model_validator

from siyu.api.deps import Context, DbSession, Events
from siyu.api.problems import documented
from siyu.segments import service
from siyu.segments.models import EvaluationRead, SegmentCreate, SegmentRead
from siyu.segments.rules import to_json, to_text
from siyu.tags.definitions import KEY_PATTERN

router = APIRouter(prefix="/v1/segments", tags=["segments"])
PROBLEMS = documented(404, 409, 422)


class RuleBody(BaseModel):
    """A rule as text (``rule_text``) or in its JSON form (``rule``)."""

    rule_text: str | None = Field(default=None, max_length=20_000)
    rule: dict[str, Any] | None = None
    sample: int = Field(default=0, ge=0, le=100)
    columns: list[Annotated[str, Field(pattern=KEY_PATTERN)]] = Field(default=[], max_length=20)

    @model_validator(mode="after")
    def _one_form(self) -> RuleBody:
        if (self.rule_text is None) == (self.rule is None):
            raise ValueError("give exactly one of rule_text and rule")
        return self


class CountRead(BaseModel):
    count: int
    rule_text: str
    rule: dict[str, Any]
    sample: list[dict[str, Any]] = []


class SegmentPage(BaseModel):
    items: list[SegmentRead]
    total: int
    offset: int
    limit: int


class Members(BaseModel):
    person_ids: list[str] = Field(min_length=1, max_length=100_000)
    replace: bool = True


@router.post(
    "/count",
    response_model=CountRead,
    summary="Count (and sample) an unsaved rule",
    responses=PROBLEMS,
)
async def count_rule(
    body: RuleBody, db_session: DbSession, events: Events, ctx: Context
) -> CountRead:
    rule = service.read_rule(text=body.rule_text, json_form=body.rule)

    def work() -> CountRead:
        world = service.world(db_session, events, tz=ctx.settings.tz)
        sample = service.sample(world, rule, size=body.sample, columns=body.columns)
        return CountRead(
            count=service.count(world, rule),
            rule_text=to_text(rule),
            rule=to_json(rule),
            sample=sample if body.sample else [],
        )

    return await run_in_threadpool(work)


@router.get("", response_model=SegmentPage, summary="List segments", responses=PROBLEMS)
async def list_segments(
    db_session: DbSession,
    segment_status: Annotated[
        Literal["active", "archived"] | None, Query(alias="status")
    ] = "active",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SegmentPage:
    items, total = service.list_segments(
        db_session, status=segment_status, offset=offset, limit=limit
    )
    return SegmentPage(items=items, total=total, offset=offset, limit=limit)


@router.post(
    "",
    response_model=SegmentRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a segment (a rule, or a static list)",
    responses=PROBLEMS,
)
async def create_segment(
    spec: SegmentCreate, db_session: DbSession, events: Events, ctx: Context
) -> SegmentRead:
    world = service.world(db_session, events, tz=ctx.settings.tz)
    return await run_in_threadpool(service.create_segment, db_session, world, spec)


@router.get("/{key}", response_model=SegmentRead, summary="A segment", responses=PROBLEMS)
async def get_segment(key: str, db_session: DbSession) -> SegmentRead:
    return service.get_segment(db_session, key)


@router.put("/{key}/rule", response_model=SegmentRead, summary="Change a rule", responses=PROBLEMS)
async def update_rule(
    key: str, body: RuleBody, db_session: DbSession, events: Events, ctx: Context
) -> SegmentRead:
    rule = service.read_rule(text=body.rule_text, json_form=body.rule)
    world = service.world(db_session, events, tz=ctx.settings.tz)
    return await run_in_threadpool(service.update_rule, db_session, world, key, rule)


@router.delete(
    "/{key}", response_model=SegmentRead, summary="Archive (undo: restore)", responses=PROBLEMS
)
async def archive_segment(key: str, db_session: DbSession) -> SegmentRead:
    return service.archive_segment(db_session, key)


@router.post("/{key}/restore", response_model=SegmentRead, summary="Restore", responses=PROBLEMS)
async def restore_segment(key: str, db_session: DbSession) -> SegmentRead:
    return service.restore_segment(db_session, key)


@router.get("/{key}/count", summary="Live member count", responses=PROBLEMS)
async def count_members(
    key: str, db_session: DbSession, events: Events, ctx: Context
) -> dict[str, int | str]:
    def work() -> int:
        world = service.world(db_session, events, tz=ctx.settings.tz)
        return int(service.members_of(world, key).count().to_pyarrow().as_py())

    return {"key": key, "count": await run_in_threadpool(work)}


@router.post(
    "/{key}/evaluate",
    response_model=EvaluationRead,
    summary="Snapshot members now; record who entered and exited",
    responses=PROBLEMS,
)
async def evaluate(key: str, db_session: DbSession, events: Events, ctx: Context) -> EvaluationRead:
    world = service.world(db_session, events, tz=ctx.settings.tz)
    return await run_in_threadpool(service.evaluate, world, key)


@router.get(
    "/{key}/evaluations",
    response_model=list[EvaluationRead],
    summary="Past evaluations",
    responses=PROBLEMS,
)
async def list_evaluations(
    key: str, db_session: DbSession, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> list[EvaluationRead]:
    return service.evaluations(db_session, key, limit=limit)


@router.get("/{key}/changes", summary="Who entered or exited, newest first", responses=PROBLEMS)
async def list_changes(
    key: str,
    db_session: DbSession,
    events: Events,
    change: Literal["entered", "exited"] | None = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    service.get_segment(db_session, key)
    return await run_in_threadpool(
        lambda: service.changes(events, key, change=change, offset=offset, limit=limit)
    )


@router.put("/{key}/members", summary="Set a static segment's members", responses=PROBLEMS)
async def upload_members(
    key: str, body: Members, db_session: DbSession, events: Events
) -> dict[str, int]:
    return await run_in_threadpool(
        lambda: service.upload_members(
            db_session, events, key, body.person_ids, replace=body.replace
        )
    )


@router.get(
    "/{key}/export",
    summary="Members as CSV (identifiers masked), with chosen tag columns",
    responses={**PROBLEMS, 200: {"content": {"text/csv": {}}}},
    response_class=StreamingResponse,
)
async def export(
    key: str,
    db_session: DbSession,
    events: Events,
    ctx: Context,
    columns: Annotated[list[str] | None, Query(max_length=50)] = None,
) -> StreamingResponse:
    def work() -> Any:
        world = service.world(db_session, events, tz=ctx.settings.tz)
        return service.export_rows(world, key, columns=columns or ())

    data = await run_in_threadpool(work)
    return StreamingResponse(
        service.csv_chunks(data),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="segment-{key}.csv"'},
    )
