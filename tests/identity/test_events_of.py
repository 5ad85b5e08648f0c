"""A person's events: by user key, by device, and what siyu recorded about them."""

from __future__ import annotations

from pathlib import Path

from siyu.events import open_event_store
from siyu.identity.service import events_of
from tests.analytics.conftest import event_table, write_identity


def test_events_of_a_person(tmp_path: Path) -> None:
    rows = [
        {"user": "a", "name": "login", "ts": "2026-03-01 10:00"},
        {"user_id": None, "anonymous_id": "dev1", "name": "page_view", "ts": "2026-03-01 11:00"},
        {"user_id": "oneid:P", "name": "tier_changed", "ts": "2026-03-02 00:00",
         "channel": "system"},
        {"user": "b", "name": "login", "ts": "2026-03-01 12:00"},
        {"user_id": "oneid:Q", "name": "tier_changed", "ts": "2026-03-02 00:00",
         "channel": "system"},
    ]  # fmt: skip
    with open_event_store(f"duckdb:///{tmp_path / 'e.duckdb'}") as store:
        store.append(event_table(rows))
        write_identity(store, {"member_no:a": "P", "anonymous_id:dev1": "P", "member_no:b": "Q"})
        names = sorted(events_of(store, "P").name.to_pyarrow().to_pylist())
    assert names == ["login", "page_view", "tier_changed"]
