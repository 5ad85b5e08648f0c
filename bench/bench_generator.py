"""Demo generator throughput: generate a brand and append its events into a DuckDB file.

The baseline writes the same number of rows, in batches of the same sizes, into a fresh
DuckDB file with the raw insert of the append benchmark, drawing each row independently at
random with numpy and pyarrow (fresh ids and timestamps, other columns sampled from a
template). The ratio realistic/raw is therefore the price of realism: a behavioural
simulation of people instead of independent random rows, plus siyu's checked append.
Target at full scale (1M people, ~20M events): generate + append in under 180 s.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from bench.data import event_ids, synthetic_events
from bench.harness import (
    PeakRss,
    Result,
    Scale,
    Stopwatch,
    Target,
    alternate,
    per_second,
    process_peak_rss_mb,
    progress,
    record,
)
from siyu.demo.generator import DemoSpec
from siyu.demo.service import write_events
from siyu.events import open_event_store
from siyu.events.duckdb.store import events_ddl
from siyu.events.schema import TIMESTAMP

NAME = "generator"
PEOPLE: dict[Scale, int] = {"small": 50_000, "full": 1_000_000}
REPEAT: dict[Scale, int] = {"small": 2, "full": 1}
DAYS = 365
SEED = 7
END_DATE = date(2026, 11, 22)
TARGET_SECONDS: dict[Scale, float] = {"full": 180.0}


class Contenders:
    """The realistic run and the raw baseline, each writing a fresh file per run."""

    def __init__(self, directory: Path, people: int) -> None:
        self.directory = directory
        self.spec = DemoSpec(people=people, days=DAYS, seed=SEED, end_date=END_DATE)
        self.batch_sizes: list[int] = []
        self.figures: dict[str, dict[str, Any]] = {}
        self._runs = 0

    def _path(self, who: str) -> Path:
        self._runs += 1
        return self.directory / f"{who}-{self._runs}.duckdb"

    def realistic(self) -> float:
        """The product's own path (``siyu demo generate``): generation pipelined with appends."""
        path = self._path("realistic")
        with PeakRss() as rss, Stopwatch() as total:
            store = open_event_store(f"duckdb:///{path}")
            summary = write_events(self.spec, store)
            stored = store.count()
            store.close()
        _remove(path)
        if stored != summary["events"]:
            raise RuntimeError(f"stored {stored} of {summary['events']} generated events")
        self.batch_sizes = _chunk_sizes(stored, self.spec.chunks)
        people = self.spec.people
        figures = {
            "people": people,
            "events": stored,
            "events_per_person": round(stored / people, 2),
            "batches": self.spec.chunks,
            "total_s": total.seconds,
            "events_per_s": per_second(stored, total.seconds),
            "people_per_s": per_second(people, total.seconds),
            "peak_rss_mb": rss.peak_mb,
            "rss_growth_mb": rss.growth_mb,
        }
        self._keep_best("realistic", figures)
        progress(
            f"realistic: {total.seconds:.1f} s, {stored:,} events, peak RSS {rss.peak_mb:,.0f} MB"
        )
        return total.seconds

    def raw(self) -> float:
        if not self.batch_sizes:
            raise RuntimeError("the realistic run must come first: it sets the batch sizes")
        path = self._path("raw")
        rng = np.random.default_rng(SEED)
        with PeakRss() as rss, Stopwatch() as total:
            template = synthetic_events(min(100_000, max(self.batch_sizes)), seed=SEED)
            con = duckdb.connect(str(path))
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET enable_progress_bar = false")
            con.execute(events_ddl())
            for rows in self.batch_sizes:
                con.register("b", random_batch(template, rows, rng))
                con.execute("INSERT INTO events SELECT * FROM b")
                con.unregister("b")
            row = con.execute("SELECT count(*) FROM events").fetchone()
            con.close()
        _remove(path)
        stored = int(row[0]) if row else 0
        figures = {
            "events": stored,
            "total_s": total.seconds,
            "events_per_s": per_second(stored, total.seconds),
            "peak_rss_mb": rss.peak_mb,
            "rss_growth_mb": rss.growth_mb,
        }
        self._keep_best("raw", figures)
        progress(f"raw: {total.seconds:.1f} s, {stored:,} events")
        return total.seconds

    def _keep_best(self, who: str, figures: dict[str, Any]) -> None:
        best = self.figures.get(who)
        if best is None or figures["total_s"] < best["total_s"]:
            self.figures[who] = figures


def random_batch(template: pa.Table, rows: int, rng: np.random.Generator) -> pa.Table:
    """``rows`` random rows: fresh unique ids and timestamps; the other columns are a
    zero-copy window, at a random offset, over ``template`` repeated."""
    offset = int(rng.integers(template.num_rows))
    copies = -(-(offset + rows) // template.num_rows)
    batch = pa.concat_tables([template] * copies).slice(offset, rows)
    ts_us = np.sort(
        rng.integers(1_732_000_000_000_000, 1_763_500_000_000_000, size=rows, dtype=np.int64)
    )
    batch = batch.set_column(
        batch.schema.get_field_index("event_id"), "event_id", event_ids(rng, rows)
    )
    return batch.set_column(
        batch.schema.get_field_index("ts"), "ts", pa.array(ts_us).cast(TIMESTAMP)
    )


def _chunk_sizes(total: int, chunks: int) -> list[int]:
    """Split ``total`` rows into ``chunks`` near-equal batches, as the generator does."""
    base, extra = divmod(total, chunks)
    return [base + (1 if i < extra else 0) for i in range(chunks)]


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def run(scale: Scale) -> Result:
    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
        contenders = Contenders(Path(tmp), PEOPLE[scale])
        timings = alternate(
            {"realistic": contenders.realistic, "raw": contenders.raw}, repeat=REPEAT[scale]
        )
    realistic, raw = contenders.figures["realistic"], contenders.figures["raw"]
    ratio = realistic["events_per_s"] / raw["events_per_s"]
    targets = []
    if scale in TARGET_SECONDS:
        targets.append(
            Target("generate+append s", realistic["total_s"], TARGET_SECONDS[scale], "<")
        )
    figures = {
        "spec": {
            "people": PEOPLE[scale],
            "days": DAYS,
            "seed": SEED,
            "end_date": END_DATE.isoformat(),
        },
        "events": realistic["events"],
        "events_per_s": realistic["events_per_s"],
        "people_per_s": realistic["people_per_s"],
        "total_s": realistic["total_s"],
        "events_per_person": realistic["events_per_person"],
        "raw_events_per_s": raw["events_per_s"],
        "peak_rss_mb": realistic["peak_rss_mb"],
        "realistic": {**realistic, "timing": timings["realistic"].as_dict()},
        "raw": {**raw, "timing": timings["raw"].as_dict()},
        "process_peak_rss_mb": process_peak_rss_mb(),
    }
    return record(
        NAME,
        figures,
        scale=scale,
        ratios={"realistic/raw": ratio},
        targets=targets,
        headline=(
            "events",
            "total_s",
            "events_per_person",
            "events_per_s",
            "people_per_s",
            "raw_events_per_s",
            "peak_rss_mb",
        ),
    )
