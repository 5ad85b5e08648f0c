"""One Segment/RudderStack message → one row of the ``events`` table, or why not.

Plain functions over the decoded JSON (no model per message): this is the hot path of the
tracking API, so each check is done once, in order, and the first problem found is reported
with the dotted field it is about (``properties.revenue``, ``traits.phone``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from siyu.collect.models import CUSTOM_PREFIX, USER_ID_TYPES
from siyu.core.ids import new_id
from siyu.events.schema import CHANNELS

MESSAGE_TYPES = ("track", "identify", "alias", "page", "screen")
MAX_ID_LENGTH = 256
MAX_NAME_LENGTH = 200
MAX_TEXT_LENGTH = 512
MAX_JSON_BYTES = 32 * 1024
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)
MAX_AMOUNT = Decimal(10) ** 16
CENT = Decimal("0.01")
MAX_QUANTITY = 2**31 - 1

# Segment's e-commerce and lifecycle spec names → siyu's canonical names; others stay as sent.
SPEC_EVENT_NAMES = {
    "Order Completed": "order_paid",
    "Order Refunded": "refund",
    "Product Viewed": "product_view",
    "Product Added": "add_to_cart",
    "Checkout Started": "checkout",
    "Products Searched": "search",
    "Product Reviewed": "review",
    "Product Shared": "share",
    "Coupon Applied": "coupon_use",
    "Signed Up": "register",
    "Signed In": "login",
}
# Segment's own channel words → siyu channels.
CHANNEL_ALIASES = {"browser": "web", "client": "web", "mobile": "app", "server": None}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_IDENTIFIER_PATTERNS = {
    "phone": re.compile(r"^\+?[0-9][0-9 ()-]{4,24}$"),
    "email": re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,63}$"),
    "openid": re.compile(r"^[A-Za-z0-9_-]{6,64}$"),
    "unionid": re.compile(r"^[A-Za-z0-9_-]{6,64}$"),
    "wecom_external_userid": re.compile(r"^[A-Za-z0-9_-]{6,128}$"),
}
_CUSTOM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class MessageError(Exception):
    """Why one message is refused: the dotted field and a reason in English."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Envelope:
    """What one request tells about all its messages."""

    user_id_type: str
    source_id: str
    received_at: datetime
    sent_at: datetime | None = None  # the batch's sentAt, if any
    context: dict[str, Any] | None = None  # the batch's context, for messages without one


def is_identifier_type(value: str) -> bool:
    if value in USER_ID_TYPES:
        return True
    return value.startswith(CUSTOM_PREFIX) and bool(
        _CUSTOM_NAME.match(value.removeprefix(CUSTOM_PREFIX))
    )


# -- small checks ----------------------------------------------------------------------------


def _text(value: Any, field: str, limit: int = MAX_TEXT_LENGTH) -> str:
    if value is None:
        raise MessageError(field, "is required")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MessageError(field, "must be a string")
    text = str(value)
    if not text or len(text) > limit:
        raise MessageError(field, f"must have 1 to {limit} characters")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise MessageError(field, "is not valid Unicode") from None
    return text


def _optional_text(value: Any, field: str, limit: int = MAX_TEXT_LENGTH) -> str | None:
    return None if value is None or value == "" else _text(value, field, limit)


