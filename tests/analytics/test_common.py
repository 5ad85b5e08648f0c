from __future__ import annotations

from datetime import date, timedelta

import pytest

from siyu.analytics.common import (
    AnalysisError,
    Grain,
    Period,
    buckets,
    cached,
    change,
    parse_window,
    ratio,
    resolve_period,
    resolved_events,
)
from tests.analytics.conftest import SHANGHAI, at


def test_period_bounds_are_local_midnights() -> None:
    period = Period(date(2026, 11, 1), date(2026, 11, 7), SHANGHAI)
    assert period.days == 7
    assert period.start_utc == at("2026-11-01 00:00")
    assert period.end_utc == at("2026-11-08 00:00")
    assert period.previous() == Period(date(2026, 10, 25), date(2026, 10, 31), SHANGHAI)
    leap = Period(date(2028, 2, 29), date(2028, 3, 1), SHANGHAI).year_ago()
    assert (leap.start, leap.end) == (date(2027, 2, 28), date(2027, 3, 1))


def test_default_period_ends_on_the_latest_event_day(load) -> None:
    store = load([{"user": "a", "name": "login", "ts": "2026-03-10 23:59"}])
    period = resolve_period(store, SHANGHAI)
    assert (period.start, period.end) == (date(2026, 2, 9), date(2026, 3, 10))
    with pytest.raises(AnalysisError):
        resolve_period(store, SHANGHAI, date(2026, 3, 2), date(2026, 3, 1))
    with pytest.raises(AnalysisError):
        resolve_period(store, SHANGHAI, date(2020, 1, 1), date(2026, 3, 1))


@pytest.mark.parametrize("text", ["0d", "-3d", "7", "d", "", "7 days", "400d", "1e3d"])
def test_bad_windows(text: str) -> None:
    with pytest.raises(AnalysisError):
        parse_window(text)


def test_windows() -> None:
    assert parse_window("30m") == timedelta(minutes=30)
    assert parse_window("7d") == timedelta(days=7)
    assert parse_window(" 2w ") == timedelta(days=14)


def test_buckets_cover_the_period() -> None:
    period = Period(date(2026, 10, 28), date(2026, 11, 3), SHANGHAI)
    assert buckets(period, Grain.week) == [date(2026, 10, 26), date(2026, 11, 2)]
    assert buckets(period, Grain.month) == [date(2026, 10, 1), date(2026, 11, 1)]
    assert len(buckets(period, Grain.day)) == 7


def test_resolved_events_use_local_days_and_merged_identities(load) -> None:
    store = load(
        [
            {"user": "a", "name": "login", "ts": "2026-03-10 23:59"},
            {"user": "b", "name": "login", "ts": "2026-03-11 00:00"},
            {"user": "ghost", "name": "login", "ts": "2026-03-11 00:00"},
        ],
        identity={"member_no:a": "P", "member_no:b": "P"},
    )
    period = Period(date(2026, 3, 11), date(2026, 3, 11), SHANGHAI)
    rows = (
        resolved_events(store, period.offset, start=period.start_utc, end=period.end_utc)
        .select("person_id", "local_date")
        .to_pyarrow()
        .to_pylist()
    )
    assert rows == [{"person_id": "P", "local_date": date(2026, 3, 11)}]


def test_ratio_and_change_are_never_nan() -> None:
    assert ratio(1, 0) is None
    assert ratio(1, 4) == 0.25
    assert change(5, 0) is None
    assert change(None, 3) is None
    assert change(6, 4) == 0.5


def test_results_are_cached_until_the_data_changes(load) -> None:
    store = load([{"user": "a", "name": "login", "ts": "2026-03-10 10:00"}])
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert cached(store, "x", {"a": 1}, compute) == 1
    assert cached(store, "x", {"a": 1}, compute) == 1
    assert cached(store, "x", {"a": 2}, compute) == 2
    load([{"user": "b", "name": "login", "ts": "2026-03-10 11:00"}])
    assert cached(store, "x", {"a": 1}, compute) == 3
