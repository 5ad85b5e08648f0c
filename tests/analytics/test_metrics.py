"""The metric library against a brute-force per-person computation in plain Python."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.analytics.common import AnalysisError, Grain, Period
from siyu.analytics.metrics import (
    METRICS,
    PRIVATE_CHANNELS,
    MetricQuery,
    compute,
)
from siyu.events import EventStore
from tests.analytics.conftest import SHANGHAI, event_table, write_identity

NAMES = [
    "page_view",
    "order_paid",
    "refund",
    "message_delivered",
    "message_opened",
    "wecom_add_contact",
    "wecom_delete_contact",
]
CHANNELS = ["wecom", "web", "store", "miniprogram"]
PERIOD = Period(date(2026, 3, 8), date(2026, 3, 14), SHANGHAI)
LAST_DAY = date(2026, 3, 20)


def _local(row: Mapping[str, Any]) -> date:
    ts = row["ts"]
    instant = datetime.fromisoformat(ts).replace(tzinfo=SHANGHAI) if isinstance(ts, str) else ts
    return instant.astimezone(SHANGHAI).date()


class Reference:
    """Metrics computed person by person from the rows, the way an analyst would by hand."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], identity: Mapping[str, str]) -> None:
        self.rows = []
        for row in rows:
            person = identity.get(f"member_no:{row['user']}")
            if person is not None and row.get("channel") != "system":
                self.rows.append({**row, "person": person, "day": _local(row)})

    def within(self, period: Period) -> list[dict[str, Any]]:
        return [r for r in self.rows if period.start <= r["day"] <= period.end]

    def active(self, period: Period) -> set[str]:
        return {r["person"] for r in self.within(period)}

    def dau(self, period: Period) -> float:
        pairs = {(r["person"], r["day"]) for r in self.within(period)}
        return len(pairs) / period.days

    def orders(self, period: Period) -> list[dict[str, Any]]:
        return [r for r in self.within(period) if r["name"] == "order_paid"]

    def gmv(self, period: Period, channels: Sequence[str] | None = None) -> Decimal:
        return sum(
            (
                Decimal(str(r["amount"]))
                for r in self.orders(period)
                if channels is None or r["channel"] in channels
            ),
            Decimal(0),
        )

    def repurchase(self, period: Period) -> float | None:
        per_person: dict[str, int] = defaultdict(int)
        for r in self.orders(period):
            per_person[r["person"]] += 1
        if not per_person:
            return None
        return sum(1 for n in per_person.values() if n >= 2) / len(per_person)

    def count(self, period: Period, name: str) -> int:
        return sum(1 for r in self.within(period) if r["name"] == name)

    def first_days(self) -> dict[str, date]:
        first: dict[str, date] = {}
        for r in self.rows:
            first[r["person"]] = min(first.get(r["person"], r["day"]), r["day"])
        return first

    def new(self, period: Period) -> int:
        return sum(1 for d in self.first_days().values() if period.start <= d <= period.end)

    def total(self, period: Period) -> int:
        return sum(1 for d in self.first_days().values() if d <= period.end)

    def retention(self, period: Period, days: int) -> float | None:
        until = min(period.end, LAST_DAY) - timedelta(days=days)
        cohort = {p: d for p, d in self.first_days().items() if period.start <= d <= until}
        if not cohort:
            return None
        seen = {(r["person"], r["day"]) for r in self.rows}
        back = sum(1 for p, d in cohort.items() if (p, d + timedelta(days=days)) in seen)
        return back / len(cohort)

    def churn(self, period: Period) -> float | None:
        before = self.active(period.previous())
        if not before:
            return None
        return len(before - self.active(period)) / len(before)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def expected(ref: Reference, period: Period) -> dict[str, float | None]:
    gmv = float(ref.gmv(period))
    orders = len(ref.orders(period))
    return {
        "active_people": len(ref.active(period)),
        "dau": ref.dau(period),
        "gmv": gmv,
        "orders": orders,
        "buyers": len({r["person"] for r in ref.orders(period)}),
        "aov": _ratio(gmv, orders),
        "repurchase_rate": ref.repurchase(period),
        "open_rate": _ratio(
            ref.count(period, "message_opened"), ref.count(period, "message_delivered")
        ),
        "net_contacts": ref.count(period, "wecom_add_contact")
        - ref.count(period, "wecom_delete_contact"),
        "private_gmv_share": _ratio(float(ref.gmv(period, PRIVATE_CHANNELS)), gmv),
        "new_people": ref.new(period),
        "total_people": ref.total(period),
        "retention_d1": ref.retention(period, 1),
        "churn_rate": ref.churn(period),
    }


