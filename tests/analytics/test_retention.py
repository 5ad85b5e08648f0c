"""Retention by cohort and cohort LTV, checked against a per-person brute force written here in
plain Python (first occurrences, local buckets, returns, completeness), on hand-made edge cases
and on random event sets; then the segment filter, the API and the CLI."""

from __future__ import annotations

import calendar
import json
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from siyu.analytics.common import RESULTS, AnalysisError, Grain
from siyu.analytics.retention import (
    LtvQuery,
    LtvResult,
    RetentionQuery,
    RetentionResult,
    cohort_ltv,
    retention,
    segment_people,
)
from siyu.api import create_app
from siyu.core.config import Settings
from siyu.core.errors import NotFoundError
from siyu.events import EventStore, open_event_store
from siyu.segments import service as segments
from siyu.segments.models import SegmentCreate
from siyu.store import Database, open_database
from siyu.store.migrate import upgrade
from tests.analytics.conftest import SHANGHAI, event_table, write_identity

Loader = Callable[..., EventStore]

# -- the brute force ------------------------------------------------------------------------


def _local(ts: str) -> datetime:
    return datetime.fromisoformat(ts)  # rows carry Shanghai wall-clock text


def _bucket(day: date, grain: str) -> date:
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    return date(day.year, day.month, 1)


def _steps(first: date, later: date, grain: str) -> int:
    if grain == "month":
        return (later.year - first.year) * 12 + later.month - first.month
    days = (_bucket(later, grain) - first).days
    return days if grain == "day" else days // 7


def _period_end(first: date, grain: str, k: int) -> date:
    if grain == "day":
        return first + timedelta(days=k)
    if grain == "week":
        return first + timedelta(days=7 * k + 6)
    month = first.month - 1 + k
    year, month = first.year + month // 12, month % 12 + 1
    return date(year, month, calendar.monthrange(year, month)[1])


def _person(row: Mapping[str, Any], identity: Mapping[str, str] | None) -> str | None:
    key = f"member_no:{row['user']}"
    return identity.get(key) if identity is not None else row["user"]


def _system(row: Mapping[str, Any]) -> bool:
    return row.get("channel") == "system"


def brute_cohorts(
    rows: list[dict[str, Any]],
    identity: Mapping[str, str] | None,
    cohort_event: str | None,
    grain: str,
    start: date,
    end: date,
    by_channel: bool = False,
) -> dict[str, tuple[date, str | None, datetime, str]]:
    """person → (cohort bucket, channel of first event, first local ts, first event id)."""
    firsts: dict[str, tuple[datetime, str, dict[str, Any]]] = {}
    for row in rows:
        person = _person(row, identity)
        if person is None:
            continue
        matches = row["name"] == cohort_event if cohort_event else not _system(row)
        if not matches:
            continue
        key = (_local(row["ts"]), row["event_id"])
        if person not in firsts or key < firsts[person][:2]:
            firsts[person] = (key[0], key[1], row)
    found = {}
    for person, (ts, event_id, row) in firsts.items():
        if start <= ts.date() <= end:
            channel = row.get("channel", "web") if by_channel else None
            found[person] = (_bucket(ts.date(), grain), channel, ts, event_id)
    return found


def _data_end(rows: list[dict[str, Any]]) -> date:
    return max(_local(r["ts"]).date() for r in rows if not _system(r))


def _all_buckets(start: date, end: date, grain: str) -> list[date]:
    found: list[date] = []
    day = start
    while day <= end:
        if _bucket(day, grain) not in found:
            found.append(_bucket(day, grain))
        day += timedelta(days=1)
    return found


def brute_retention(
    rows: list[dict[str, Any]],
    identity: Mapping[str, str] | None,
    *,
    cohort_event: str | None,
    return_event: str | None,
    grain: str,
    periods: int,
    unbounded: bool,
    start: date,
    end: date,
    by_channel: bool = False,
) -> dict[tuple[date, str | None], tuple[int, list[int | None]]]:
    cohorts = brute_cohorts(rows, identity, cohort_event, grain, start, end, by_channel)
    returned: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        person = _person(row, identity)
        if person not in cohorts:
            continue
        matches = row["name"] == return_event if return_event else not _system(row)
        first, _channel, first_ts, first_id = cohorts[person]
        ts = _local(row["ts"])
        if matches and ts >= first_ts and row["event_id"] != first_id:
            returned[person].add(_steps(first, ts.date(), grain))
    data_end = _data_end(rows)
    keys = {(c[0], c[1]) for c in cohorts.values()}
    if not by_channel:
        keys |= {(b, None) for b in _all_buckets(start, end, grain)}
    result: dict[tuple[date, str | None], tuple[int, list[int | None]]] = {}
    for key in keys:
        members = [p for p, c in cohorts.items() if (c[0], c[1]) == key]
        counts: list[int | None] = []
        for k in range(periods + 1):
            if _period_end(key[0], grain, k) > data_end:
                counts.append(None)
            elif unbounded:
                counts.append(sum(1 for p in members if any(j >= k for j in returned[p])))
            else:
                counts.append(sum(1 for p in members if k in returned[p]))
        result[key] = (len(members), counts)
    return result


