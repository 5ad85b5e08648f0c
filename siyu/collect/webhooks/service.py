"""Webhook endpoints (create, list, remove) and deliveries turned into event rows.

Services flush; the caller owns the transaction. A delivery whose signature fails is logged
(endpoint id, reason, request id; never the payload) and raises before anything is parsed
into events, so nothing of it can be stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.collect.webhooks import orders
from siyu.collect.webhooks.exceptions import (
    WebhookEndpointNotFoundError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from siyu.collect.webhooks.models import (
    OrderEndpointCreate,
    WebhookEndpoint,
    WebhookEndpointRead,
    WebhookKind,
    WebhookStatus,
    WecomEndpointCreate,
)
from siyu.collect.webhooks.secrets import SecretBox, mask
from siyu.collect.webhooks.wecom_crypto import WeComCrypto, decode_aes_key
from siyu.collect.webhooks.wecom_events import callback_rows, envelope_encrypt
from siyu.core.clock import utcnow
from siyu.core.errors import ConflictError
from siyu.core.i18n import N_
from siyu.core.ids import new_id
from siyu.core.logging import get_logger, request_id_var
from siyu.events import EVENTS_SCHEMA

log = get_logger("collect.webhooks")

MAX_BODY_BYTES = 1024 * 1024
ROUTE_PREFIX = "/v1/webhooks"
_ROW_SCHEMA = pa.schema([field for field in EVENTS_SCHEMA if field.name != "received_at"])


# -- endpoints ---------------------------------------------------------------------------


def get(*, db_session: Session, endpoint_id: str) -> WebhookEndpoint | None:
    return db_session.get(WebhookEndpoint, endpoint_id)


def get_active_or_raise(
    *, db_session: Session, endpoint_id: str, kind: WebhookKind
) -> WebhookEndpoint:
    """The active endpoint of that id and kind; any other case is the same 404."""
    endpoint = get(db_session=db_session, endpoint_id=endpoint_id)
    if endpoint is None or endpoint.kind != kind.value or endpoint.status != "active":
        raise WebhookEndpointNotFoundError(
            N_("No {kind} webhook endpoint {endpoint_id}"),
            kind=kind.value,
            endpoint_id=endpoint_id,
        )
    return endpoint


def get_by_name(*, db_session: Session, name: str) -> WebhookEndpoint | None:
    return db_session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.name == name)
    ).one_or_none()


def list_endpoints(*, db_session: Session) -> list[WebhookEndpoint]:
    return list(
        db_session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)).all()
    )


def _check_name_free(db_session: Session, name: str) -> None:
    if get_by_name(db_session=db_session, name=name) is not None:
        raise ConflictError(N_("A webhook endpoint named {name} already exists"), name=name)


def create_wecom(
    *, db_session: Session, endpoint_in: WecomEndpointCreate, box: SecretBox
) -> WebhookEndpoint:
    decode_aes_key(endpoint_in.encoding_aes_key)
    _check_name_free(db_session, endpoint_in.name)
    endpoint = WebhookEndpoint(
        id=new_id("wh"),
        kind=WebhookKind.wecom.value,
        name=endpoint_in.name,
        corp_id=endpoint_in.corp_id,
        token=box.seal(endpoint_in.token, field="token"),
        encoding_aes_key=box.seal(endpoint_in.encoding_aes_key, field="encoding_aes_key"),
        status=WebhookStatus.active.value,
        created_at=utcnow(),
    )
    db_session.add(endpoint)
    db_session.flush()
    return endpoint


def create_order(
    *, db_session: Session, endpoint_in: OrderEndpointCreate, box: SecretBox
) -> WebhookEndpoint:
    mapping = orders.load_mapping(endpoint_in.field_mapping)
    _check_name_free(db_session, endpoint_in.name)
    endpoint = WebhookEndpoint(
        id=new_id("wh"),
        kind=WebhookKind.order.value,
        name=endpoint_in.name,
        secret=box.seal(endpoint_in.secret, field="secret"),
        field_mapping=mapping.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        status=WebhookStatus.active.value,
        created_at=utcnow(),
    )
    db_session.add(endpoint)
    db_session.flush()
    return endpoint


def delete(*, db_session: Session, endpoint_id: str) -> None:
    endpoint = get(db_session=db_session, endpoint_id=endpoint_id)
    if endpoint is None:
        raise WebhookEndpointNotFoundError(
            N_("No webhook endpoint {endpoint_id}"), endpoint_id=endpoint_id
        )
    db_session.delete(endpoint)
    db_session.flush()


def to_read(endpoint: WebhookEndpoint) -> WebhookEndpointRead:
    """The endpoint as people and API clients see it: every secret masked."""
    return WebhookEndpointRead(
        id=endpoint.id,
        kind=WebhookKind(endpoint.kind),
        name=endpoint.name,
        path=f"{ROUTE_PREFIX}/{'wecom' if endpoint.kind == 'wecom' else 'orders'}/{endpoint.id}",
        corp_id=endpoint.corp_id,
        token=mask(endpoint.token),
        encoding_aes_key=mask(endpoint.encoding_aes_key),
        secret=mask(endpoint.secret),
        field_mapping=endpoint.field_mapping,
        status=WebhookStatus(endpoint.status),
        created_at=endpoint.created_at,
    )


def wecom_crypto(endpoint: WebhookEndpoint, box: SecretBox) -> WeComCrypto:
    assert endpoint.token and endpoint.encoding_aes_key and endpoint.corp_id
    return WeComCrypto(
        token=box.open(endpoint.token, field="token"),
        encoding_aes_key=box.open(endpoint.encoding_aes_key, field="encoding_aes_key"),
        receive_id=endpoint.corp_id,
    )


# -- deliveries --------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """What a delivery gives: the rows to append (maybe none) and the answer to send."""

    events: pa.Table | None
    reply: str


def _rejected(endpoint_id: str, error: WebhookSignatureError) -> WebhookSignatureError:
    log.warning(
        "webhook delivery rejected: endpoint=%s reason=%s request_id=%s",
        endpoint_id,
        error.context.get("reason", "signature"),
        request_id_var.get(),
    )
    return error


def _required(query: Mapping[str, str], *names: str, endpoint_id: str) -> list[str]:
    missing = [name for name in names if not query.get(name)]
    if missing:
        raise _rejected(
            endpoint_id,
            WebhookSignatureError(
                N_("The WeCom callback lacks {names}"),
                names=", ".join(missing),
                reason="signature_missing",
            ),
        )
    return [query[name] for name in names]


def verify_wecom_url(
    *, db_session: Session, endpoint_id: str, query: Mapping[str, str], box: SecretBox
) -> str:
    """Answer WeCom's URL check: the decrypted ``echostr``."""
    endpoint = get_active_or_raise(
        db_session=db_session, endpoint_id=endpoint_id, kind=WebhookKind.wecom
    )
    signature, timestamp, nonce, echostr = _required(
        query, "msg_signature", "timestamp", "nonce", "echostr", endpoint_id=endpoint_id
    )
    crypto = wecom_crypto(endpoint, box)
    try:
        crypto.verify(signature, timestamp, nonce, echostr)
        return crypto.decrypt(echostr).decode("utf-8", errors="replace")
    except WebhookSignatureError as exc:
        raise _rejected(endpoint_id, exc) from None


