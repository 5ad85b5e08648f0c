"""Liveness, readiness and status."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from siyu import __version__
from siyu.api.deps import Context
from siyu.api.problems import problem_response
from siyu.core.errors import SiyuError
from siyu.core.i18n import gettext
from siyu.store.migrate import require_current

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Check(BaseModel):
    status: Literal["ok", "failing"]
    reason: str | None = None
    hint: str | None = None


class Readiness(BaseModel):
    status: Literal["ready"]
    checks: dict[str, Check]


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
def healthz() -> Health:
    return Health(status="ok", version=__version__)


def _check(probe: Any) -> Check:
    try:
        probe()
    except SiyuError as exc:
        return Check(status="failing", reason=exc.render(), hint=exc.render_hint())
    return Check(status="ok")


def _events_probe(context: Any) -> Any:
    def probe() -> None:
        if context.events is None:
            raise context.events_error
        context.events.ping()

    return probe


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: both stores answer and the schema is current",
    responses={
        503: {"description": "A store is unavailable", "content": {"application/problem+json": {}}}
    },
)
def readyz(request: Request, context: Context) -> Readiness | JSONResponse:
    def database_probe() -> None:
        context.database.ping()
        require_current(context.database)

    checks = {"database": _check(database_probe), "events": _check(_events_probe(context))}
    if all(check.status == "ok" for check in checks.values()):
        return Readiness(status="ready", checks=checks)
    failing = [name for name, check in checks.items() if check.status != "ok"]
    return problem_response(
        request,
        status=503,
        code="not_ready",
        title=gettext("Not ready"),
        detail="; ".join(f"{name}: {checks[name].reason}" for name in failing),
        extra={
            "checks": {name: check.model_dump(exclude_none=True) for name, check in checks.items()}
        },
    )