def brute_ltv(
    rows: list[dict[str, Any]],
    identity: Mapping[str, str] | None,
    *,
    cohort_event: str | None,
    grain: str,
    periods: int,
    start: date,
    end: date,
) -> dict[tuple[date, str | None], tuple[int, list[float | None]]]:
    cohorts = brute_cohorts(rows, identity, cohort_event, grain, start, end)
    revenue: dict[date, list[float]] = defaultdict(lambda: [0.0] * (periods + 1))
    for row in rows:
        person = _person(row, identity)
        if person not in cohorts or row["name"] not in ("order_paid", "refund"):
            continue
        first, _channel, first_ts, _id = cohorts[person]
        ts = _local(row["ts"])
        k = _steps(first, ts.date(), grain)
        if ts >= first_ts and k <= periods:
            amount = float(row.get("amount") or 0)
            revenue[first][k] += -abs(amount) if row["name"] == "refund" else amount
    data_end = _data_end(rows)
    result: dict[tuple[date, str | None], tuple[int, list[float | None]]] = {}
    for first in _all_buckets(start, end, grain):
        size = sum(1 for c in cohorts.values() if c[0] == first)
        cumulative: list[float | None] = []
        running = 0.0
        for k in range(periods + 1):
            running += revenue[first][k]
            complete = _period_end(first, grain, k) <= data_end
            cumulative.append(running if complete else None)
        result[(first, None)] = (size, cumulative)
    return result


def engine_rows(result: RetentionResult) -> dict[tuple[date, str | None], tuple[int, list[Any]]]:
    return {
        (row.cohort, row.channel): (row.size, [cell.count for cell in row.periods])
        for row in result.cohorts
    }


def check_retention(result: RetentionResult, expected: dict[Any, Any]) -> None:
    assert engine_rows(result) == expected
    for row in result.cohorts:
        for cell in row.periods:
            if cell.count is None:
                assert cell.rate is None and not cell.complete
            elif row.size:
                assert cell.rate == pytest.approx(cell.count / row.size)
            else:
                assert cell.rate is None
    for k, average in enumerate(result.average):
        complete = [
            (size, counts[k])
            for size, counts in expected.values()
            if size and counts[k] is not None
        ]
        assert average.cohorts == len(complete)
        assert average.size == sum(s for s, _ in complete)
        assert average.count == (sum(c for _, c in complete) if complete else None)
        total = sum(s for s, _ in complete)
        assert average.rate == (pytest.approx(average.count / total) if total else None)


# -- hand-made edge cases -------------------------------------------------------------------

IDS = iter(range(10**9))


def ev(user: str, name: str, ts: str, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"r{next(IDS):09d}", "user": user, "name": name, "ts": ts, **extra}


