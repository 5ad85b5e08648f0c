"""The column-wise fast path agrees with the per-message validator: same rows, same refusals
(index, field, reason), same duplicates, for good messages and for every bad-input case."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from siyu.collect.body import parse_json_strict
from siyu.collect.columns import fast_rows
from siyu.collect.ingest import prepare
from siyu.collect.messages import Envelope
from tests.collect.test_bad_input import BAD_ITEMS, good

RECEIVED = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)

GOOD: list[dict[str, Any]] = [
    good("t1"),
    {**good("t2"), "event": "Order Completed", "properties": {"total": 2.675, "currency": "cny"}},
    {**good("t3"), "properties": {"orderId": 7, "productId": "P1", "quantity": 3, "x": "双"}},
    {"type": "page", "messageId": "p1", "anonymousId": "a1", "name": "首页", "category": "c"},
    {
        "type": "screen",
        "messageId": "s1",
        "anonymousId": "a1",
        "timestamp": "2025-06-01T19:00+08:00",
    },
    {"type": "identify", "messageId": "i1", "userId": "M1", "traits": {"phone": "138 0013 8000"}},
    {**good("t4"), "context": {"campaign": {"source": "moments", "name": "双11"}, "ip": "1.2.3.4"}},
    {**good("t5"), "context": {}, "timestamp": "2025-06-01T11:00:00"},
    {**good("t1"), "event": "repeated id: the first one is kept"},
]


def _envelope(**batch: Any) -> Envelope:
    return Envelope(
        user_id_type="member_no",
        source_id="src_1",
        received_at=RECEIVED,
        sent_at=datetime(2025, 6, 1, 12, 0, 5, tzinfo=UTC) if "sentAt" in batch else None,
        context=batch.get("context"),
    )


def _both(items: list[Any], envelope: Envelope) -> None:
    fast = prepare(items, envelope, forced_type=None, strict=True)
    detailed = prepare(items, envelope, forced_type=None)
    assert fast.table.equals(detailed.table)
    assert fast.ids == detailed.ids
    assert fast.repeated == detailed.repeated
    assert [(i, r.field, r.reason) for i, r in fast.refused] == [
        (i, r.field, r.reason) for i, r in detailed.refused
    ]


@pytest.mark.parametrize("batch", [{}, {"sentAt": True}, {"context": {"page": {"url": "u"}}}])
def test_good_messages_give_the_same_rows(batch: dict[str, Any]) -> None:
    items, strict = parse_json_strict(json.dumps(GOOD).encode())
    assert strict
    envelope = _envelope(**batch)
    assert fast_rows(items, envelope, forced_type=None).flagged == []
    _both(items, envelope)


@pytest.mark.parametrize(
    ("case", "item", "field"), BAD_ITEMS, ids=[case for case, _, _ in BAD_ITEMS]
)
def test_bad_messages_are_flagged_and_refused_the_same_way(
    case: str, item: Any, field: str
) -> None:
    items, strict = parse_json_strict(json.dumps([good("a"), item, good("b")]).encode())
    if not strict:  # the lone surrogate: the strict parser passes, the detailed path decides
        return
    assert 1 in fast_rows(items, _envelope(), forced_type=None).flagged
    _both(items, _envelope())


def test_the_strict_parser_leaves_what_it_cannot_keep_exactly() -> None:
    assert parse_json_strict(b'{"a": NaN}')[1] is False
    assert parse_json_strict(b'{"a": 123456789012345678901234567890}') == (
        {"a": 123456789012345678901234567890},
        False,
    )
    assert parse_json_strict(b'{"a": "\\ud800"}')[1] is False
    assert parse_json_strict(b'{"a": 1}') == ({"a": 1}, True)
