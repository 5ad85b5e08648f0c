"""Inbound webhook routes: ``/v1/webhooks/wecom/{id}`` (GET check, POST callback) and
``/v1/webhooks/orders/{id}``. Thin: read the body (1 MB at most), call one service, append."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from siyu.api.deps import DbSession, Events, SettingsDep
from siyu.collect.webhooks import service
from siyu.collect.webhooks.exceptions import WebhookPayloadTooLargeError
from siyu.collect.webhooks.secrets import SecretBox, secret_box
from siyu.core.config import secret_key
from siyu.core.i18n import N_


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {}}}


PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: _problem("Malformed XML or JSON, or XML with a DTD or entities"),
    401: _problem("Signature missing or wrong; nothing is stored"),
    404: _problem("No endpoint of this id and kind"),
    413: _problem("Body larger than 1 MB"),
    503: _problem("The event store is unavailable; the sender retries"),
}

router = APIRouter(prefix=service.ROUTE_PREFIX, tags=["webhooks"], responses=PROBLEMS)


def get_secret_box(settings: SettingsDep) -> SecretBox:
    return secret_box(secret_key(settings))


Box = Annotated[SecretBox, Depends(get_secret_box)]


async def read_body(request: Request, limit: int = service.MAX_BODY_BYTES) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    too_large = WebhookPayloadTooLargeError(
        N_("The body is larger than {limit} bytes"), limit=limit
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@router.get("/wecom/{endpoint_id}", response_class=PlainTextResponse)
def wecom_verify_url(
    endpoint_id: str, request: Request, db_session: DbSession, box: Box
) -> PlainTextResponse:
    """WeCom's URL check: answer the decrypted ``echostr``."""
    echo = service.verify_wecom_url(
        db_session=db_session, endpoint_id=endpoint_id, query=request.query_params, box=box
    )
    return PlainTextResponse(echo)


@router.post("/wecom/{endpoint_id}", response_class=PlainTextResponse)
async def wecom_callback(
    endpoint_id: str, request: Request, db_session: DbSession, events: Events, box: Box
) -> PlainTextResponse:
    """A WeCom callback (encrypted XML); answered ``success`` once its events are stored."""
    body = await read_body(request)
    delivery = await run_in_threadpool(
        service.receive_wecom,
        db_session=db_session,
        endpoint_id=endpoint_id,
        query=request.query_params,
        body=body,
        box=box,
    )
    if delivery.events is not None:
        await run_in_threadpool(events.append, delivery.events)
    return PlainTextResponse(delivery.reply)


@router.post("/orders/{endpoint_id}")
async def order_webhook(
    endpoint_id: str, request: Request, db_session: DbSession, events: Events, box: Box
) -> Response:
    """An order or refund from a shop, signed with HMAC-SHA256 over the raw body."""
    body = await read_body(request)
    delivery = await run_in_threadpool(
        service.receive_order,
        db_session=db_session,
        endpoint_id=endpoint_id,
        headers=request.headers,
        body=body,
        box=box,
    )
    if delivery.events is not None:
        await run_in_threadpool(events.append, delivery.events)
    return Response(delivery.reply, media_type="application/json")
