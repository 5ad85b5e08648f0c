"""Repurchase rates, intervals between orders and expected next purchases, checked against a
per-person brute force in plain Python (statistics with numpy percentiles), on hand-made edge
cases and random order sets; then the API and the CLI."""

from __future__ import annotations

import itertools
import json
import math
import tempfile
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from siyu.analytics.common import RESULTS, AnalysisError
from siyu.analytics.repurchase import (
    EDGES,
    NextPurchaseQuery,
    RepurchaseQuery,
    RepurchaseResult,
    next_purchase,
    repurchase,
)
from siyu.api import create_app
from siyu.core.config import Settings
from siyu.events import EventStore, open_event_store
from siyu.store import open_database
from siyu.store.migrate import upgrade
from tests.analytics.conftest import SHANGHAI, event_table, write_identity

Loader = Callable[..., EventStore]
Order = tuple[datetime, str, str | None]  # local time, order key, category

# -- the brute force ------------------------------------------------------------------------


def brute_orders(
    rows: list[dict[str, Any]], identity: Mapping[str, str], end: date, category: str | None
) -> dict[str, list[Order]]:
    """person → their orders up to ``end`` (local), once per order id, in order."""
    first: dict[tuple[str, str], tuple[datetime, str, str | None]] = {}
    for row in rows:
        person = identity.get(f"member_no:{row['user']}")
        if person is None or row["name"] != "order_paid":
            continue
        ts = datetime.fromisoformat(row["ts"])
        if ts.date() > end:
            continue
        key = row.get("order_id") or row["event_id"]
        candidate = (ts, row["event_id"], row.get("category"))
        if (person, key) not in first or candidate[:2] < first[(person, key)][:2]:
            first[(person, key)] = candidate
    found: dict[str, list[Order]] = defaultdict(list)
    for (person, key), (ts, _id, cat) in first.items():
        if category is None or cat == category:
            found[person].append((ts, key, cat))
    for orders in found.values():
        orders.sort(key=lambda order: (order[0], order[1]))
    return found


def gaps(orders: list[Order]) -> list[tuple[datetime, int]]:
    """(later order's time, local days since the one before) for consecutive orders."""
    return [(b[0], (b[0].date() - a[0].date()).days) for a, b in itertools.pairwise(orders)]


def brute_repurchase(
    rows: list[dict[str, Any]],
    identity: Mapping[str, str],
    start: date,
    end: date,
    category: str | None = None,
) -> dict[str, Any]:
    people = brute_orders(rows, identity, end, category)
    counts = {p: sum(1 for o in orders if o[0].date() >= start) for p, orders in people.items()}
    buyers = [p for p, n in counts.items() if n]
    repeat = [p for p in buyers if counts[p] >= 2]
    returning = [p for p in buyers if any(o[0].date() < start for o in people[p])]
    series: dict[str | None, list[int]] = defaultdict(list)
    for orders in people.values():
        if category is None:
            series[None] += [g for ts, g in gaps(orders) if ts.date() >= start]
        by_cat: dict[str, list[Order]] = defaultdict(list)
        for order in orders:
            if order[2] is not None:
                by_cat[order[2]].append(order)
        for cat, own in by_cat.items():
            series[cat] += [g for ts, g in gaps(own) if ts.date() >= start]
    return {
        "orders": sum(counts.values()),
        "buyers": len(buyers),
        "repeat": len(repeat),
        "returning": len(returning),
        "intervals": {cat: values for cat, values in series.items() if values},
    }


def histogram(values: list[int]) -> list[int]:
    bins = [0] * len(EDGES)
    for value in values:
        bins[max(i for i, edge in enumerate(EDGES) if value >= edge)] += 1
    return bins


def check_repurchase(result: RepurchaseResult, expected: dict[str, Any]) -> None:
    assert result.orders == expected["orders"]
    assert result.buyers == expected["buyers"]
    assert result.repeat_buyers == expected["repeat"]
    assert result.returning_buyers == expected["returning"]
    buyers = expected["buyers"]
    assert result.repurchase_rate == (
        pytest.approx(expected["repeat"] / buyers) if buyers else None
    )
    assert result.returning_rate == (
        pytest.approx(expected["returning"] / buyers) if buyers else None
    )
    assert result.empty == (buyers == 0)
    found = {stats.category: stats for stats in result.intervals if stats.intervals}
    assert found.keys() == expected["intervals"].keys()
    for cat, values in expected["intervals"].items():
        stats = found[cat]
        p25, median, p75 = np.percentile(values, [25, 50, 75])
        assert stats.intervals == len(values)
        assert [stats.p25, stats.median, stats.p75] == pytest.approx([p25, median, p75])
        assert stats.mean == pytest.approx(np.mean(values))
        assert [b.count for b in stats.histogram] == histogram(values)
    for stats in result.intervals:
        if not stats.intervals:
            assert stats.median is None and stats.mean is None