MERGED = {
    "member_no:a": "a",
    "member_no:b1": "B",
    "member_no:b2": "B",
    "member_no:c": "c",
    "member_no:d": "d",
    "member_no:e": "e",
    "member_no:f": "f",
    "member_no:g": "g",
}
ROWS = [
    # a: registers on Monday 2 March; buys the same instant, again at 23:59 (D0) and right
    # after local midnight (D1); registers again later (ignored as a cohort event).
    ev("a", "register", "2026-03-02 10:00"),
    ev("a", "order_paid", "2026-03-02 10:00", amount=100),
    ev("a", "order_paid", "2026-03-02 23:59", amount=50),
    ev("a", "order_paid", "2026-03-03 00:00", amount=20),
    ev("a", "register", "2026-03-20 09:00"),
    ev("a", "refund", "2026-03-25 09:00", amount=30),
    # B: merged identities; registers as b1, buys as b2 two weeks later, before as b2.
    ev("b2", "order_paid", "2026-03-01 08:00", amount=999),
    ev("b1", "register", "2026-03-04 12:00", channel="wecom"),
    ev("b2", "order_paid", "2026-03-18 12:00", amount=70),
    # c: first registered before the period: never a cohort member, though active inside.
    ev("c", "register", "2026-02-28 23:59"),
    ev("c", "register", "2026-03-03 09:00"),
    ev("c", "order_paid", "2026-03-05 09:00", amount=10),
    # d: registers on the period's last day (Sunday 15th is in week 9 March).
    ev("d", "register", "2026-03-15 23:59", channel="wecom"),
    ev("d", "order_paid", "2026-04-01 10:00", amount=40),
    # e: registers, only siyu's own system events after.
    ev("e", "register", "2026-03-10 10:00"),
    ev("e", "message_sent", "2026-03-11 10:00", channel="system"),
    ev("e", "login", "2026-03-31 10:00"),
    # f: registers just after the period (outside).
    ev("f", "register", "2026-03-16 00:00"),
    # g: registers and logs in at the very same instant.
    ev("g", "register", "2026-03-09 08:00"),
    ev("g", "login", "2026-03-09 08:00"),
    ev("g", "login", "2026-04-06 08:00"),
    # the data's last day (system events do not count toward it)
    ev("a", "login", "2026-04-08 12:00"),
    ev("e", "message_sent", "2026-05-20 10:00", channel="system"),
]
START, END = date(2026, 3, 1), date(2026, 3, 15)


@pytest.fixture
def brand(load: Loader) -> EventStore:
    return load(ROWS, identity=MERGED)


CASES = [
    ("register", "order_paid", "day", 3, False),
    ("register", "order_paid", "week", 5, False),
    ("register", "order_paid", "week", 5, True),
    ("register", None, "week", 5, False),
    (None, None, "day", 8, True),
    ("register", "register", "month", 2, False),
    (None, "login", "month", 2, True),
]


@pytest.mark.parametrize(("cohort", "ret", "grain", "periods", "unbounded"), CASES)
def test_retention_matches_brute_force(
    brand: EventStore,
    cohort: str | None,
    ret: str | None,
    grain: str,
    periods: int,
    unbounded: bool,
) -> None:
    query = RetentionQuery(
        cohort_event=cohort,
        return_event=ret,
        grain=Grain(grain),
        periods=periods,
        unbounded=unbounded,
        start=START,
        end=END,
    )
    result = retention(brand, query, tz=SHANGHAI)
    expected = brute_retention(
        ROWS,
        MERGED,
        cohort_event=cohort,
        return_event=ret,
        grain=grain,
        periods=periods,
        unbounded=unbounded,
        start=START,
        end=END,
    )
    check_retention(result, expected)
    assert result.data_end == date(2026, 4, 8)


def test_the_edge_cases_read_as_documented(brand: EventStore) -> None:
    query = RetentionQuery(
        cohort_event="register",
        return_event="order_paid",
        grain=Grain.day,
        periods=2,
        start=START,
        end=END,
    )
    result = retention(brand, query, tz=SHANGHAI)
    by_day = {row.cohort: row for row in result.cohorts}
    monday = by_day[date(2026, 3, 2)]
    # a bought at the registration instant and at 23:59 (D0) and at 00:00 the next day (D1)
    assert monday.size == 1
    assert [c.count for c in monday.periods] == [1, 1, 0]
    # c registered first on 28 February: no cohort on 3 March; f on the 16th: outside
    assert by_day[date(2026, 3, 3)].size == 0
    assert date(2026, 3, 16) not in by_day
    weekly = retention(
        brand, query.model_copy(update={"grain": Grain.week, "periods": 4}), tz=SHANGHAI
    )
    week = {row.cohort: row for row in weekly.cohorts}
    # B bought before registering (not a return) and in week 2 (16-22 March)
    first = week[date(2026, 3, 2)]
    assert first.size == 2
    assert [c.count for c in first.periods] == [1, 0, 1, 0, 0]
    # the week of 9 March: periods ending after 8 April are incomplete, not 0
    second = week[date(2026, 3, 9)]
    assert [c.complete for c in second.periods] == [True, True, True, True, False]
    assert second.periods[4].count is None and second.periods[4].rate is None


