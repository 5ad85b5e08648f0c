"""Streaming: importing a ~2M-row Parquet file holds a few batches, never the file.

The bound is in batches plus a constant, not in the file: the Arrow memory the import
holds (sampled from Arrow's pool, which counts live buffers exactly, so it is not blurred by
freed memory an allocator keeps) stays under ``ARROW_BATCHES`` batches and the Parquet
reader's per-column pages; the process's RSS, which also holds DuckDB, SQLite, Python and
allocator slack, under that plus ``RSS_SLACK``. Both are measured from after a warm-up import
of a small file of the same shape, so what any import loads once (DuckDB and its JSON
extension, compiled statements, thread pools) is not counted. A reader that keeps what it
has read grows with the file: with Arrow's pre-buffer cache (``ParquetFile``'s default) the
import held ~88 MiB of Arrow memory here, against ~43 MiB without.
"""

from __future__ import annotations

import gc
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
CHUNK = 200_000  # rows per row group
BATCH = 50_000
MiB = 2**20
# Live at the peak: the batch being converted and what it is converted to, the batch before
# it (rows and converted rows) still being appended and checkpointed, and a batch's worth
# of conversion temporaries: about five (measured: ~26 MiB), six leaving one of margin.
ARROW_BATCHES = 6
# The Parquet reader, per column: the decompressed page, the dictionary page and the
# read buffer (pages of 1 MiB and dictionaries of up to 1 MiB, Arrow's writer defaults).
READER_PER_COLUMN = 3 * MiB
# Outside Arrow's pool: DuckDB's query memory for a column, SQLite, Python, allocator slack.
RSS_SLACK = 24 * MiB


def _write(path: Path, rows: int = ROWS) -> int:
    """``rows`` events written chunk by chunk; returns their in-memory (Arrow) size in bytes."""
    size = 0
    start = 1_714_550_400_000_000
    with pq.ParquetWriter(path, _schema()) as writer:
        for offset in range(0, rows, CHUNK):
            n = np.arange(offset, min(offset + CHUNK, rows))
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


class Peak:
    """Samples the process's RSS and the bytes Arrow's default pool has allocated, from a
    baseline taken when it starts, every few milliseconds while the block runs."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.pool = pa.default_memory_pool()
        self.rss = self.arrow = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _now(self) -> tuple[int, int]:
        return self.process.memory_info().rss, self.pool.bytes_allocated()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            rss, arrow = self._now()
            self.rss, self.arrow = max(self.rss, rss), max(self.arrow, arrow)

    def __enter__(self) -> Peak:
        gc.collect()
        self.start_rss, self.start_arrow = self.rss, self.arrow = self._now()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        rss, arrow = self._now()
        self.rss, self.arrow = max(self.rss, rss), max(self.arrow, arrow)

    @property
    def rss_growth(self) -> int:
        return self.rss - self.start_rss

    @property
    def arrow_growth(self) -> int:
        return self.arrow - self.start_arrow


def _import(db: Database, path: Path) -> int:
    store = CountingStore()
    summary = run_import(
        database=db,
        events=store,  # type: ignore[arg-type]
        request=ImportRequest(kind=ImportKind.events, path=path, batch_size=BATCH),
    )
    assert summary.accepted == store.rows
    return store.rows


@pytest.mark.slow
def test_peak_memory_stays_far_below_the_file_size(tmp_path: Path, db: Database) -> None:
    path = tmp_path / "events.parquet"
    in_memory = _write(path)
    warm_up = tmp_path / "warm-up.parquet"
    _write(warm_up, rows=2 * BATCH)
    assert _import(db, warm_up) == 2 * BATCH

    with Peak() as peak:
        assert _import(db, path) == ROWS

    batch = in_memory * BATCH // ROWS  # ~5.3 MiB of the file's ~210
    reader = READER_PER_COLUMN * len(_schema())
    arrow_bound = ARROW_BATCHES * batch + reader  # ~50 MiB
    figures = {
        "arrow MiB": round(peak.arrow_growth / MiB, 1),
        "rss MiB": round(peak.rss_growth / MiB, 1),
        "batch MiB": round(batch / MiB, 1),
        "file in memory MiB": round(in_memory / MiB, 1),
    }
    assert peak.arrow_growth < arrow_bound, figures
    assert peak.rss_growth < arrow_bound + RSS_SLACK, figures  # ~74 MiB, a third of the file
