"""Small, readable import worlds: files written in the test, a migrated SQLite database and
a DuckDB event store in the test's directory."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from siyu.collect.importer import ImportKind, ImportRequest, ImportSummary, run_import
from siyu.events import EventStore, open_event_store
from siyu.store import Database, open_database
from siyu.store.migrate import upgrade

FORMATS = ("csv", "jsonl", "parquet")


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """``rows`` as a file of the format its extension names (CSV cells as text)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
        )
    else:
        pq.write_table(
            pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows]), path
        )
    return path


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'siyu.db'}")
    upgrade(database)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with open_event_store(f"duckdb:///{tmp_path / 'events.duckdb'}") as events:
        yield events


Importer = Callable[..., ImportSummary]


@pytest.fixture
def do_import(db: Database, store: EventStore) -> Importer:
    def run(kind: str, path: Path, **options: Any) -> ImportSummary:
        request = ImportRequest(kind=ImportKind(kind), path=path, **options)
        return run_import(database=db, events=store, request=request)

    return run


def stored(store: EventStore) -> list[dict[str, Any]]:
    """Every stored event as a dict, ordered by event id."""
    table = store.table().order_by("event_id").to_pyarrow()
    return list(table.to_pylist())


def report_lines(path: Path) -> list[dict[str, Any]]:
    report = path.with_name(path.name + ".import-report.jsonl")
    if not report.exists():
        return []
    return [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
