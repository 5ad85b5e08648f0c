"""The one wide, append-only ``events`` table, declared once; everything else reads it."""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")
MONEY = pa.decimal128(18, 2)

EVENTS_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("ts", TIMESTAMP, nullable=False),
        pa.field("received_at", TIMESTAMP, nullable=False),
        # Who did it, as sent: a typed identifier key "type:value" and/or a device id.
        # The OneID person is resolved at read time through the identity map, so a merge
        # or an unmerge never rewrites history.
        pa.field("user_id", pa.string()),
        pa.field("anonymous_id", pa.string()),
        # JSON object {identifier type: value} seen together in this event
        # (identify/alias evidence).
        pa.field("identifiers", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("source", pa.string()),
        pa.field("scene", pa.string()),
        pa.field("utm_source", pa.string()),
        pa.field("utm_medium", pa.string()),
        pa.field("utm_campaign", pa.string()),
        pa.field("properties", pa.string()),
        # Promoted order columns.
        pa.field("order_id", pa.string()),
        pa.field("amount", MONEY),
        pa.field("currency", pa.string()),
        pa.field("sku", pa.string()),
        pa.field("category", pa.string()),
        pa.field("quantity", pa.int32()),
    ]
)

REQUIRED_COLUMNS = ("event_id", "name", "ts")
JSON_COLUMNS = ("identifiers", "properties")

CANONICAL_EVENTS = (
    "identify",
    "alias",
    "register",
    "login",
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "checkout",
    "order_paid",
    "refund",
    "review",
    "share",
    "checkin",
    "coupon_claim",
    "coupon_use",
    "message_sent",
    "message_delivered",
    "message_opened",
    "message_clicked",
    "unsubscribe",
    "complaint",
    "wecom_add_contact",
    "wecom_delete_contact",
    "group_join",
    "group_leave",
)

# The identifier types events carry (as the type of ``user_id`` and the keys of
# ``identifiers``), besides custom ``custom:<name>`` types. Collection, import and identity
# all read this one list.
IDENTIFIER_TYPES = (
    "member_no",
    "unionid",
    "openid",
    "wecom_external_userid",
    "phone",
    "email",
    "device_id",
    "anonymous_id",
)

CHANNELS = ("wecom", "miniprogram", "app", "web", "sms", "email", "store", "crm")

# Events siyu itself records about a person (tier_changed, segment_entered, …) name the person
# directly: user_id = "oneid:<person_id>". Identity resolution skips these keys; reading events
# resolves them to the person as is.
ONEID_PREFIX = "oneid:"