def order(user: str, ts: str, amount: float, channel: str) -> dict[str, Any]:
    return {"user": user, "name": "order_paid", "ts": ts, "amount": amount, "channel": channel}


def _store(load: Callable[..., EventStore], rows: list[dict[str, Any]]) -> EventStore:
    return load(
        rows,
        identity={f"member_no:{u}": u.upper() for u in "abcdef"}
        | {
            "member_no:g": "A"  # g and a are one person
        },
    )


def _assert_close(actual: float | None, wanted: float | None, key: str) -> None:
    if wanted is None:
        assert actual is None, key
    else:
        assert actual == pytest.approx(wanted, rel=1e-9, abs=1e-9), key


def test_hand_fixture(load: Callable[..., EventStore]) -> None:
    rows: list[dict[str, Any]] = [
        # a: first seen before the period, buys twice in it (one at Shanghai midnight)
        {"user": "a", "name": "page_view", "ts": "2026-03-01 10:00"},
        order("a", "2026-03-08 00:00", 100, "wecom"),
        order("g", "2026-03-10 12:00", 50.5, "web"),
        # b: new on the 9th, back on the 10th, message funnel
        {"user": "b", "name": "message_delivered", "ts": "2026-03-09 09:00", "channel": "sms"},
        {"user": "b", "name": "message_opened", "ts": "2026-03-09 09:05", "channel": "sms"},
        {"user": "b", "name": "page_view", "ts": "2026-03-10 23:59"},
        # c: active in the previous week only (churned); its order the second before the period
        order("c", "2026-03-07 23:59:59", 30, "store"),
        # d: new on the last day of the period, returns the next day (after the period)
        {"user": "d", "name": "wecom_add_contact", "ts": "2026-03-14 20:00", "channel": "wecom"},
        {"user": "d", "name": "page_view", "ts": "2026-03-15 08:00"},
        # unresolved visitor: counted nowhere
        {"user": "zz", "name": "page_view", "ts": "2026-03-09 08:00"},
        # siyu's own events are not activity
        {"user": "e", "name": "tier_changed", "ts": "2026-03-09 08:00", "channel": "system"},
    ]  # fmt: skip
    store = _store(load, rows)
    result = compute(store, PERIOD, MetricQuery(metrics=list(METRICS)), last_day=LAST_DAY)
    values = {m.key: m for m in result.metrics}
    assert values["active_people"].value == 3  # A, B, D; not the unresolved one, not E
    ref = Reference(rows, {f"member_no:{u}": u.upper() for u in "abcdef"} | {"member_no:g": "A"})
    for key, wanted in expected(ref, PERIOD).items():
        _assert_close(values[key].value, wanted, key)
    assert values["gmv"].value == pytest.approx(150.5)
    assert values["repurchase_rate"].value == 1.0  # A bought twice (a and g are one person)
    assert values["churn_rate"].value == pytest.approx(1 / 2)  # A and C active before; C gone
    assert values["retention_d1"].value == pytest.approx(1.0)  # B back on the 10th, D on the 15th
    prev = expected(ref, PERIOD.previous())
    _assert_close(values["gmv"].previous, prev["gmv"], "previous gmv")
    assert values["gmv"].year_ago is None  # no data a year ago: unknown, not zero
    series = {p.bucket: p.value for p in values["gmv"].series}
    assert series[date(2026, 3, 8)] == 100 and series[date(2026, 3, 10)] == 50.5
    assert series[date(2026, 3, 9)] == 0
    new = {p.bucket: p.value for p in values["new_people"].series}
    assert new[date(2026, 3, 9)] == 1 and new[date(2026, 3, 14)] == 1
    total = {p.bucket: p.value for p in values["total_people"].series}
    assert total[date(2026, 3, 8)] == 2 and total[date(2026, 3, 14)] == 4


