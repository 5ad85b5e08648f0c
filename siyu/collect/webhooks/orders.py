"""Order webhooks: signature check and the field mapping from a shop's payload to order events.

A mapping names, for each order field, a path into the JSON payload (``a.b.0.c``, ``a[0].c``,
``items.*.sku``) or a list of paths tried in order (the first that gives a value wins). A ``*``
step collects every element of a list: ``quantity`` and ``amount`` add the values up, ``sku``
and ``category`` take the first one and keep all of them in ``properties``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import unquote_plus
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from siyu.collect.webhooks.exceptions import (
    WebhookConfigError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from siyu.core.i18n import N_

SIGNATURE_HEADER = "X-Siyu-Signature"
SHOPIFY_SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
# Identifier fields an order mapping may fill, in the order that picks the order's user_id.
IDENTIFIER_TYPES = (
    "member_no",
    "phone",
    "openid",
    "unionid",
    "email",
    "wecom_external_userid",
    "device_id",
)
_CENT = Decimal("0.01")
_INDEX = re.compile(r"\[(\d+|\*)\]")

PathSpec = str | list[str]


class Condition(BaseModel):
    """True when the value at ``path`` (or the request header ``header``) is one of ``in``;
    with ``exists``, when a value is there at all."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    path: str | None = None
    header: str | None = None
    values: list[str] = Field(default_factory=list, alias="in")
    exists: bool = False

    def matches(self, payload: Any, headers: Mapping[str, str]) -> bool:
        if self.header is not None:
            value: Any = headers.get(self.header.lower())
        elif self.path is not None:
            value = resolve(payload, self.path)
        else:
            return False
        if self.exists:
            return value not in (None, [], "")
        return value is not None and str(value) in self.values


class OrderMapping(BaseModel):
    """How one shop's payloads become ``order_paid`` / ``refund`` events."""

    model_config = ConfigDict(extra="forbid")

    signature: Literal["siyu", "shopify"] = "siyu"
    decode_json: list[str] = Field(
        default_factory=list,
        description="Paths whose string value is itself (URL-encoded) JSON, decoded in place.",
    )
    accept_when: Condition | None = Field(
        default=None, description="Deliveries that do not match are acknowledged and ignored."
    )
    refund_when: Condition | None = None
    order_id: PathSpec
    refund_id: PathSpec | None = None
    amount: PathSpec | None = None
    currency: PathSpec | None = None
    default_currency: str = "CNY"
    paid_at: PathSpec | None = None
    timezone: str = Field(
        default="Asia/Shanghai", description="Zone of timestamps that carry no offset."
    )
    sku: PathSpec | None = None
    category: PathSpec | None = None
    quantity: PathSpec | None = None
    identifiers: dict[str, PathSpec] = Field(default_factory=dict)
    properties: dict[str, PathSpec] = Field(default_factory=dict)

    @field_validator("identifiers")
    @classmethod
    def _known_identifiers(cls, value: dict[str, PathSpec]) -> dict[str, PathSpec]:
        unknown = sorted(set(value) - set(IDENTIFIER_TYPES))
        if unknown:
            raise ValueError(
                f"unknown identifier types {unknown}; use {', '.join(IDENTIFIER_TYPES)}"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


# Youzan pushes {"type": "trade_TradePaid", "msg": "<URL-encoded JSON>", ...}; the order is
# msg.full_order_info (order_info / buyer_info / pay_info / orders), refunds carry
# msg.tid, msg.refund_id and msg.refunded_fee. Times are Beijing time without an offset.
YOUZAN = OrderMapping(
    decode_json=["msg"],
    accept_when=Condition(path="type", values=["trade_TradePaid", "trade_refund_RefundSuccess"]),
    refund_when=Condition(path="type", values=["trade_refund_RefundSuccess"]),
    order_id=["msg.full_order_info.order_info.tid", "msg.tid"],
    refund_id="msg.refund_id",
    amount=["msg.refunded_fee", "msg.full_order_info.pay_info.payment"],
    default_currency="CNY",
    paid_at=["msg.full_order_info.order_info.pay_time", "msg.update_time"],
    timezone="Asia/Shanghai",
    sku=["msg.full_order_info.orders.*.outer_sku_id", "msg.full_order_info.orders.*.sku_id"],
    quantity="msg.full_order_info.orders.*.num",
    identifiers={
        "phone": "msg.full_order_info.buyer_info.buyer_phone",
        "member_no": "msg.full_order_info.buyer_info.outer_user_id",
    },
    properties={
        "kdt_id": "kdt_id",
        "youzan_type": "type",
        "yz_open_id": "msg.full_order_info.buyer_info.yz_open_id",
        "title": "msg.full_order_info.orders.0.title",
    },
)

# Shopify's orders/paid body is the order (id, name, email, phone, currency, total_price,
# processed_at, customer, line_items[]); refunds/create is the refund (id, order_id,
# processed_at, transactions[], refund_line_items[].line_item). The topic is a header.
SHOPIFY = OrderMapping(
    signature="shopify",
    accept_when=Condition(header="X-Shopify-Topic", values=["orders/paid", "refunds/create"]),
    refund_when=Condition(header="X-Shopify-Topic", values=["refunds/create"]),
    order_id=["order_id", "id"],
    refund_id="id",  # read only for refunds, whose own id it is
    amount=["transactions.*.amount", "total_price"],
    currency=["transactions.0.currency", "currency"],
    default_currency="USD",
    paid_at=["processed_at", "created_at"],
    timezone="UTC",
    sku=["line_items.*.sku", "refund_line_items.*.line_item.sku"],
    quantity=["line_items.*.quantity", "refund_line_items.*.quantity"],
    identifiers={"email": ["email", "customer.email"], "phone": ["phone", "customer.phone"]},
    properties={"order_name": "name", "shopify_customer_id": "customer.id"},
)

PRESETS: dict[str, OrderMapping] = {"youzan": YOUZAN, "shopify": SHOPIFY}


def preset(name: str) -> OrderMapping:
    try:
        return PRESETS[name]
    except KeyError:
        raise WebhookConfigError(
            N_("Unknown mapping preset {name!r}; use one of {choices}"),
            name=name,
            choices=", ".join(PRESETS),
        ) from None


def load_mapping(data: Any) -> OrderMapping:
    """A mapping from its JSON form, or a :class:`WebhookConfigError` listing what is wrong."""
    from pydantic import ValidationError

    try:
        return OrderMapping.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()
        ]
        raise WebhookConfigError(
            N_("The field mapping is invalid ({count} problems)"), errors=errors, count=len(errors)
        ) from None


