"""Streaming: importing a ~2M-row Parquet file holds a few batches, never the file."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from siyu.collect.importer import ImportKind, ImportRequest, run_import
from siyu.events import AppendResult
from siyu.store import Database

ROWS = 2_000_000
CHUNK = 200_000


def _write(path: Path) -> int:
    """2M events written chunk by chunk; returns their in-memory (Arrow) size in bytes."""
    size = 0
    start = 1_714_550_400_000_000
    with pq.ParquetWriter(path, _schema()) as writer:
        for offset in range(0, ROWS, CHUNK):
            n = np.arange(offset, offset + CHUNK)
            table = pa.table(
                {
                    "event_id": pa.array([f"evt-{i:09d}" for i in n]),
                    "name": pa.array(np.where(n % 3 == 0, "page_view", "product_view")),
                    "ts": pa.array(start + n * 1_000_000, pa.timestamp("us", tz="UTC")),
                    "user_id": pa.array([f"member_no:M{i % 50_000:06d}" for i in n]),
                    "channel": pa.array(np.where(n % 2 == 0, "web", "miniprogram")),
                    "properties": pa.array([f'{{"page":"商品详情","n":{i}}}' for i in n]),
                },
                schema=_schema(),
            )
            size += table.nbytes
            writer.write_table(table)
    return size


def _schema() -> pa.Schema:
    return pa.schema(
        [
            ("event_id", pa.string()),
            ("name", pa.string()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("user_id", pa.string()),
            ("channel", pa.string()),
            ("properties", pa.string()),
        ]
    )


class CountingStore:
    """Takes appends and keeps only counts, so the figure is the import pipeline's own
    memory, not the DuckDB buffer pool of the table being filled."""

    def __init__(self) -> None:
        self.rows = 0

    def append(self, events: pa.Table) -> AppendResult:
        self.rows += events.num_rows
        return AppendResult(received=events.num_rows, inserted=events.num_rows, duplicates=0)


@pytest.mark.slow
def test_peak_memory_stays_far_below_the_file_size(tmp_path: Path, db: Database) -> None:
    store = CountingStore()
    path = tmp_path / "events.parquet"
    in_memory = _write(path)
    process = psutil.Process()
    start = process.memory_info().rss
    peak = start
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.02):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        summary = run_import(
            database=db,
            events=store,  # type: ignore[arg-type]
            request=ImportRequest(kind=ImportKind.events, path=path, batch_size=50_000),
        )
    finally:
        stop.set()
        sampler.join()

    assert summary.accepted == store.rows == ROWS
    growth = peak - start
    # A few batches of 50k rows (one converting, one appending, Arrow pool slack) of the 40.
    assert growth < in_memory * 0.4, (growth / 2**20, in_memory / 2**20)
