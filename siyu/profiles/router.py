"""``/v1/people``: a person's profile by OneID or by any identifier."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from siyu.api.deps import Context, DbSession, Events
from siyu.api.problems import documented
from siyu.core.config import secret_key
from siyu.identity.service import derive_hash_key
from siyu.profiles import service
from siyu.profiles.service import ProfileRead
from siyu.profiles.traits import load_trait_rules

router = APIRouter(prefix="/v1/people", tags=["people"])
IDENTIFIER_PATTERN = (
    r"^(member_no|unionid|openid|wecom_external_userid|phone|email|device_id|anonymous_id"
    r"|custom:[a-z][a-z0-9_]{0,39}):.+$"
)


def hash_key(context: Context) -> bytes:
    return derive_hash_key(secret_key(context.settings))


HashKey = Annotated[bytes, Depends(hash_key)]
PROBLEMS = documented(404, 503)


@router.get(
    "/{person_id}",
    response_model=ProfileRead,
    summary="A person's profile (OneID)",
    responses=PROBLEMS,
)
async def get_person(
    person_id: str, db_session: DbSession, events: Events, ctx: Context
) -> ProfileRead:
    return await run_in_threadpool(
        service.profile,
        db_session=db_session,
        events=events,
        person_id=person_id,
        rules=load_trait_rules(ctx.settings.home),
    )


@router.get(
    "", response_model=ProfileRead, summary="Find a person by an identifier", responses=PROBLEMS
)
async def find_person(
    db_session: DbSession,
    events: Events,
    ctx: Context,
    key: HashKey,
    identifier: Annotated[
        str,
        Query(
            description="TYPE:VALUE, e.g. phone:13800138000",
            max_length=300,
            pattern=IDENTIFIER_PATTERN,
        ),
    ],
) -> ProfileRead:
    person_id = service.find_person_id(db_session=db_session, hash_key=key, identifier=identifier)
    return await run_in_threadpool(
        service.profile,
        db_session=db_session,
        events=events,
        person_id=person_id,
        rules=load_trait_rules(ctx.settings.home),
    )