# -- signatures --------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The ``X-Siyu-Signature`` header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_shopify(secret: str, body: bytes) -> str:
    """The ``X-Shopify-Hmac-Sha256`` header value for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_signature(
    mapping: OrderMapping, secret: str, body: bytes, headers: Mapping[str, str]
) -> None:
    """Raise :class:`WebhookSignatureError` unless the body carries a valid HMAC-SHA256."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    ours = headers.get(SIGNATURE_HEADER.lower())
    if ours is not None:
        scheme, _, value = ours.strip().partition("=")
        if scheme.lower() == "sha256" and hmac.compare_digest(
            value.strip().lower().encode(), digest.hex().encode()
        ):
            return
        raise WebhookSignatureError(
            N_("The {header} header does not match the body"),
            header=SIGNATURE_HEADER,
            reason="signature_mismatch",
        )
    shopify = headers.get(SHOPIFY_SIGNATURE_HEADER.lower())
    if mapping.signature == "shopify" and shopify is not None:
        if hmac.compare_digest(shopify.strip().encode(), base64.b64encode(digest)):
            return
        raise WebhookSignatureError(
            N_("The {header} header does not match the body"),
            header=SHOPIFY_SIGNATURE_HEADER,
            reason="signature_mismatch",
        )
    raise WebhookSignatureError(
        N_("The delivery is not signed: send the {header} header"),
        header=SIGNATURE_HEADER,
        reason="signature_missing",
    )


# -- payloads ----------------------------------------------------------------------------


