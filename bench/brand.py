"""A generated demo brand with resolved identities, built once per scale and kept under
``bench/.cache/`` so the analysis benchmarks do not each spend minutes generating it.

The cache is keyed by the generator spec; delete the folder to rebuild. Benchmarks open the
events read-only, so one file serves every run.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from bench.harness import Scale, phase
from siyu.demo.generator import DemoSpec
from siyu.demo.service import write_events
from siyu.events import EventStore, open_event_store
from siyu.identity import service as identity
from siyu.store import open_database
from siyu.store.migrate import upgrade

CACHE = Path(__file__).parent / ".cache"
PEOPLE: dict[Scale, int] = {"small": 100_000, "full": 1_000_000}
END = date(2026, 11, 22)
SEED = 21


def brand_path(scale: Scale) -> Path:
    """The brand's DuckDB file (events and identity_map), generated on first use."""
    people = PEOPLE[scale]
    folder = CACHE / f"brand-{people}-{SEED}-{END.isoformat()}"
    events_file = folder / "events.duckdb"
    if events_file.exists():
        return events_file
    shutil.rmtree(folder, ignore_errors=True)
    building = folder.with_name(folder.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    spec = DemoSpec(people=people, days=365, seed=SEED, end_date=END)
    with phase(f"generate and resolve a {people:,}-person brand (cached in {CACHE})"):
        database = open_database(f"sqlite:///{building / 'siyu.db'}")
        upgrade(database)
        with open_event_store(f"duckdb:///{building / 'events.duckdb'}") as events:
            write_events(spec, events)
            with database.unit_of_work() as session:
                identity.resolve(
                    db_session=session, events=events, hash_key=identity.derive_hash_key("b" * 40)
                )
        database.dispose()
    building.rename(folder)
    return events_file


def open_brand(scale: Scale) -> EventStore:
    """The cached brand's events, read-only."""
    return open_event_store(f"duckdb:///{brand_path(scale)}", read_only=True)