def test_channel_breakdown(brand: EventStore) -> None:
    query = RetentionQuery(
        cohort_event="register",
        return_event="order_paid",
        grain=Grain.week,
        periods=4,
        start=START,
        end=END,
        breakdown="channel",
    )
    result = retention(brand, query, tz=SHANGHAI)
    expected = brute_retention(
        ROWS,
        MERGED,
        cohort_event="register",
        return_event="order_paid",
        grain="week",
        periods=4,
        unbounded=False,
        start=START,
        end=END,
        by_channel=True,
    )
    check_retention(result, expected)
    assert {(r.cohort, r.channel) for r in result.cohorts} == {
        (date(2026, 3, 2), "web"),
        (date(2026, 3, 2), "wecom"),
        (date(2026, 3, 9), "web"),
        (date(2026, 3, 9), "wecom"),
    }


@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_ltv_matches_brute_force(brand: EventStore, grain: str) -> None:
    query = LtvQuery(cohort_event="register", grain=Grain(grain), periods=3, start=START, end=END)
    result = cohort_ltv(brand, query, tz=SHANGHAI)
    expected = brute_ltv(
        ROWS, MERGED, cohort_event="register", grain=grain, periods=3, start=START, end=END
    )
    check_ltv(result, expected)


def check_ltv(result: LtvResult, expected: dict[Any, Any]) -> None:
    found = {
        (r.cohort, r.channel): (r.size, [c.revenue for c in r.periods]) for r in result.cohorts
    }
    assert found.keys() == expected.keys()
    for key, (size, cumulative) in expected.items():
        assert found[key][0] == size
        assert found[key][1] == [None if v is None else pytest.approx(v) for v in cumulative]
    for row in result.cohorts:
        for cell in row.periods:
            if cell.revenue is None or not row.size:
                assert cell.per_member is None
            else:
                assert cell.per_member == pytest.approx(cell.revenue / row.size)
    for k, average in enumerate(result.average):
        complete = [(s, c[k]) for s, c in expected.values() if s and c[k] is not None]
        total = sum(s for s, _ in complete)
        assert average.size == total
        if total:
            assert average.per_member == pytest.approx(sum(v for _, v in complete) / total)
        else:
            assert average.per_member is None and average.revenue is None


def test_ltv_counts_the_first_order_and_subtracts_refunds(brand: EventStore) -> None:
    query = LtvQuery(cohort_event="order_paid", grain=Grain.month, periods=1, start=START, end=END)
    result = cohort_ltv(brand, query, tz=SHANGHAI)
    (march,) = result.cohorts
    # a: 100 + 50 + 20 - 30; B: 999 + 70 (first order on 1 March); c: 10
    assert march.size == 3
    assert march.periods[0].revenue == pytest.approx(100 + 50 + 20 - 30 + 999 + 70 + 10)
    # April ends after the data's last day (8 April): incomplete, not a number
    assert march.periods[1].revenue is None and not march.periods[1].complete


# -- random event sets ---------------------------------------------------------------------

NAMES = ["register", "login", "order_paid", "refund", "message_sent"]
DAY0 = datetime(2026, 1, 26)  # a Monday


@st.composite
def event_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    size = draw(st.integers(1, 40))
    rows = []
    for index in range(size):
        minute = draw(st.sampled_from([0, 1, 60 * 24 - 1, 60 * 16, 60 * 8]))
        day = draw(st.integers(0, 75))
        name = draw(st.sampled_from(NAMES))
        rows.append(
            {
                "event_id": f"h{index:05d}",
                "user": draw(st.sampled_from(["u1", "u2", "u3", "u4", "u5"])),
                "name": name,
                "ts": (DAY0 + timedelta(days=day, minutes=minute)).strftime("%Y-%m-%d %H:%M"),
                "channel": "system"
                if name == "message_sent"
                else draw(st.sampled_from(["web", "wecom"])),
                "amount": draw(st.integers(1, 500)) if name in ("order_paid", "refund") else None,
            }
        )
    return rows


IDENTITY = {
    "member_no:u1": "P1",
    "member_no:u2": "P1",
    "member_no:u3": "P3",
    "member_no:u4": "P4",
    "member_no:u5": "P5",
}