def brute_next(
    rows: list[dict[str, Any]], identity: Mapping[str, str], as_of: date, category: str | None
) -> dict[str, tuple[date, date | None, int | None, str | None]]:
    """person → (last order day, expected next day, days overdue, basis)."""
    people = brute_orders(rows, identity, as_of, category)
    all_gaps = [g for orders in people.values() for _ts, g in gaps(orders)]
    by_cat: dict[str, list[int]] = defaultdict(list)
    for orders in people.values():
        own: dict[str, list[Order]] = defaultdict(list)
        for order in orders:
            if order[2] is not None:
                own[order[2]].append(order)
        for cat, seq in own.items():
            by_cat[cat] += [g for _ts, g in gaps(seq)]
    result: dict[str, tuple[date, date | None, int | None, str | None]] = {}
    for person, orders in people.items():
        last = orders[-1]
        mine = [g for _ts, g in gaps(orders)]
        if len(mine) >= 2:
            median, basis = float(np.median(mine)), "own"
        elif last[2] is not None and by_cat.get(last[2]):
            median, basis = float(np.median(by_cat[last[2]])), "category"
        elif all_gaps:
            median, basis = float(np.median(all_gaps)), "overall"
        else:
            result[person] = (last[0].date(), None, None, None)
            continue
        expected = last[0].date() + timedelta(days=math.ceil(median))
        result[person] = (last[0].date(), expected, (as_of - expected).days, basis)
    return result


def check_next(
    store: EventStore,
    rows: list[dict[str, Any]],
    identity: Mapping[str, str],
    as_of: date,
    category: str | None,
) -> None:
    expected = brute_next(rows, identity, as_of, category)
    page = next_purchase(
        store, NextPurchaseQuery(as_of=as_of, category=category, limit=500), tz=SHANGHAI
    )
    assert page.total == len(expected)
    found = {
        r.person_id: (r.last_order, r.expected_next, r.days_overdue, r.basis) for r in page.items
    }
    assert found == expected
    order = [(r.days_overdue is None, -(r.days_overdue or 0), r.person_id) for r in page.items]
    assert order == sorted(order)
    overdue = next_purchase(
        store,
        NextPurchaseQuery(as_of=as_of, category=category, overdue_only=True, limit=500),
        tz=SHANGHAI,
    )
    assert {r.person_id for r in overdue.items} == {
        p for p, v in expected.items() if v[2] is not None and v[2] > 0
    }


# -- hand-made edge cases -------------------------------------------------------------------

IDS = iter(range(10**9))


def order(user: str, ts: str, category: str | None = "skin", **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"o{next(IDS):09d}",
        "user": user,
        "name": "order_paid",
        "ts": ts,
        "category": category,
        "amount": 10,
        **extra,
    }


IDENTITY = {
    "member_no:a": "a",
    "member_no:b1": "B",
    "member_no:b2": "B",
    "member_no:c": "c",
    "member_no:d": "d",
    "member_no:e": "e",
}
ROWS = [
    # a: the same order sent twice, orders at 23:59 and 00:00 (1 day apart), mixed categories
    order("a", "2026-02-10 10:00", order_id="A1"),
    order("a", "2026-02-10 10:05", order_id="A1"),
    order("a", "2026-03-01 23:59", order_id="A2", category="hair"),
    order("a", "2026-03-02 00:00", order_id="A3"),
    order("a", "2026-03-20 12:00", order_id="A4"),
    # B: merged identities, two orders at the very same instant, then one more
    order("b1", "2026-03-05 09:00"),
    order("b2", "2026-03-05 09:00"),
    order("b2", "2026-03-29 09:00", category="hair"),
    # c: bought only before the period
    order("c", "2026-01-01 10:00"),
    order("c", "2026-02-01 10:00"),
    # d: bought once, the period's first instant; e: once, just after the period
    order("d", "2026-03-01 00:00", category=None),
    order("e", "2026-04-01 00:00"),
    # not orders
    {"event_id": "x1", "user": "c", "name": "refund", "ts": "2026-03-10 10:00", "amount": 5},
    {"event_id": "x2", "user": "e", "name": "login", "ts": "2026-04-10 10:00"},
]
START, END = date(2026, 3, 1), date(2026, 3, 31)


@pytest.fixture
def brand(load: Loader) -> EventStore:
    return load(ROWS, identity=IDENTITY)


@pytest.mark.parametrize("category", [None, "skin", "hair"])
def test_repurchase_matches_brute_force(brand: EventStore, category: str | None) -> None:
    query = RepurchaseQuery(start=START, end=END, category=category)
    result = repurchase(brand, query, tz=SHANGHAI)
    check_repurchase(result, brute_repurchase(ROWS, IDENTITY, START, END, category))