def _object(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MessageError(field, "must be an object")
    return value


def identifier(kind: str, value: Any, field: str) -> str:
    """``value`` checked as an identifier of type ``kind`` (phone digits, e-mail shape, …)."""
    text = _text(value, field, MAX_ID_LENGTH)
    pattern = _IDENTIFIER_PATTERNS.get(kind)
    if pattern is not None:
        if not pattern.match(text):
            raise MessageError(field, f"is not a valid {kind}")
        if kind == "phone" and sum(char.isdigit() for char in text) < 5:
            raise MessageError(field, "is not a valid phone")
    elif _CONTROL.search(text):
        raise MessageError(field, "must not contain control characters")
    return text


def parse_time(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MessageError(field, "must be an ISO-8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MessageError(field, "must be an ISO-8601 date-time string") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise MessageError(field, "is out of range") from None


def _money(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MessageError(field, "must be a number")
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise MessageError(field, "must be a number") from None
    if not amount.is_finite():
        raise MessageError(field, "must be a finite number")
    if amount < 0:
        raise MessageError(field, "must not be negative")
    if amount >= MAX_AMOUNT:
        raise MessageError(field, "is too large")
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _quantity(value: Any, field: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MessageError(field, "must be a whole number")
    if not 0 <= value <= MAX_QUANTITY:
        raise MessageError(field, "is out of range")
    return value


def _json(value: dict[str, Any], field: str) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise MessageError(field, "NaN and Infinity are not JSON numbers") from None
    except RecursionError:
        raise MessageError(field, "is nested too deeply") from None
    if len(text) * 4 > MAX_JSON_BYTES or not text.isascii():
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise MessageError(field, "is not valid Unicode") from None
        if size > MAX_JSON_BYTES:
            raise MessageError(field, f"is larger than {MAX_JSON_BYTES} bytes")
    return text


# -- the message -----------------------------------------------------------------------------


def message_type(message: dict[str, Any], forced: str | None) -> str:
    sent = message.get("type")
    if forced is not None:
        if sent is not None and sent != forced:
            raise MessageError("type", f"must be {forced!r} on this endpoint")
        return forced
    if sent is None:
        raise MessageError("type", "is required in a batch")
    if sent not in MESSAGE_TYPES:
        raise MessageError("type", f"must be one of {', '.join(MESSAGE_TYPES)}")
    return str(sent)


def _channel(message: dict[str, Any], context: dict[str, Any], kind: str) -> str:
    raw = context.get("channel", message.get("channel"))
    if raw is not None:
        field = "context.channel" if "channel" in context else "channel"
        if not isinstance(raw, str):
            raise MessageError(field, "must be a string")
        lowered = raw.lower()
        if lowered in CHANNELS:
            return lowered
        if lowered not in CHANNEL_ALIASES:
            raise MessageError(field, f"must be one of {', '.join(CHANNELS)}")
        alias = CHANNEL_ALIASES[lowered]
        if alias is not None:
            return alias
    if context.get("miniprogram"):
        return "miniprogram"
    if context.get("wecom"):
        return "wecom"
    return "app" if kind == "screen" else "web"


def _identifiers(
    message: dict[str, Any],
    context: dict[str, Any],
    traits: dict[str, Any],
    user_id: str | None,
    envelope: Envelope,
) -> dict[str, str]:
    """Every identifier the message carries, by type; the first value of a type wins."""
    found: dict[str, str] = {}
    if user_id is not None:
        found[envelope.user_id_type] = user_id
    anonymous = message.get("anonymousId")
    if anonymous is not None:
        found.setdefault("anonymous_id", identifier("anonymous_id", anonymous, "anonymousId"))
    for kind in ("phone", "email"):
        if traits.get(kind) not in (None, ""):
            found.setdefault(kind, identifier(kind, traits[kind], f"traits.{kind}"))
    explicit = _object(context.get("identifiers"), "context.identifiers")
    for kind, value in explicit.items():
        field = f"context.identifiers.{kind}"
        if not isinstance(kind, str) or not is_identifier_type(kind):
            raise MessageError(field, "is not an identifier type")
        found.setdefault(kind, identifier(kind, value, field))
    miniprogram = _object(context.get("miniprogram"), "context.miniprogram")
    for kind in ("openid", "unionid"):
        if miniprogram.get(kind) not in (None, ""):
            field = f"context.miniprogram.{kind}"
            found.setdefault(kind, identifier(kind, miniprogram[kind], field))
    wecom = _object(context.get("wecom"), "context.wecom")
    if wecom.get("external_userid") not in (None, ""):
        value = identifier(
            "wecom_external_userid", wecom["external_userid"], "context.wecom.external_userid"
        )
        found.setdefault("wecom_external_userid", value)
    external = context.get("externalIds")
    if external is not None:
        if not isinstance(external, list):
            raise MessageError("context.externalIds", "must be a list")
        for position, item in enumerate(external):
            field = f"context.externalIds.{position}"
            if not isinstance(item, dict):
                raise MessageError(field, "must be an object")
            raw_kind = _text(item.get("type"), f"{field}.type", 40)
            kind = raw_kind if raw_kind in USER_ID_TYPES else f"{CUSTOM_PREFIX}{raw_kind.lower()}"
            if not is_identifier_type(kind):
                raise MessageError(f"{field}.type", "is not an identifier type")
            found.setdefault(kind, identifier(kind, item.get("id"), f"{field}.id"))
    return found


def _event_time(message: dict[str, Any], envelope: Envelope) -> datetime:
    """``timestamp`` (or ``originalTimestamp``) moved by the client's clock error
    (received_at − sentAt), Segment's rule; ``received_at`` when the client sent no time."""
    received = envelope.received_at
    stated = parse_time(message.get("timestamp"), "timestamp")
    field = "timestamp"
    if stated is None:
        stated = parse_time(message.get("originalTimestamp"), "originalTimestamp")
        field = "originalTimestamp"
    if stated is None:
        return received
    sent = parse_time(message.get("sentAt"), "sentAt") or envelope.sent_at
    try:
        ts = stated + (received - sent) if sent is not None else stated
    except OverflowError:
        raise MessageError(field, "is out of range") from None
    if ts < EARLIEST:
        raise MessageError(field, "is before 2000-01-01")
    if ts > received + MAX_FUTURE:
        raise MessageError(field, "is more than one day in the future")
    return ts


def _order_columns(properties: dict[str, Any], row: dict[str, Any]) -> None:
    order_id = properties.get("order_id", properties.get("orderId"))
    if order_id is not None:
        row["order_id"] = _text(order_id, "properties.order_id", MAX_ID_LENGTH)
    for key in ("amount", "total", "revenue"):
        if properties.get(key) is not None:
            row["amount"] = _money(properties[key], f"properties.{key}")
            break
    currency = properties.get("currency")
    if currency is not None:
        text = _text(currency, "properties.currency", 3)
        if len(text) != 3 or not text.isalpha() or not text.isascii():
            raise MessageError("properties.currency", "must be a 3-letter ISO 4217 code")
        row["currency"] = text.upper()
    for key in ("sku", "product_id", "productId"):
        if properties.get(key) is not None:
            row["sku"] = _text(properties[key], f"properties.{key}", MAX_ID_LENGTH)
            break
    if properties.get("category") is not None:
        row["category"] = _text(properties["category"], "properties.category", MAX_NAME_LENGTH)
    if properties.get("quantity") is not None:
        row["quantity"] = _quantity(properties["quantity"], "properties.quantity")


def with_message_id(message: Any) -> Any:
    """A single call's message with a generated ``messageId`` if it has none (a retry of
    such a message is then stored twice: clients should send one)."""
    if isinstance(message, dict) and message.get("messageId") is None:
        return {**message, "messageId": new_id("msg")}
    return message


def to_row(message: Any, envelope: Envelope, *, forced_type: str | None = None) -> dict[str, Any]:
    """The ``events`` row for one message, or :class:`MessageError`.

    A batch item must carry its ``type``; a single call's type is the endpoint's
    (``forced_type``). Every message needs a ``messageId`` (see :func:`with_message_id`).
    """
    if not isinstance(message, dict):
        raise MessageError("", "must be an object")
    kind = message_type(message, forced_type)
    if message.get("messageId") is None:
        raise MessageError("messageId", "is required in a batch")
    event_id = _text(message["messageId"], "messageId", MAX_ID_LENGTH)
    context = message.get("context")
    context = (envelope.context or {}) if context is None else _object(context, "context")

    user_id = None
    if message.get("userId") not in (None, ""):
        user_id = identifier(envelope.user_id_type, message["userId"], "userId")
    anonymous_id = _optional_text(message.get("anonymousId"), "anonymousId", MAX_ID_LENGTH)
    if user_id is None and anonymous_id is None:
        raise MessageError("userId", "userId or anonymousId is required")

    traits = _object(message.get("traits", context.get("traits")), "traits")
    if kind == "track":
        event = _text(message.get("event"), "event", MAX_NAME_LENGTH)
        name = SPEC_EVENT_NAMES.get(event, event)
        properties = _object(message.get("properties"), "properties")
    elif kind in ("page", "screen"):
        name = "page_view"
        properties = dict(_object(message.get("properties"), "properties"))
        for key in ("name", "category"):
            if message.get(key) is not None:
                properties.setdefault(key, _text(message[key], key, MAX_NAME_LENGTH))
        page = _object(context.get("page"), "context.page")
        for key in ("url", "path", "referrer", "title"):
            if key in page:
                properties.setdefault(key, page[key])
    elif kind == "identify":
        name = "identify"
        properties = traits
    else:
        name = "alias"
        if user_id is None:
            raise MessageError("userId", "is required for alias")
        previous = _text(message.get("previousId"), "previousId", MAX_ID_LENGTH)
        properties = {"previous_id": previous}

    row: dict[str, Any] = {
        "event_id": event_id,
        "name": name,
        "ts": _event_time(message, envelope),
        "received_at": envelope.received_at,
        "user_id": f"{envelope.user_id_type}:{user_id}" if user_id is not None else None,
        "anonymous_id": anonymous_id,
        "channel": _channel(message, context, kind),
        "source": envelope.source_id,
    }
    identifiers = _identifiers(message, context, traits, user_id, envelope)
    row["identifiers"] = _json(identifiers, "identifiers") if identifiers else None
    campaign = _object(context.get("campaign"), "context.campaign")
    for key, column in (
        ("source", "utm_source"),
        ("medium", "utm_medium"),
        ("name", "utm_campaign"),
    ):
        if campaign.get(key) is not None:
            row[column] = _text(campaign[key], f"context.campaign.{key}")
    for place in ("miniprogram", "wecom"):
        scene = _object(context.get(place), f"context.{place}").get("scene")
        if scene is not None:
            row["scene"] = _text(scene, f"context.{place}.scene", 64)
            break
    if kind in ("track", "page", "screen"):
        _order_columns(properties, row)
    row["properties"] = _json(properties, "properties")
    return row