def test_breakdown_by_channel(load: Callable[..., EventStore]) -> None:
    rows = [
        order("a", "2026-03-08 10:00", 100, "wecom"),
        order("a", "2026-03-09 10:00", 20, "web"),
        order("b", "2026-03-09 11:00", 5, "web"),
    ]  # fmt: skip
    store = _store(load, rows)
    query = MetricQuery(metrics=["gmv", "buyers", "new_people"], dimension="channel")
    result = compute(store, PERIOD, query, last_day=LAST_DAY)
    by = {row.value: row.metrics for row in result.breakdown}
    assert by["web"] == {"gmv": 25.0, "buyers": 2.0, "new_people": 1.0}
    assert by["wecom"] == {"gmv": 100.0, "buyers": 1.0, "new_people": 1.0}
    assert [row.value for row in result.breakdown] == ["wecom", "web"]  # by the first metric


def test_bad_queries(store: EventStore) -> None:
    with pytest.raises(AnalysisError):
        compute(store, PERIOD, MetricQuery(metrics=["gmv", "nope"]))
    with pytest.raises(AnalysisError):
        compute(store, PERIOD, MetricQuery(metrics=["gmv"], dimension="shoe_size"))
    with pytest.raises(AnalysisError):
        compute(store, PERIOD, MetricQuery(metrics=["gmv"], dimension="lifecycle_stage"))
    empty = compute(store, PERIOD, MetricQuery(metrics=["aov", "open_rate", "gmv"]))
    values = {m.key: m.value for m in empty.metrics}
    assert values == {"aov": None, "open_rate": None, "gmv": 0.0}


@st.composite
def event_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(0, 40))
    rows = []
    for _ in range(count):
        day = draw(st.integers(0, 19))
        minute = draw(st.sampled_from([0, 1, 600, 1439]))
        when = datetime(2026, 3, 1, tzinfo=SHANGHAI) + timedelta(days=day, minutes=minute)
        name = draw(st.sampled_from(NAMES))
        row: dict[str, Any] = {
            "user": draw(st.sampled_from("abcdg")),
            "name": name,
            "ts": when.astimezone(UTC),
            "channel": draw(st.sampled_from(CHANNELS)),
        }
        if name == "order_paid":
            row["amount"] = draw(st.integers(1, 500))
        rows.append(row)
    return rows


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=event_rows())
def test_metrics_match_the_reference(tmp_path_factory: pytest.TempPathFactory, rows) -> None:
    from siyu.analytics.common import RESULTS
    from siyu.events import open_event_store

    RESULTS.clear()
    identity = {f"member_no:{u}": u.upper() for u in "abcd"} | {"member_no:g": "A"}
    folder = tmp_path_factory.mktemp("metrics")
    with open_event_store(f"duckdb:///{folder / 'events.duckdb'}") as store:
        if rows:
            store.append(event_table(rows))
        write_identity(store, identity)
        keys = list(expected(Reference([], {}), PERIOD))
        result = compute(store, PERIOD, MetricQuery(metrics=keys), last_day=LAST_DAY)
    values = {m.key: m.value for m in result.metrics}
    for key, wanted in expected(Reference(rows, identity), PERIOD).items():
        if key in {"gmv", "net_contacts"} and wanted == 0:
            assert values[key] == 0, key
            continue
        _assert_close(values[key], wanted, key)


def test_weekly_grain_labels_every_week(load: Callable[..., EventStore]) -> None:
    store = _store(load, [{"user": "a", "name": "page_view", "ts": "2026-03-10 10:00"}])
    period = Period(date(2026, 3, 1), date(2026, 3, 31), SHANGHAI)
    result = compute(store, period, MetricQuery(metrics=["dau"], grain=Grain.week))
    points = result.metrics[0].series
    assert [p.bucket for p in points][:2] == [date(2026, 2, 23), date(2026, 3, 2)]
    assert points[2].value == pytest.approx(1 / 7)  # the week of Monday 9 March
    assert points[1].value == 0
    assert points[0].value == 0  # 1 March only (a Sunday), nobody active