def parse_payload(body: bytes, mapping: OrderMapping) -> dict[str, Any]:
    """The JSON object in ``body``, with the mapping's embedded JSON strings decoded."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookPayloadError(
            N_("The body is not valid JSON: {reason}"), reason=str(exc)
        ) from None
    if not isinstance(payload, dict):
        raise WebhookPayloadError(N_("The body must be a JSON object"))
    for path in mapping.decode_json:
        _decode_in_place(payload, path)
    return payload


def _decode_in_place(payload: dict[str, Any], path: str) -> None:
    steps = _steps(path)
    parent: Any = payload
    for step in steps[:-1]:
        parent = _step(parent, step)
        if parent is None:
            return
    last = steps[-1]
    if not isinstance(parent, dict) or not isinstance(parent.get(last), str):
        return
    text = parent[last]
    for candidate in (text, unquote_plus(text)):
        try:
            parent[last] = json.loads(candidate)
            return
        except ValueError:
            continue
    raise WebhookPayloadError(N_("The field {path} is not JSON"), path=path)


def _steps(path: str) -> list[str]:
    path = path.removeprefix("$").removeprefix(".")
    return [step for step in _INDEX.sub(r".\1", path).split(".") if step]


def _step(node: Any, step: str) -> Any:
    if isinstance(node, dict):
        return node.get(step)
    if isinstance(node, list) and step.lstrip("-").isdigit():
        index = int(step)
        return node[index] if -len(node) <= index < len(node) else None
    return None


def resolve(payload: Any, path: str) -> Any:
    """The value at ``path``; a ``*`` step gives a list of the non-null values below it."""
    nodes: list[Any] = [payload]
    spread = False
    for step in _steps(path):
        if step == "*":
            spread = True
            nodes = [item for node in nodes if isinstance(node, list) for item in node]
        else:
            nodes = [_step(node, step) for node in nodes]
        nodes = [node for node in nodes if node is not None]
    if spread:
        return nodes or None
    return nodes[0] if nodes else None


def first(payload: Any, spec: PathSpec | None) -> Any:
    if spec is None:
        return None
    for path in [spec] if isinstance(spec, str) else spec:
        value = resolve(payload, path)
        if value not in (None, "", []):
            return value
    return None


# -- events ------------------------------------------------------------------------------


def order_event(
    payload: dict[str, Any],
    mapping: OrderMapping,
    *,
    endpoint_id: str,
    headers: Mapping[str, str],
    received_at: datetime,
) -> dict[str, Any] | None:
    """The event row for one delivery, or ``None`` when the mapping says to ignore it."""
    if mapping.accept_when is not None and not mapping.accept_when.matches(payload, headers):
        return None
    is_refund = mapping.refund_when is not None and mapping.refund_when.matches(payload, headers)
    name = "refund" if is_refund else "order_paid"
    order_id = _text(first(payload, mapping.order_id))
    if not order_id:
        raise WebhookPayloadError(
            N_("The payload has no order id at {path}"), path=_show(mapping.order_id)
        )
    event_id = f"order:{endpoint_id}:{order_id}:{name}"
    refund_id = _text(first(payload, mapping.refund_id)) if is_refund else None
    if refund_id:
        event_id += f":{refund_id}"
    identifiers = {
        kind: str(value).strip()
        for kind, spec in mapping.identifiers.items()
        if (value := _scalar(first(payload, spec))) not in (None, "")
    }
    user_type = next((kind for kind in IDENTIFIER_TYPES if kind in identifiers), None)
    properties: dict[str, Any] = {"order_webhook": endpoint_id}
    for key, spec in mapping.properties.items():
        value = first(payload, spec)
        if value is not None:
            properties[key] = value
    if refund_id:
        properties["refund_id"] = refund_id
    skus = first(payload, mapping.sku)
    if isinstance(skus, list) and len(skus) > 1:
        properties["skus"] = [str(s) for s in skus]
    categories = first(payload, mapping.category)
    if isinstance(categories, list) and len(categories) > 1:
        properties["categories"] = [str(c) for c in categories]
    paid_at = first(payload, mapping.paid_at)
    return {
        "event_id": event_id,
        "name": name,
        "ts": _timestamp(paid_at, mapping.timezone) if paid_at is not None else received_at,
        "user_id": f"{user_type}:{identifiers[user_type]}" if user_type else None,
        "identifiers": identifiers or None,
        "channel": "web",
        "source": "order_webhook",
        "properties": properties,
        "order_id": order_id,
        "amount": _money(first(payload, mapping.amount)),
        "currency": (_text(first(payload, mapping.currency)) or mapping.default_currency).upper(),
        "sku": _text(_scalar(skus)),
        "category": _text(_scalar(categories)),
        "quantity": _quantity(first(payload, mapping.quantity)),
    }


def _show(spec: PathSpec) -> str:
    return spec if isinstance(spec, str) else " | ".join(spec)


def _scalar(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    if isinstance(value, dict):
        return None
    return value


def _text(value: Any) -> str | None:
    value = _scalar(value)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _money(value: Any) -> Decimal | None:
    values = value if isinstance(value, list) else [value]
    total = Decimal(0)
    seen = False
    for item in values:
        if item is None or isinstance(item, (dict, list, bool)):
            continue
        try:
            total += Decimal(str(item).strip())
        except InvalidOperation:
            raise WebhookPayloadError(
                N_("The amount {value!r} is not a number"), value=item
            ) from None
        seen = True
    return total.quantize(_CENT, rounding=ROUND_HALF_UP) if seen else None


def _quantity(value: Any) -> int | None:
    values = value if isinstance(value, list) else [value]
    total, seen = 0, False
    for item in values:
        if item is None or isinstance(item, (dict, list, bool)):
            continue
        try:
            total += int(str(item).strip())
        except ValueError:
            raise WebhookPayloadError(
                N_("The quantity {value!r} is not a whole number"), value=item
            ) from None
        seen = True
    return total if seen else None


def _timestamp(value: Any, zone: str) -> datetime:
    """A payload time: epoch seconds/milliseconds, or ISO 8601 (local to ``zone`` if naive)."""
    value = _scalar(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10_000_000_000 else value
        return datetime.fromtimestamp(seconds, UTC)
    text = str(value).strip()
    if text.isdigit():
        return _timestamp(int(text), zone)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise WebhookPayloadError(N_("The time {value!r} cannot be read"), value=text) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed.astimezone(UTC)
