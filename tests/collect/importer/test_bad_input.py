"""The bad-input table: what a messy file does, row by row or as a whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from siyu.collect.importer.errors import ImportFileError, ImportMappingError
from siyu.events import EventStore
from tests.collect.importer.conftest import Importer, report_lines, stored, write_rows

INJECTION = "'; DROP TABLE events; -- <script>alert(1)</script> {{7*7}} \"\\"


def test_missing_required_column_names_the_target(tmp_path: Path, do_import: Importer) -> None:
    path = write_rows(tmp_path / "orders.csv", [{"order_id": "A1", "amount": "1"}])

    with pytest.raises(ImportMappingError) as caught:
        do_import("orders", path)

    assert "ts" in caught.value.render("en")
    assert "--map ts=" in (caught.value.render_hint("en") or "")


def test_explicit_mapping_to_an_absent_column_is_refused(
    tmp_path: Path, do_import: Importer
) -> None:
    path = write_rows(tmp_path / "e.csv", [{"event": "login", "time": "2024-05-01 10:00:00"}])

    with pytest.raises(ImportMappingError) as caught:
        do_import("events", path, columns={"user_id": "member_id"})

    assert "user_id=member_id" in caught.value.render("en")


def test_mapping_options_rename_columns(
    tmp_path: Path, do_import: Importer, store: EventStore
) -> None:
    rows = [{"what": "login", "when": "2024-05-01 10:00:00", "member_id": "M9", "note": "x"}]
    path = write_rows(tmp_path / "e.csv", rows)

    summary = do_import(
        "events", path, columns={"name": "what", "ts": "when", "member_no": "member_id"}
    )

    assert summary.accepted == 1
    [event] = stored(store)
    assert event["user_id"] == "member_no:M9"
    assert json.loads(event["properties"]) == {"note": "x"}


def test_wrong_types_are_rejected_per_row(
    tmp_path: Path, do_import: Importer, store: EventStore
) -> None:
    rows = [
        {"order_id": "A1", "member_no": "M1", "amount": "abc", "paid_at": "2024-05-01 10:00:00"},
        {"order_id": "A2", "member_no": "M1", "amount": "NaN", "paid_at": "2024-05-01 10:00:00"},
        {"order_id": "A3", "member_no": "M1", "amount": "9", "paid_at": "2024-05-01 10:00:00",
         "quantity": "1.5"},
        {"order_id": "", "member_no": "M1", "amount": "9", "paid_at": "2024-05-01 10:00:00"},
        {"order_id": "A5", "member_no": "M1", "amount": "9", "paid_at": "2024-05-01 10:00:00",
         "email": "not-an-email"},
        {"order_id": "A6", "member_no": "M1", "amount": "9", "paid_at": "2024-05-01 10:00:00"},
    ]  # fmt: skip
    path = write_rows(tmp_path / "orders.csv", rows)

    summary = do_import("orders", path)

    assert (summary.accepted, summary.rejected) == (1, 5)
    assert summary.problems_by_reason == {
        "invalid_amount": 2,
        "invalid_number": 1,
        "missing_value": 1,
        "invalid_email": 1,
    }
    assert [event["order_id"] for event in stored(store)] == ["A6"]


def test_non_utf8_csv_is_refused_naming_the_line(tmp_path: Path, do_import: Importer) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes(b"event,ts\nlogin,2024-05-01 10:00:00\n" + "登录,2024-05-01\n".encode("gbk"))

    with pytest.raises(ImportFileError) as caught:
        do_import("events", path)

    assert "line 3" in caught.value.render("en")
    assert "gb18030" in (caught.value.render_hint("en") or "")


def test_gbk_csv_reads_with_its_encoding(
    tmp_path: Path, do_import: Importer, store: EventStore
) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes("事件,时间,会员号\nlogin,2024-05-01 10:00:00,M1\n".encode("gbk"))

    summary = do_import("events", path, encoding="gb18030")

    assert summary.accepted == 1
    assert stored(store)[0]["user_id"] == "member_no:M1"


def test_huge_cells_are_rejected_not_stored(
    tmp_path: Path, do_import: Importer, store: EventStore
) -> None:
    rows = [
        {"event": "login", "ts": "2024-05-01 10:00:00", "user_id": "u1", "note": "x" * 100_000},
        {"event": "x" * 5_000, "ts": "2024-05-01 10:00:00", "user_id": "u2"},
        {"event": "login", "ts": "2024-05-01 10:00:00", "user_id": "u3"},
    ]
    path = write_rows(tmp_path / "e.csv", rows)

    summary = do_import("events", path)

    assert (summary.accepted, summary.rejected) == (1, 2)
    assert summary.problems_by_reason == {"value_too_long": 2}
    assert all(len(line["value"]) <= 200 for line in report_lines(path))


def test_duplicate_ids_within_the_file_are_stored_once(
    tmp_path: Path, do_import: Importer, store: EventStore
) -> None:
    rows = [
        {"order_id": "A1", "member_no": "M1", "amount": "10", "paid_at": "2024-05-01 10:00:00"},
        {"order_id": "A1", "member_no": "M1", "amount": "10", "paid_at": "2024-05-01 10:00:00"},
        {"order_id": "A2", "member_no": "M1", "amount": "10", "paid_at": "2024-05-01 10:00:00"},
    ]
    path = write_rows(tmp_path / "orders.csv", rows)

    summary = do_import("orders", path, batch_size=2)

    assert (summary.accepted, summary.duplicates) == (2, 1)
    assert store.count() == 2


@pytest.mark.parametrize(
    ("ts", "accepted"),
    [("1970-01-01 00:00:00", 0), ("1999-12-31 23:59:59", 0), ("2099-01-01 00:00:00", 0),
     ("2000-01-02 00:00:00", 1)],
)  # fmt: skip
def test_times_before_2000_or_far_ahead_are_rejected_like_the_api(
    tmp_path: Path, do_import: Importer, ts: str, accepted: int
) -> None:
    path = write_rows(tmp_path / "e.csv", [{"event": "login", "ts": ts, "user_id": "u"}])

    summary = do_import("events", path)

    assert summary.accepted == accepted
    if not accepted:
        assert summary.problems_by_reason == {"timestamp_out_of_range": 1}


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_injection_strings_are_stored_verbatim(
    tmp_path: Path, do_import: Importer, store: EventStore, fmt: str
) -> None:
    rows = [{"event": "search", "ts": "2024-05-01 10:00:00", "user_id": "u1", "keyword": INJECTION,
             "source": INJECTION[:100]}]  # fmt: skip
    path = write_rows(tmp_path / f"e.{fmt}", rows)

    assert do_import("events", path).accepted == 1

    [event] = stored(store)
    assert json.loads(event["properties"]) == {"keyword": INJECTION}
    assert event["source"] == INJECTION[:100].strip()


def test_malformed_records_are_reported_and_the_rest_kept(
    tmp_path: Path, do_import: Importer, store: EventStore
) -> None:
    csv_path = tmp_path / "e.csv"
    csv_path.write_text(
        "event,ts,user_id\nlogin,2024-05-01 10:00:00,u1\nlogin,2024-05-01,u2,extra\n"
        "login,2024-05-01 11:00:00,u3\n"
    )
    jsonl_path = tmp_path / "e.jsonl"
    jsonl_path.write_text(
        '{"event":"login","ts":"2024-05-02 10:00:00","user_id":"u4"}\n{broken\n\n[1,2]\n'
        '{"event":"login","ts":"2024-05-02 11:00:00","user_id":"u5"}\n'
    )

    from_csv = do_import("events", csv_path)
    from_jsonl = do_import("events", jsonl_path)

    assert (from_csv.accepted, from_csv.rejected) == (2, 1)
    assert (from_jsonl.accepted, from_jsonl.rejected) == (2, 2)
    assert [line["row"] for line in report_lines(jsonl_path)] == [2, 4]
    assert report_lines(csv_path)[0]["reason"] == "malformed_record"
    assert store.count() == 4


def test_unknown_format_is_refused(tmp_path: Path, do_import: Importer) -> None:
    path = tmp_path / "events.xlsx"
    path.write_bytes(b"PK")

    with pytest.raises(ImportFileError) as caught:
        do_import("events", path)

    assert "--format" in (caught.value.render_hint("en") or "")
