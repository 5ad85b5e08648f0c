"""``/v1/tags``: definitions, refresh, stats, history; ``/v1/people/{id}/tags``: values."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from siyu.api.deps import Context, DbSession, Events, RowId
from siyu.api.problems import documented
from siyu.identity import service as identity
from siyu.tags import runner, service
from siyu.tags.definitions import KEY_PATTERN, Category, Status, TagDefinition
from siyu.tags.models import TagRefreshRead
from siyu.tags.service import RefreshOptions, TagRead

router = APIRouter(tags=["tags"])
# Who changed a definition, in version history (until API keys name their owner).
API_ACTOR = "api"
Key = Annotated[str, Field(pattern=KEY_PATTERN)]
PROBLEMS = documented(404, 409, 422)


class TagPage(BaseModel):
    items: list[TagRead]
    total: int
    offset: int
    limit: int


class VersionRead(BaseModel):
    version: int
    change: str
    changed_by: str
    changed_at: datetime
    definition: dict[str, Any]


class RefreshRequest(BaseModel):
    mode: Literal["full", "incremental"] = "full"
    tags: list[Annotated[str, Field(pattern=KEY_PATTERN)]] | None = Field(
        default=None, max_length=1000
    )
    as_of: datetime | None = None


class Assignments(BaseModel):
    values: dict[str, Any] = Field(min_length=1, max_length=10_000)


class PersonTags(BaseModel):
    person_id: str
    tags: dict[str, Any]


@router.get(
    "/v1/tags",
    response_model=TagPage,
    summary="List tags (filter, sort, page)",
    responses=PROBLEMS,
)
async def list_tags(
    db_session: DbSession,
    category: Category | None = None,
    tag_status: Annotated[Status | None, Query(alias="status")] = Status.ACTIVE,
    search: Annotated[str | None, Query(max_length=100)] = None,
    sort: Literal["key", "name", "category", "updated"] = "key",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> TagPage:
    service.ensure_builtin(db_session)
    items, total = service.list_tags(
        db_session,
        category=category.value if category else None,
        status=tag_status.value if tag_status else None,
        search=search,
        sort=sort,
        offset=offset,
        limit=limit,
    )
    return TagPage(items=items, total=total, offset=offset, limit=limit)


@router.post(
    "/v1/tags",
    response_model=TagRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a tag",
    responses=PROBLEMS,
)
async def create_tag(definition: TagDefinition, db_session: DbSession) -> TagRead:
    return service.create_tag(db_session, definition, by=API_ACTOR)


@router.post(
    "/v1/tags/refresh",
    response_model=TagRefreshRead,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a tag refresh (full or incremental); poll /v1/tags/refreshes/{id}",
    responses=PROBLEMS,
)
async def refresh(
    body: RefreshRequest, db_session: DbSession, events: Events, ctx: Context
) -> TagRefreshRead:
    options = RefreshOptions(
        tz=ctx.settings.tz, as_of=body.as_of, mode=body.mode, keys=body.tags or None
    )
    service.ensure_idle()
    run = service.queue_refresh(db_session, events, options)
    db_session.commit()  # the worker thread reads the queued run from its own session
    started = TagRefreshRead.model_validate(run)
    runner.start(ctx.database, events, run.id, options)
    return started


@router.get(
    "/v1/tags/refreshes",
    response_model=list[TagRefreshRead],
    summary="Recent tag refreshes, newest first",
    responses=PROBLEMS,
)
async def list_refreshes(
    db_session: DbSession, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> list[TagRefreshRead]:
    return service.list_refreshes(db_session, limit=limit)


@router.get(
    "/v1/tags/refreshes/{run_id}",
    response_model=TagRefreshRead,
    summary="One refresh: queued, running, done or failed",
    responses=PROBLEMS,
)
async def get_refresh(run_id: RowId, db_session: DbSession) -> TagRefreshRead:
    return service.get_refresh(db_session, run_id)


@router.get("/v1/tags/{key}", response_model=TagRead, summary="A tag", responses=PROBLEMS)
async def get_tag(key: str, db_session: DbSession) -> TagRead:
    service.ensure_builtin(db_session)
    return service.get_tag(db_session, key)


@router.put("/v1/tags/{key}", response_model=TagRead, summary="Edit a tag", responses=PROBLEMS)
async def update_tag(key: str, definition: TagDefinition, db_session: DbSession) -> TagRead:
    return service.update_tag(db_session, key, definition, by=API_ACTOR)


@router.delete(
    "/v1/tags/{key}",
    response_model=TagRead,
    summary="Retire a tag (undo: restore)",
    responses=PROBLEMS,
)
async def retire_tag(key: str, db_session: DbSession) -> TagRead:
    return service.retire_tag(db_session, key, by=API_ACTOR)


@router.post(
    "/v1/tags/{key}/restore",
    response_model=TagRead,
    summary="Restore a retired tag",
    responses=PROBLEMS,
)
async def restore_tag(key: str, db_session: DbSession) -> TagRead:
    return service.restore_tag(db_session, key, by=API_ACTOR)


@router.get(
    "/v1/tags/{key}/versions",
    response_model=list[VersionRead],
    summary="A tag's versions",
    responses=PROBLEMS,
)
async def tag_versions(key: str, db_session: DbSession) -> list[VersionRead]:
    return [
        VersionRead.model_validate(v, from_attributes=True)
        for v in service.versions(db_session, key)
    ]


@router.get("/v1/tags/{key}/stats", summary="Coverage and distribution", responses=PROBLEMS)
async def tag_stats(key: str, db_session: DbSession, events: Events) -> dict[str, Any]:
    service.get_tag(db_session, key)
    rows = await run_in_threadpool(service.stats, events, key)
    return rows[0] if rows else {"tag_key": key, "people": 0, "covered": 0, "coverage": 0.0}


@router.get(
    "/v1/tags/{key}/history",
    summary="Who changed to a value (e.g. became 重要价值客户 last week)",
    responses=PROBLEMS,
)
async def tag_history(
    key: str,
    db_session: DbSession,
    events: Events,
    value: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    service.get_tag(db_session, key)
    return await run_in_threadpool(
        lambda: service.history(
            events, key=key, value=value, since=since, until=until, offset=offset, limit=limit
        )
    )


@router.put(
    "/v1/tags/{key}/assignments",
    summary="Give people values of a manual tag (person id → value)",
    responses=PROBLEMS,
)
async def assign(key: str, body: Assignments, db_session: DbSession) -> dict[str, int]:
    return {"assigned": service.assign(db_session, key, body.values, by=API_ACTOR)}


@router.get(
    "/v1/people/{person_id}/tags",
    response_model=PersonTags,
    summary="A person's current tags by key",
    tags=["people"],
    responses=PROBLEMS,
)
async def person_tags(person_id: str, db_session: DbSession, events: Events) -> PersonTags:
    person = identity.get_person_or_raise(db_session=db_session, person_id=person_id)
    values = await run_in_threadpool(service.person_tags, events, person.id)
    return PersonTags(person_id=person.id, tags=values)
