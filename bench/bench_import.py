"""Bulk import throughput: ``siyu import events`` of a Parquet file against a raw DuckDB
``INSERT INTO events SELECT * FROM read_parquet(…)`` into the same DDL.

siyu streams the file in batches, maps and validates every column, checks JSON, ranges and
channels, skips known event ids and checkpoints each batch in the operational database; the
baseline only inserts (DuckDB reads the Parquet file with all cores, nothing checked). Both
write a fresh DuckDB file. Peak RSS is sampled during each run. Target (full, 20M events):
at least 1M events/s and a peak under 2 GiB.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from bench.data import synthetic_batches
from bench.harness import (
    PeakRss,
    Result,
    Scale,
    Stopwatch,
    Target,
    per_second,
    phase,
    progress,
    record,
)
from siyu.collect.importer import ImportKind, ImportRequest, run_import
from siyu.events import EVENTS_SCHEMA, open_event_store
from siyu.events.duckdb.store import events_ddl
from siyu.store import open_database
from siyu.store.migrate import upgrade

NAME = "import"
# (batches, rows per batch) of the file
SIZES: dict[Scale, tuple[int, int]] = {"small": (10, 200_000), "full": (100, 200_000)}
TARGET_EVENTS_PER_S = 1_000_000
TARGET_PEAK_MB = 2048


def _write_file(path: Path, batches: int, rows: int) -> None:
    with pq.ParquetWriter(path, EVENTS_SCHEMA, compression="zstd") as writer:
        for batch in synthetic_batches(batches, rows, seed=7):
            writer.write_table(batch)


def _siyu(directory: Path, source: Path, turn: int) -> tuple[float, float, int]:
    database = open_database(f"sqlite:///{directory / f'siyu-{turn}.db'}")
    upgrade(database)
    target = directory / f"siyu-{turn}.duckdb"
    with (
        PeakRss() as memory,
        Stopwatch() as watch,
        open_event_store(f"duckdb:///{target}") as events,
    ):
        summary = run_import(
            database=database,
            events=events,
            request=ImportRequest(kind=ImportKind.events, path=source),
        )
    database.dispose()
    target.unlink(missing_ok=True)
    return watch.seconds, memory.peak_mb, summary.accepted


def _raw(directory: Path, source: Path, turn: int) -> tuple[float, float, int]:
    target = directory / f"raw-{turn}.duckdb"
    with PeakRss() as memory, Stopwatch() as watch:
        con = duckdb.connect(str(target))
        con.execute("SET TimeZone = 'UTC'")
        con.execute(events_ddl())
        con.execute("INSERT INTO events SELECT * FROM read_parquet(?)", [str(source)])
        row = con.execute("SELECT count(*) FROM events").fetchone()
        con.close()
    target.unlink(missing_ok=True)
    return watch.seconds, memory.peak_mb, int(row[0]) if row else 0


def run(scale: Scale) -> Result:
    batches, rows = SIZES[scale]
    total = batches * rows
    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
        directory = Path(tmp)
        source = directory / "events.parquet"
        with phase(f"write {total:,} events to Parquet"):
            _write_file(source, batches, rows)
        file_mb = source.stat().st_size / 2**20
        runs: dict[str, list[tuple[float, float, int]]] = {"siyu": [], "raw": []}
        for turn in range(2):
            order = ("siyu", "raw") if turn % 2 == 0 else ("raw", "siyu")
            for who in order:
                measured = (_siyu if who == "siyu" else _raw)(directory, source, turn)
                if measured[2] != total:
                    raise RuntimeError(f"{who} stored {measured[2]} events, expected {total}")
                runs[who].append(measured)
                progress(f"{who}: {per_second(total, measured[0]):,.0f} events/s, "
                         f"peak {measured[1]:,.0f} MB")  # fmt: skip
    best = {who: min(values) for who, values in runs.items()}
    siyu_rate = per_second(total, best["siyu"][0])
    raw_rate = per_second(total, best["raw"][0])
    siyu_peak = max(value[1] for value in runs["siyu"])
    figures = {
        "events": total,
        "file_mb": round(file_mb, 1),
        "siyu_events_per_s": siyu_rate,
        "raw_events_per_s": raw_rate,
        "siyu_seconds": [value[0] for value in runs["siyu"]],
        "raw_seconds": [value[0] for value in runs["raw"]],
        "siyu_peak_rss_mb": siyu_peak,
        "raw_peak_rss_mb": max(value[1] for value in runs["raw"]),
    }
    targets = (
        [
            Target("events/s", siyu_rate, TARGET_EVENTS_PER_S, ">="),
            Target("peak MB", siyu_peak, TARGET_PEAK_MB, "<"),
        ]
        if scale == "full"
        else []
    )
    return record(
        NAME,
        figures,
        scale=scale,
        ratios={"siyu/raw": siyu_rate / raw_rate},
        targets=targets,
        headline=("siyu_events_per_s", "raw_events_per_s", "siyu_peak_rss_mb", "raw_peak_rss_mb"),
    )