def test_the_edge_cases_read_as_documented(brand: EventStore) -> None:
    result = repurchase(brand, RepurchaseQuery(start=START, end=END), tz=SHANGHAI)
    # buyers a (3 orders), B (3: two at the same instant), d (1): c bought before only
    assert (result.buyers, result.orders, result.repeat_buyers) == (3, 7, 2)
    assert result.returning_buyers == 1  # a bought in February; A1 sent twice counts once
    overall = result.intervals[0]
    assert overall.category is None
    # a: 19 (10 Feb → 1 Mar), 1 (23:59 → 00:00), 18; B: 0, 24
    assert overall.intervals == 5
    assert overall.median == 18


@pytest.mark.parametrize("category", [None, "skin", "hair"])
@pytest.mark.parametrize("as_of", [date(2026, 3, 31), date(2026, 4, 30), date(2026, 2, 20)])
def test_next_purchase_matches_brute_force(
    brand: EventStore, category: str | None, as_of: date
) -> None:
    check_next(brand, ROWS, IDENTITY, as_of, category)


def test_next_purchase_pages(brand: EventStore) -> None:
    query = NextPurchaseQuery(as_of=date(2026, 4, 30), limit=2)
    first = next_purchase(brand, query, tz=SHANGHAI)
    second = next_purchase(brand, query.model_copy(update={"offset": 2}), tz=SHANGHAI)
    everyone = next_purchase(brand, query.model_copy(update={"limit": 50}), tz=SHANGHAI)
    assert first.total == second.total == everyone.total == 5
    ids = [r.person_id for r in first.items + second.items]
    assert ids == [r.person_id for r in everyone.items][:4]
    beyond = next_purchase(brand, query.model_copy(update={"offset": 99}), tz=SHANGHAI)
    assert beyond.items == [] and beyond.total == 5


# -- random order sets ---------------------------------------------------------------------

DAY0 = datetime(2026, 1, 1)


@st.composite
def order_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = []
    for index in range(draw(st.integers(0, 30))):
        day = draw(st.integers(0, 90))
        minute = draw(st.sampled_from([0, 1, 60 * 24 - 1, 60 * 12]))
        rows.append(
            {
                "event_id": f"h{index:05d}",
                "user": draw(st.sampled_from(["u1", "u2", "u3", "u4"])),
                "name": draw(st.sampled_from(["order_paid", "order_paid", "refund"])),
                "ts": (DAY0 + timedelta(days=day, minutes=minute)).strftime("%Y-%m-%d %H:%M"),
                "category": draw(st.sampled_from(["skin", "hair", None])),
                "order_id": draw(st.sampled_from([None, "K1", "K2", f"k{index}"])),
                "amount": 1,
            }
        )
    rows.append({"event_id": "last", "user": "u1", "name": "login", "ts": "2026-04-30 10:00"})
    return rows


RANDOM_IDENTITY = {"member_no:u1": "P1", "member_no:u2": "P1", "member_no:u3": "P3"}


@settings(max_examples=10, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=order_sets(),
    first_day=st.integers(0, 80),
    length=st.integers(1, 40),
    category=st.sampled_from([None, "skin"]),
)
def test_random_order_sets_match_brute_force(
    rows: list[dict[str, Any]], first_day: int, length: int, category: str | None
) -> None:
    if category is not None and not any(
        r["name"] == "order_paid" and r.get("category") == category for r in rows
    ):
        return
    start = (DAY0 + timedelta(days=first_day)).date()
    end = start + timedelta(days=length - 1)
    RESULTS.clear()
    with (
        tempfile.TemporaryDirectory() as folder,
        open_event_store(f"duckdb:///{Path(folder) / 'events.duckdb'}") as store,
    ):
        store.append(event_table(list(rows)))
        write_identity(store, RANDOM_IDENTITY)
        result = repurchase(
            store, RepurchaseQuery(start=start, end=end, category=category), tz=SHANGHAI
        )
        check_repurchase(result, brute_repurchase(rows, RANDOM_IDENTITY, start, end, category))
        check_next(store, rows, RANDOM_IDENTITY, end, category)


# -- bad input and empty results -----------------------------------------------------------


