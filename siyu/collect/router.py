"""The tracking API, compatible with Segment's and RudderStack's HTTP specs: thin routes.

The body is read by hand (gzip, size limits, per-message errors), so each route documents
its body schema in ``openapi_extra`` instead of declaring a parsed parameter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from siyu.api.context import AppContext
from siyu.api.deps import Context
from siyu.collect.ingest import ingest_http
from siyu.collect.models import Batch, IngestResult, Message

router = APIRouter(prefix="/v1", tags=["collect"])

_PROBLEM = {"application/problem+json": {"schema": {"type": "object"}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "Malformed body, or (single calls) the message refused",
        "content": _PROBLEM,
    },
    401: {"description": "No, an unknown, a rotated or a revoked write key", "content": _PROBLEM},
    413: {
        "description": "Body over 5 MB (also decompressed) or over 1,000 messages",
        "content": _PROBLEM,
    },
    415: {"description": "Content-Encoding other than gzip", "content": _PROBLEM},
    503: {"description": "The event store is unavailable", "content": _PROBLEM},
}


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """``node`` with its ``$ref``s to ``$defs`` replaced by the definitions (no recursion in
    these models), so the schema stands alone inside the OpenAPI document."""
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inline(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in node.items() if key != "$defs"}
    if isinstance(node, list):
        return [_inline(value, definitions) for value in node]
    return node


def _body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    inlined = _inline(schema, schema.get("$defs", {}))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inlined}}}}


Handler = Callable[[Request, AppContext], Awaitable[IngestResult]]


def _route(path: str, summary: str, model: type[BaseModel]) -> Callable[[Handler], Handler]:
    return router.post(
        path,
        summary=summary,
        response_model=IngestResult,
        responses=RESPONSES,
        openapi_extra=_body(model),
    )


@_route("/track", "Record what a person did (Segment track)", Message)
async def track(request: Request, context: Context) -> IngestResult:
    return await ingest_http(request, context=context, kind="track")


@_route("/identify", "Tie a person to identifiers and traits (Segment identify)", Message)
async def identify(request: Request, context: Context) -> IngestResult:
    return await ingest_http(request, context=context, kind="identify")


@_route("/alias", "Link a previous id to a user id (Segment alias)", Message)
async def alias(request: Request, context: Context) -> IngestResult:
    return await ingest_http(request, context=context, kind="alias")


@_route("/page", "Record a page view (Segment page)", Message)
async def page(request: Request, context: Context) -> IngestResult:
    return await ingest_http(request, context=context, kind="page")


@_route("/screen", "Record an app screen view (Segment screen)", Message)
async def screen(request: Request, context: Context) -> IngestResult:
    return await ingest_http(request, context=context, kind="screen")


@_route("/batch", "Send up to 1,000 messages of any type at once", Batch)
async def batch(request: Request, context: Context) -> IngestResult:
    return await ingest_http(request, context=context, kind=None)


# Browsers on a brand's own domains post cross-origin: these paths answer CORS (siyu.api.app).
TRACKING_PATHS = frozenset(
    f"{router.prefix}/{name}" for name in ("track", "identify", "alias", "page", "screen", "batch")
)
SNIPPET = Path(__file__).parent / "static" / "siyu.js"
SNIPPET_CACHE = "public, max-age=3600"


@cache
def _snippet() -> tuple[bytes, str]:
    """The tracking snippet and its ETag, read once per process."""
    data = SNIPPET.read_bytes()
    return data, f'"{hashlib.sha256(data).hexdigest()[:32]}"'


@router.get(
    "/static/siyu.js",
    summary="The JavaScript tracking snippet for H5 pages and mini-programs",
    response_class=Response,
    responses={
        200: {
            "description": "The snippet (cached for an hour; revalidate with If-None-Match)",
            "content": {"application/javascript": {"schema": {"type": "string"}}},
        },
        304: {"description": "The copy the client holds (If-None-Match) is current"},
    },
)
def snippet(request: Request) -> Response:
    data, etag = _snippet()
    headers = {"ETag": etag, "Cache-Control": SNIPPET_CACHE}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="application/javascript", headers=headers)
