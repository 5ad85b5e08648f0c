"""OneID on the demo brand, checked against its ground truth (``demo_people``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from siyu.demo.generator import DemoSpec
from siyu.demo.service import write_events
from siyu.events import open_event_store
from siyu.identity import service
from siyu.store import open_database
from siyu.store.migrate import upgrade


def test_no_resolved_person_mixes_two_real_people(tmp_path: Path) -> None:
    events = open_event_store(f"duckdb:///{tmp_path / 'events.duckdb'}")
    write_events(DemoSpec(people=4_000, days=180, seed=8, end_date=date(2026, 9, 30)), events)
    database = open_database(f"sqlite:///{tmp_path / 'siyu.db'}")
    upgrade(database)
    with database.unit_of_work() as session:
        summary = service.resolve(
            db_session=session, events=events, hash_key=service.derive_hash_key("d" * 40)
        )
    truth = events.table("demo_people").to_pandas()
    mapping = events.table(service.IDENTITY_MAP_TABLE).to_pandas()
    raw_keys = []
    for column, prefix in (
        ("openid", "openid:"),
        ("wecom_external_userid", "wecom_external_userid:"),
        ("member_no", "member_no:"),
        ("phone", "phone:"),
        ("email", "email:"),
        ("device_id", "anonymous_id:"),
    ):
        known = truth[truth[column].notna()]
        raw_keys.append(pd.DataFrame({"key": prefix + known[column], "truth": known["person_key"]}))
    truth_keys = pd.concat(raw_keys)
    joined = mapping.merge(truth_keys, on="key", how="inner")
    assert len(joined) > 0.9 * len(mapping)  # nearly every mapped key is a real person's
    truths_per_person = joined.groupby("person_id")["truth"].nunique()
    assert truths_per_person.max() == 1, "a resolved person mixes two real people"
    people_per_truth = joined.groupby("truth")["person_id"].nunique()
    # Accounts with no linking evidence in the data stay apart: more OneIDs than people, but
    # most people are whole.
    assert (people_per_truth == 1).mean() > 0.75
    assert summary.people >= truth["person_key"].nunique() * 0.9
    events.close()
    database.dispose()