@settings(max_examples=15, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=event_sets(),
    cohort=st.sampled_from([None, "register", "login"]),
    ret=st.sampled_from([None, "order_paid", "login"]),
    grain=st.sampled_from(["day", "week", "month"]),
    periods=st.integers(1, 5),
    unbounded=st.booleans(),
    by_channel=st.booleans(),
    first_day=st.integers(0, 30),
    length=st.integers(1, 40),
)
def test_random_event_sets_match_brute_force(
    rows: list[dict[str, Any]],
    cohort: str | None,
    ret: str | None,
    grain: str,
    periods: int,
    unbounded: bool,
    by_channel: bool,
    first_day: int,
    length: int,
) -> None:
    names = {r["name"] for r in rows}
    if (cohort and cohort not in names) or (ret and ret not in names):
        return
    if all(r["channel"] == "system" for r in rows):
        return
    start = (DAY0 + timedelta(days=first_day)).date()
    end = start + timedelta(days=length - 1)
    RESULTS.clear()
    with (
        tempfile.TemporaryDirectory() as folder,
        open_event_store(f"duckdb:///{Path(folder) / 'events.duckdb'}") as store,
    ):
        store.append(event_table(list(rows)))
        write_identity(store, IDENTITY)
        query = RetentionQuery(
            cohort_event=cohort,
            return_event=ret,
            grain=Grain(grain),
            periods=periods,
            unbounded=unbounded,
            start=start,
            end=end,
            breakdown="channel" if by_channel else None,
        )
        expected = brute_retention(
            rows,
            IDENTITY,
            cohort_event=cohort,
            return_event=ret,
            grain=grain,
            periods=periods,
            unbounded=unbounded,
            start=start,
            end=end,
            by_channel=by_channel,
        )
        check_retention(retention(store, query, tz=SHANGHAI), expected)
        if not by_channel:
            ltv = cohort_ltv(
                store,
                LtvQuery(
                    cohort_event=cohort, grain=Grain(grain), periods=periods, start=start, end=end
                ),
                tz=SHANGHAI,
            )
            check_ltv(
                ltv,
                brute_ltv(
                    rows,
                    IDENTITY,
                    cohort_event=cohort,
                    grain=grain,
                    periods=periods,
                    start=start,
                    end=end,
                ),
            )


# -- bad input and empty results -----------------------------------------------------------


def test_bad_input(brand: EventStore) -> None:
    with pytest.raises(AnalysisError) as unknown:
        retention(brand, RetentionQuery(cohort_event="regsiter"), tz=SHANGHAI)
    assert unknown.value.context["field"] == "cohort_event"
    with pytest.raises(AnalysisError):
        retention(brand, RetentionQuery(return_event="nope"), tz=SHANGHAI)
    with pytest.raises(AnalysisError):
        retention(brand, RetentionQuery(start=END, end=START), tz=SHANGHAI)
    with pytest.raises(ValidationError):
        RetentionQuery(periods=0)
    with pytest.raises(ValidationError):
        RetentionQuery(periods=61)


def test_empty_results_are_labelled(brand: EventStore, store: EventStore) -> None:
    query = RetentionQuery(
        cohort_event="register",
        grain=Grain.week,
        periods=2,
        start=date(2025, 1, 1),
        end=date(2025, 1, 31),
    )
    result = retention(brand, query, tz=SHANGHAI)
    assert result.empty and all(row.size == 0 for row in result.cohorts)
    assert all(a.count is None and a.rate is None for a in result.average)
    ltv = cohort_ltv(brand, LtvQuery(start=date(2025, 1, 1), end=date(2025, 1, 31)), tz=SHANGHAI)
    assert ltv.empty and all(a.per_member is None for a in ltv.average)


def test_an_empty_store_gives_an_empty_result(store: EventStore) -> None:
    result = retention(store, RetentionQuery(grain=Grain.day, periods=3), tz=SHANGHAI)
    assert result.empty and result.data_end is None
    assert all(not cell.complete for row in result.cohorts for cell in row.periods)


# -- segment, API, CLI ---------------------------------------------------------------------


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'siyu.db'}")
    upgrade(database)
    yield database
    database.dispose()


def _vip(database: Database, events: EventStore) -> None:
    with database.unit_of_work() as session:
        world = segments.world(session, events, tz=SHANGHAI)
        segments.create_segment(session, world, SegmentCreate(key="vip", name="VIP", kind="static"))
        segments.upload_members(session, events, "vip", ["a", "d"])


