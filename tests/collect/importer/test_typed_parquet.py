"""A Parquet file already in the events schema takes the fast path (no text round trip) and
is still checked row by row: bad JSON, negative amounts, long text, times out of range."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from siyu.events import EVENTS_SCHEMA, EventStore
from tests.collect.importer.conftest import Importer, report_lines, stored

GOOD_TS = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)


def _event(n: int, **changes: object) -> dict[str, object]:
    return {
        "event_id": f"e-{n}",
        "name": "order_paid",
        "ts": GOOD_TS,
        "received_at": GOOD_TS,
        "user_id": f"member_no:M{n}",
        "channel": "web",
        "properties": '{"page": "首页"}',
        "order_id": f"A{n}",
        "amount": Decimal("19.90"),
        "currency": "CNY",
        "quantity": 1,
        **changes,
    }


def test_typed_columns_are_checked_per_row(
    tmp_path: Path, do_import: Importer, store: EventStore
) -> None:
    rows = [
        _event(1),
        _event(2, properties="[1, 2]"),
        _event(3, amount=Decimal("-5.00")),
        _event(4, sku="x" * 300),
        _event(5, ts=datetime(1999, 12, 31, tzinfo=UTC)),
        _event(6, identifiers="not json"),
    ]
    path = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=EVENTS_SCHEMA), path)

    summary = do_import("events", path)

    assert (summary.accepted, summary.rejected) == (1, 5)
    assert [(line["row"], line["column"], line["reason"]) for line in report_lines(path)] == [
        (2, "properties", "invalid_json"),
        (3, "amount", "negative_amount"),
        (4, "sku", "value_too_long"),
        (5, "ts", "timestamp_out_of_range"),
        (6, "identifiers", "invalid_json"),
    ]
    [event] = stored(store)
    assert (event["event_id"], event["amount"], event["quantity"]) == ("e-1", Decimal("19.90"), 1)
    assert event["ts"] == GOOD_TS
    assert event["received_at"] > GOOD_TS  # stamped by the store at the append
