"""OneID resolution: identifiers of a generated brand resolved into people.

siyu's full resolution (observations through Ibis, normalisation, shared-device and
member-number rules, components, person assignment, writing identifiers and the identity map)
against a baseline measured in the same run: scipy's connected components over the same links
with no rules and nothing written (the bare graph step every resolver must do).
Target (full: 1M people, ~3M identifiers): under 60 s.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from bench.harness import PeakRss, Result, Scale, Stopwatch, Target, phase, progress, record
from siyu.demo.generator import DemoSpec
from siyu.demo.service import write_events
from siyu.events import open_event_store
from siyu.identity import service
from siyu.identity.observations import identity_tables
from siyu.store import open_database
from siyu.store.migrate import upgrade

NAME = "identity"
PEOPLE: dict[Scale, int] = {"small": 100_000, "full": 1_000_000}
TARGET_SECONDS = 60.0


def _bare_components(events: object) -> tuple[float, int]:
    with Stopwatch() as watch:
        tables = identity_tables(events.table())  # type: ignore[attr-defined]
        size = tables["nodes"].num_rows
        a = tables["links"].column("a").to_numpy()
        b = tables["links"].column("b").to_numpy()
        graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(size, size))
        count, _ = connected_components(graph, directed=False)
    return watch.seconds, int(count)


def run(scale: Scale) -> Result:
    people = PEOPLE[scale]
    spec = DemoSpec(people=people, days=365, seed=21, end_date=date(2026, 11, 22))
    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
        folder = Path(tmp)
        events = open_event_store(f"duckdb:///{folder / 'events.duckdb'}")
        with phase(f"generate {people:,} people"):
            write_events(spec, events)
        database = open_database(f"sqlite:///{folder / 'siyu.db'}")
        upgrade(database)
        baseline_s, components = _bare_components(events)
        progress(f"baseline: {components:,} components in {baseline_s:.1f} s")
        with PeakRss() as rss, Stopwatch() as watch, database.unit_of_work() as session:
            summary = service.resolve(
                db_session=session, events=events, hash_key=service.derive_hash_key("b" * 40)
            )
        progress(f"siyu: {summary.people:,} people in {watch.seconds:.1f} s")
        database.dispose()
        events.close()
    figures = {
        "people_generated": people,
        "identifiers": summary.identifiers,
        "people_resolved": summary.people,
        "components_without_rules": components,
        "shared_devices": summary.shared_devices,
        "splits": summary.splits,
        "resolve_s": watch.seconds,
        "baseline_s": baseline_s,
        "peak_rss_mb": rss.peak_mb,
    }
    targets = [Target("resolve s", watch.seconds, TARGET_SECONDS, "<")] if scale == "full" else []
    return record(
        NAME,
        figures,
        scale=scale,
        ratios={"siyu/bare components (time)": watch.seconds / baseline_s},
        targets=targets,
        headline=("identifiers", "people_resolved", "resolve_s", "baseline_s", "peak_rss_mb"),
    )