def test_segment_restricts_the_cohorts(brand: EventStore, database: Database) -> None:
    _vip(database, brand)
    query = RetentionQuery(
        cohort_event="register",
        return_event="order_paid",
        grain=Grain.week,
        periods=4,
        start=START,
        end=END,
        segment="vip",
    )
    with database.unit_of_work() as session:
        members = segment_people(session, brand, tz=SHANGHAI, key="vip")
        result = retention(brand, query, tz=SHANGHAI, members=members)
        with pytest.raises(NotFoundError):
            segment_people(session, brand, tz=SHANGHAI, key="nope")
    kept = [r for r in ROWS if r["user"] in ("a", "d")]
    expected = brute_retention(
        kept,
        MERGED,
        cohort_event="register",
        return_event="order_paid",
        grain="week",
        periods=4,
        unbounded=False,
        start=START,
        end=END,
    )
    assert _data_end(kept) == _data_end(ROWS)  # completeness reads the whole store
    check_retention(result, expected)
    assert sum(r.size for r in result.cohorts) == 2


@pytest.fixture
def client(settings: Settings, database: Database, brand: EventStore) -> Iterator[TestClient]:
    settings = settings.model_copy(update={"database_url": str(database.engine.url)})
    with TestClient(create_app(settings, events=brand)) as test_client:
        yield test_client


def test_api(client: TestClient, database: Database, brand: EventStore) -> None:
    body = {
        "cohort_event": "register",
        "return_event": "order_paid",
        "grain": "week",
        "periods": 4,
        "start": "2026-03-01",
        "end": "2026-03-15",
        "unbounded": True,
    }
    answer = client.post("/v1/analytics/retention", json=body)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    expected = brute_retention(
        ROWS,
        MERGED,
        cohort_event="register",
        return_event="order_paid",
        grain="week",
        periods=4,
        unbounded=True,
        start=START,
        end=END,
    )
    assert {
        (date.fromisoformat(r["cohort"]), r["channel"]): (
            r["size"],
            [c["count"] for c in r["periods"]],
        )
        for r in document["cohorts"]
    } == expected
    ltv = client.post("/v1/analytics/cohort-ltv", json={"cohort_event": "register", "periods": 2})
    assert ltv.status_code == 200 and "average" in ltv.json()
    _vip(database, brand)
    segmented = client.post("/v1/analytics/retention", json={**body, "segment": "vip"})
    assert segmented.status_code == 200
    assert sum(r["size"] for r in segmented.json()["cohorts"]) == 2
    for bad, status in (
        ({**body, "cohort_event": "nope"}, 422),
        ({**body, "periods": 0}, 422),
        ({**body, "periods": 61}, 422),
        ({**body, "grain": "year"}, 422),
        ({**body, "start": "2026-03-20", "end": "2026-03-01"}, 422),
        ({**body, "segment": "nope"}, 404),
        ({**body, "extra": 1}, 422),
        ({**body, "end": "9999-12-31"}, 422),
    ):
        wrong = client.post("/v1/analytics/retention", json=bad)
        assert wrong.status_code == status, (bad, wrong.text)
        assert wrong.headers["content-type"].startswith("application/problem+json")


def test_cli(
    brand: EventStore,
    database: Database,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from siyu.cli import app
    from siyu.core.config import get_settings

    brand.close()
    monkeypatch.setenv("SIYU_HOME", str(settings.home))
    monkeypatch.setenv("SIYU_DATABASE_URL", database.engine.url.render_as_string(False))
    monkeypatch.setenv("SIYU_EVENTS_URL", f"duckdb:///{tmp_path / 'events.duckdb'}")
    monkeypatch.setenv("SIYU_LANG", "en")
    get_settings.cache_clear()
    runner = CliRunner()
    args = [
        "analytics",
        "retention",
        "--cohort-event",
        "register",
        "--return-event",
        "order_paid",
        "--grain",
        "week",
        "--periods",
        "4",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-15",
    ]
    answer = runner.invoke(app, [*args, "--json"])
    assert answer.exit_code == 0, answer.output
    document = json.loads(answer.output)
    assert [r["size"] for r in document["cohorts"]] == [0, 2, 3]
    human = runner.invoke(app, [*args, "--unbounded", "--by-channel"])
    assert human.exit_code == 0, human.output
    assert "Average" in human.output and "wecom" in human.output
    ltv = runner.invoke(app, ["analytics", "ltv", "--cohort-event", "register", "--periods", "2"])
    assert ltv.exit_code == 0, ltv.output
    wrong = runner.invoke(app, ["analytics", "retention", "--cohort-event", "nope"])
    assert wrong.exit_code == 2 and "Traceback" not in wrong.output
    bad = runner.invoke(app, ["analytics", "retention", "--periods", "0"])
    assert bad.exit_code == 2
    get_settings.cache_clear()
