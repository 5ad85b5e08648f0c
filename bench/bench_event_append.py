"""Event-store append throughput against a raw DuckDB insert of the same Arrow tables.

siyu's append conforms each batch to the schema, drops ids repeated inside the batch,
skips ids already stored and commits atomically; the baseline only inserts. Both write the
same batches into a fresh DuckDB file (same DDL) and close it, taking turns batch by batch,
best of three rounds. Target: siyu reaches at least 80 % of the raw rate.

Deduplication is then priced on its own: re-appending every stored batch (all duplicates),
a batch with 1 % known ids against a fresh batch into the same filled store, and the first
append after reopening the store (which loads the id index).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from bench.data import synthetic_batches, synthetic_events
from bench.harness import (
    Result,
    Scale,
    Stopwatch,
    Target,
    Timing,
    per_second,
    phase,
    progress,
    record,
)
from siyu.events import EventStore, open_event_store
from siyu.events.duckdb.store import events_ddl

NAME = "event_append"
# (batches, rows per batch)
SIZES: dict[Scale, tuple[int, int]] = {"small": (10, 100_000), "full": (40, 100_000)}
REPEAT = 3
TARGET_RATIO = 0.8


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _open(path: Path) -> EventStore:
    return open_event_store(f"duckdb:///{path}")


class RawTable:
    """The baseline: the store's DDL in a plain DuckDB file, one register + INSERT … SELECT
    per batch, nothing else."""

    def __init__(self, path: Path) -> None:
        self.con = duckdb.connect(str(path))
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute(events_ddl())

    def append(self, batch: pa.Table) -> None:
        self.con.register("b", batch)
        self.con.execute("INSERT INTO events SELECT * FROM b")
        self.con.unregister("b")

    def count(self) -> int:
        row = self.con.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.con.close()


def append_round(directory: Path, batches: list[pa.Table], turn: int) -> dict[str, float]:
    """Seconds each contender needs to open a fresh file, append every batch and close it.

    The two take turns batch by batch, the first mover alternating, so a change of machine
    load during the round weighs on both alike.
    """
    paths = {who: directory / f"{who}-{turn}.duckdb" for who in ("siyu", "raw")}
    seconds = dict.fromkeys(paths, 0.0)
    with Stopwatch() as watch:
        store = _open(paths["siyu"])
    seconds["siyu"] += watch.seconds
    with Stopwatch() as watch:
        raw = RawTable(paths["raw"])
    seconds["raw"] += watch.seconds
    appenders: dict[str, Callable[[pa.Table], object]] = {"siyu": store.append, "raw": raw.append}
    for index, batch in enumerate(batches):
        order = ("siyu", "raw") if (index + turn) % 2 == 0 else ("raw", "siyu")
        for who in order:
            with Stopwatch() as watch:
                appenders[who](batch)
            seconds[who] += watch.seconds
    stored = {"siyu": store.count(), "raw": raw.count()}
    closers: dict[str, Callable[[], None]] = {"siyu": store.close, "raw": raw.close}
    for who in ("siyu", "raw") if turn % 2 == 0 else ("raw", "siyu"):
        with Stopwatch() as watch:
            closers[who]()
        seconds[who] += watch.seconds
    for who, path in paths.items():
        _check(stored[who], batches, who)
        _remove(path)
    return seconds


def _check(inserted: int, batches: list[pa.Table], who: str) -> None:
    expected = sum(batch.num_rows for batch in batches)
    if inserted != expected:
        raise RuntimeError(f"{who} stored {inserted} events, expected {expected}")


def with_known_ids(
    fresh: pa.Table, stored: list[pa.Table], share: float, seed: int
) -> tuple[pa.Table, int]:
    """``fresh`` with ``share`` of its rows replaced by rows already stored, shuffled."""
    rng = np.random.default_rng(seed)
    known = int(fresh.num_rows * share)
    pool = pa.concat_tables(stored)
    repeats = pool.take(pa.array(rng.choice(pool.num_rows, size=known, replace=False)))
    mixed = pa.concat_tables([fresh.slice(0, fresh.num_rows - known), repeats])
    return mixed.take(pa.array(rng.permutation(mixed.num_rows))), known


def _best_append(store: EventStore, batches: list[pa.Table], expect_duplicates: list[int]) -> float:
    best = float("inf")
    for batch, duplicates in zip(batches, expect_duplicates, strict=True):
        with Stopwatch() as watch:
            result = store.append(batch)
        if result.duplicates != duplicates:
            raise RuntimeError(
                f"append skipped {result.duplicates} duplicates, expected {duplicates}"
            )
        best = min(best, watch.seconds)
    return best


def dedup_costs(directory: Path, batches: list[pa.Table], rows: int) -> dict[str, float]:
    path = directory / "dedup.duckdb"
    store = _open(path)
    for batch in batches:
        store.append(batch)
    total = sum(batch.num_rows for batch in batches)

    with phase("re-append of every stored batch (all duplicates)") as reappend:
        skipped = sum(store.append(batch).duplicates for batch in batches)
    if skipped != total:
        raise RuntimeError(f"re-append skipped {skipped} of {total} events")

    fresh = [synthetic_events(rows, seed=90_000 + k) for k in range(2 * REPEAT)]
    mixed = [with_known_ids(batch, batches, 0.01, seed=k) for k, batch in enumerate(fresh[REPEAT:])]
    fresh_s = _best_append(store, fresh[:REPEAT], [0] * REPEAT)
    dup1_s = _best_append(store, [batch for batch, _ in mixed], [known for _, known in mixed])
    store.close()

    store = _open(path)
    with Stopwatch() as reopen:
        store.append(synthetic_events(rows, seed=99_999))
    stored = store.count()
    store.close()
    _remove(path)
    return {
        "stored_events": stored,
        "reappend_s": reappend.seconds,
        "reappend_events_per_s": per_second(total, reappend.seconds),
        "fresh_into_filled_events_per_s": per_second(rows, fresh_s),
        "dup1pct_into_filled_events_per_s": per_second(rows, dup1_s),
        "first_append_after_reopen_s": reopen.seconds,
    }


def run(scale: Scale) -> Result:
    batch_count, rows = SIZES[scale]
    with phase(f"make {batch_count} batches of {rows:,} events"):
        batches = list(synthetic_batches(batch_count, rows, seed=11))
    total = batch_count * rows
    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
        directory = Path(tmp)
        append_round(directory, batches[:2], turn=-1)  # warm-up
        runs: dict[str, list[float]] = {"siyu": [], "raw": []}
        for turn in range(REPEAT):
            seconds = append_round(directory, batches, turn)
            for who, value in seconds.items():
                runs[who].append(value)
            progress(
                f"round {turn + 1}: "
                + ", ".join(
                    f"{who} {per_second(total, s):,.0f} events/s" for who, s in seconds.items()
                )
            )
        timings = {who: Timing(tuple(values)) for who, values in runs.items()}
        dedup = dedup_costs(directory, batches, rows)

    siyu_rate = per_second(total, timings["siyu"].best)
    raw_rate = per_second(total, timings["raw"].best)
    ratio = siyu_rate / raw_rate
    figures = {
        "batches": batch_count,
        "rows_per_batch": rows,
        "events": total,
        "siyu_events_per_s": siyu_rate,
        "raw_events_per_s": raw_rate,
        "round_ratios": [raw / siyu for siyu, raw in zip(runs["siyu"], runs["raw"], strict=True)],
        "siyu": timings["siyu"].as_dict(),
        "raw": timings["raw"].as_dict(),
        **dedup,
    }
    return record(
        NAME,
        figures,
        scale=scale,
        ratios={
            "siyu/raw": ratio,
            "1%dup/fresh": dedup["dup1pct_into_filled_events_per_s"]
            / dedup["fresh_into_filled_events_per_s"],
            "reappend/append": dedup["reappend_events_per_s"] / siyu_rate,
        },
        targets=[Target("siyu/raw", ratio, TARGET_RATIO, ">=")],
        headline=(
            "siyu_events_per_s",
            "raw_events_per_s",
            "reappend_events_per_s",
            "dup1pct_into_filled_events_per_s",
            "first_append_after_reopen_s",
        ),
    )
