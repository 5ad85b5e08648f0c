"""Each kind (events, people, orders) from each format (CSV, JSON Lines, Parquet)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from siyu.events import EventStore
from tests.collect.importer.conftest import FORMATS, Importer, report_lines, stored, write_rows

THREE_ORDERS_ONE_NEGATIVE = [
    {"order_id": "A1001", "member_no": "M001", "amount": "199.00", "paid_at": "2024-05-01 10:00:00",
     "sku": "SKU-1", "category": "护肤", "quantity": "2"},
    {"order_id": "A1002", "member_no": "M002", "amount": "-5.00", "paid_at": "2024-05-01 11:00:00",
     "sku": "SKU-2", "category": "彩妆", "quantity": "1"},
    {"order_id": "A1003", "phone": "13800138000", "amount": "59.9",
     "paid_at": "2024-05-02T03:00:00Z", "sku": "SKU-3", "category": "香氛", "quantity": "1"},
]  # fmt: skip


@pytest.mark.parametrize("fmt", FORMATS)
def test_three_orders_one_with_a_negative_amount(
    tmp_path: Path, do_import: Importer, store: EventStore, fmt: str
) -> None:
    path = write_rows(tmp_path / f"orders.{fmt}", THREE_ORDERS_ONE_NEGATIVE)

    summary = do_import("orders", path)

    assert (summary.rows_read, summary.accepted, summary.rejected) == (3, 2, 1)
    assert summary.problems_by_reason == {"negative_amount": 1}
    events = stored(store)
    assert [event["event_id"] for event in events] == [
        "order:A1001:order_paid",
        "order:A1003:order_paid",
    ]
    first, third = events
    assert first["name"] == "order_paid"
    assert first["amount"] == Decimal("199.00")
    assert first["currency"] == "CNY"
    assert first["quantity"] == 2
    assert first["user_id"] == "member_no:M001"
    assert json.loads(first["identifiers"]) == {"member_no": "M001"}
    # 10:00 in Asia/Shanghai is 02:00 UTC.
    assert first["ts"] == datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
    assert third["user_id"] == "phone:13800138000"
    assert third["amount"] == Decimal("59.90")
    assert third["ts"] == datetime(2024, 5, 2, 3, 0, tzinfo=UTC)
    [problem] = report_lines(path)
    assert problem["row"] == 2
    assert problem["column"] == "amount"
    assert problem["reason"] == "negative_amount"
    assert problem["value"] == "-5.00"


TWO_PEOPLE = [
    {"member_no": "M001", "phone": "13800138000", "email": "li@example.com", "name": "李雷",
     "city": "上海", "level": "金卡"},
    {"member_no": "M002", "openid": "oXyZ_123456", "name": "韩梅梅", "city": "北京", "level": ""},
]  # fmt: skip


@pytest.mark.parametrize("fmt", FORMATS)
def test_people_become_identify_events(
    tmp_path: Path, do_import: Importer, store: EventStore, fmt: str
) -> None:
    path = write_rows(tmp_path / f"people.{fmt}", TWO_PEOPLE)

    summary = do_import("people", path)

    assert (summary.accepted, summary.rejected) == (2, 0)
    by_user = {event["user_id"]: event for event in stored(store)}
    assert set(by_user) == {"member_no:M001", "member_no:M002"}
    li = by_user["member_no:M001"]
    assert li["name"] == "identify"
    assert li["event_id"].startswith("import:people:")
    assert json.loads(li["identifiers"]) == {
        "member_no": "M001",
        "phone": "13800138000",
        "email": "li@example.com",
    }
    assert json.loads(li["properties"]) == {"name": "李雷", "city": "上海", "level": "金卡"}
    han = json.loads(by_user["member_no:M002"]["properties"])
    assert han["name"] == "韩梅梅"


FOUR_EVENTS = [
    {"messageId": "m-1", "event": "page_view", "timestamp": "2024-05-01T10:00:00+08:00",
     "userId": "member_no:M001", "channel": "web", "page": "首页"},
    {"messageId": "m-2", "event": "add_to_cart", "timestamp": "1714550400",
     "userId": "member_no:M001", "channel": "miniprogram", "page": "商品详情"},
    {"messageId": "m-3", "event": "search", "timestamp": "2024-05-01 12:00:00",
     "userId": "member_no:M002", "channel": "tiktok", "page": "搜索"},
    {"messageId": "m-4", "event": "login", "timestamp": "not a time",
     "userId": "member_no:M002", "channel": "app", "page": "登录"},
]  # fmt: skip


@pytest.mark.parametrize("fmt", FORMATS)
def test_events_with_an_unknown_channel_and_a_bad_time(
    tmp_path: Path, do_import: Importer, store: EventStore, fmt: str
) -> None:
    path = write_rows(tmp_path / f"events.{fmt}", FOUR_EVENTS)

    summary = do_import("events", path)

    assert (summary.accepted, summary.rejected) == (2, 2)
    assert summary.problems_by_reason == {"unknown_channel": 1, "invalid_timestamp": 1}
    assert summary.mapping["name"] == "event"
    assert summary.mapping["event_id"] == "messageId"
    events = stored(store)
    assert [event["event_id"] for event in events] == ["m-1", "m-2"]
    assert events[0]["ts"] == datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
    assert events[1]["ts"] == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)  # epoch seconds
    assert json.loads(events[0]["properties"]) == {"page": "首页"}
    assert [(line["row"], line["reason"]) for line in report_lines(path)] == [
        (3, "unknown_channel"),
        (4, "invalid_timestamp"),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_reimporting_the_same_file_adds_nothing(
    tmp_path: Path, do_import: Importer, store: EventStore, fmt: str
) -> None:
    rows = [{k: v for k, v in row.items() if k != "messageId"} for row in FOUR_EVENTS[:3]]
    rows[2]["channel"] = "app"
    path = write_rows(tmp_path / f"events.{fmt}", rows)

    first = do_import("events", path)
    again = do_import("events", path)

    assert first.accepted == 3
    assert (again.accepted, again.duplicates) == (0, 3)
    assert store.count() == 3
    assert all(event["event_id"].startswith("import:") for event in stored(store))


def test_the_same_events_in_another_format_and_column_order_are_duplicates(
    tmp_path: Path, do_import: Importer, store: EventStore
) -> None:
    rows = [{k: v for k, v in row.items() if k != "messageId"} for row in FOUR_EVENTS[:2]]
    csv_path = write_rows(tmp_path / "a.csv", rows)
    reordered = [dict(reversed(list(row.items()))) for row in rows]
    jsonl_path = write_rows(tmp_path / "b.jsonl", reordered)

    assert do_import("events", csv_path).accepted == 2
    overlapping = do_import("events", jsonl_path)

    assert (overlapping.accepted, overlapping.duplicates) == (0, 2)
    assert store.count() == 2