def receive_wecom(
    *,
    db_session: Session,
    endpoint_id: str,
    query: Mapping[str, str],
    body: bytes,
    box: SecretBox,
) -> Delivery:
    """Verify, decrypt and map one WeCom callback."""
    endpoint = get_active_or_raise(
        db_session=db_session, endpoint_id=endpoint_id, kind=WebhookKind.wecom
    )
    signature, timestamp, nonce = _required(
        query, "msg_signature", "timestamp", "nonce", endpoint_id=endpoint_id
    )
    encrypt = envelope_encrypt(body)
    crypto = wecom_crypto(endpoint, box)
    try:
        crypto.verify(signature, timestamp, nonce, encrypt)
        message = crypto.decrypt(encrypt)
    except WebhookSignatureError as exc:
        raise _rejected(endpoint_id, exc) from None
    rows = callback_rows(message, corp_id=crypto.receive_id, endpoint_id=endpoint.id)
    return Delivery(events=events_table(rows) if rows else None, reply="success")


def receive_order(
    *,
    db_session: Session,
    endpoint_id: str,
    headers: Mapping[str, str],
    body: bytes,
    box: SecretBox,
) -> Delivery:
    """Verify one order delivery and map it to an ``order_paid`` or ``refund`` row."""
    endpoint = get_active_or_raise(
        db_session=db_session, endpoint_id=endpoint_id, kind=WebhookKind.order
    )
    assert endpoint.secret is not None
    mapping = orders.load_mapping(endpoint.field_mapping or {})
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        orders.verify_signature(mapping, box.open(endpoint.secret, field="secret"), body, lowered)
    except WebhookSignatureError as exc:
        raise _rejected(endpoint_id, exc) from None
    payload = orders.parse_payload(body, mapping)
    row = orders.order_event(
        payload, mapping, endpoint_id=endpoint.id, headers=lowered, received_at=utcnow()
    )
    reply = json.dumps({"status": "accepted" if row else "ignored"})
    return Delivery(events=events_table([row]) if row else None, reply=reply)


def events_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as an Arrow table of the event schema (``received_at`` set by the store)."""
    columns: dict[str, list[Any]] = {field.name: [] for field in _ROW_SCHEMA}
    for row in rows:
        for name, values in columns.items():
            value = row.get(name)
            if name in ("identifiers", "properties") and value is not None:
                value = json.dumps(value, ensure_ascii=False, sort_keys=True)
            values.append(value)
    try:
        return pa.Table.from_pydict(columns, schema=_ROW_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise WebhookPayloadError(
            N_("The payload gives values that do not fit the event schema: {reason}"),
            reason=str(exc),
        ) from None