def test_bad_input_and_empty_results(brand: EventStore, tmp_path: Path) -> None:
    with pytest.raises(AnalysisError) as unknown:
        repurchase(brand, RepurchaseQuery(category="shoes"), tz=SHANGHAI)
    assert unknown.value.context["field"] == "category"
    with pytest.raises(AnalysisError):
        next_purchase(brand, NextPurchaseQuery(category="shoes"), tz=SHANGHAI)
    with pytest.raises(AnalysisError):
        repurchase(brand, RepurchaseQuery(start=END, end=START), tz=SHANGHAI)
    with pytest.raises(ValidationError):
        NextPurchaseQuery(limit=0)
    quiet = repurchase(
        brand, RepurchaseQuery(start=date(2025, 1, 1), end=date(2025, 1, 31)), tz=SHANGHAI
    )
    assert quiet.empty and quiet.buyers == 0 and quiet.repurchase_rate is None
    assert quiet.returning_rate is None and quiet.intervals[0].median is None
    with open_event_store(f"duckdb:///{tmp_path / 'empty.duckdb'}") as store:
        nothing = repurchase(store, RepurchaseQuery(), tz=SHANGHAI)
        assert nothing.empty and nothing.orders == 0
        assert next_purchase(store, NextPurchaseQuery(), tz=SHANGHAI).total == 0


# -- API and CLI ---------------------------------------------------------------------------


def test_api(settings: Settings, brand: EventStore, tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'siyu.db'}")
    upgrade(database)
    settings = settings.model_copy(update={"database_url": str(database.engine.url)})
    expected = brute_repurchase(ROWS, IDENTITY, START, END, "skin")
    with TestClient(create_app(settings, events=brand)) as client:
        got = client.get(
            "/v1/analytics/repurchase",
            params={"from": "2026-03-01", "to": "2026-03-31", "category": "skin"},
        )
        assert got.status_code == 200, got.text
        posted = client.post(
            "/v1/analytics/repurchase",
            json={"start": "2026-03-01", "end": "2026-03-31", "category": "skin"},
        )
        assert posted.json() == got.json()
        check_repurchase(RepurchaseResult.model_validate(got.json()), expected)
        listing = client.get(
            "/v1/analytics/repurchase/next-purchase",
            params={"as_of": "2026-04-30", "overdue_only": True, "limit": 2},
        )
        assert listing.status_code == 200, listing.text
        body = listing.json()
        assert body["limit"] == 2 and len(body["items"]) <= 2
        assert all(item["days_overdue"] > 0 for item in body["items"])
        same = client.post(
            "/v1/analytics/repurchase/next-purchase",
            json={"as_of": "2026-04-30", "overdue_only": True, "limit": 2},
        )
        assert same.json() == body
        for method, path, kwargs in (
            ("get", "/v1/analytics/repurchase", {"params": {"category": "shoes"}}),
            (
                "get",
                "/v1/analytics/repurchase",
                {"params": {"from": "2026-04-01", "to": "2026-03-01"}},
            ),
            ("post", "/v1/analytics/repurchase", {"json": {"extra": 1}}),
            ("get", "/v1/analytics/repurchase/next-purchase", {"params": {"limit": 0}}),
            ("get", "/v1/analytics/repurchase/next-purchase", {"params": {"as_of": "9999-12-31"}}),
            ("post", "/v1/analytics/repurchase", {"json": {"start": "0001-01-01"}}),
            ("post", "/v1/analytics/repurchase/next-purchase", {"json": {"limit": 501}}),
            ("post", "/v1/analytics/repurchase/next-purchase", {"json": {"category": "shoes"}}),
        ):
            wrong = getattr(client, method)(path, **kwargs)
            assert wrong.status_code == 422, (path, kwargs, wrong.text)
            assert wrong.headers["content-type"].startswith("application/problem+json")
    database.dispose()


def test_cli(
    settings: Settings, brand: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from siyu.cli import app
    from siyu.core.config import get_settings

    database = open_database(f"sqlite:///{tmp_path / 'siyu.db'}")
    upgrade(database)
    brand.close()
    monkeypatch.setenv("SIYU_HOME", str(settings.home))
    monkeypatch.setenv("SIYU_DATABASE_URL", database.engine.url.render_as_string(False))
    monkeypatch.setenv("SIYU_EVENTS_URL", f"duckdb:///{tmp_path / 'events.duckdb'}")
    monkeypatch.setenv("SIYU_LANG", "en")
    get_settings.cache_clear()
    runner = CliRunner()
    period = ["--from", "2026-03-01", "--to", "2026-03-31"]
    answer = runner.invoke(app, ["analytics", "repurchase", *period, "--json"])
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.output)["buyers"] == 3
    human = runner.invoke(app, ["analytics", "repurchase", "--category", "skin", *period])
    assert human.exit_code == 0, human.output
    assert "Median" in human.output
    listing = runner.invoke(app, ["analytics", "next-purchase", "--as-of", "2026-04-30"])
    assert listing.exit_code == 0, listing.output
    assert "Expected" in listing.output
    wrong = runner.invoke(app, ["analytics", "repurchase", "--category", "shoes"])
    assert wrong.exit_code == 2 and "Traceback" not in wrong.output
    far = runner.invoke(app, ["analytics", "next-purchase", "--as-of", "9999-12-31"])
    assert far.exit_code == 2 and "as_of" in far.output
    get_settings.cache_clear()
    database.dispose()
