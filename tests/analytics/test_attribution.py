"""Attribution against a brute-force per-conversion computation in plain Python, and the
Markov model against the published three-path example solved independently with numpy."""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from siyu.analytics.attribution import (
    DIRECT,
    AttributionQuery,
    Model,
    attribute,
)
from siyu.analytics.common import AnalysisError
from siyu.analytics.markov import conversion_probability
from siyu.analytics.sources import sources
from siyu.events import EventStore, open_event_store
from tests.analytics.conftest import SHANGHAI, event_table, write_identity

START, END = date(2026, 3, 10), date(2026, 3, 12)
RULES = [Model.first_touch, Model.last_touch, Model.linear, Model.time_decay, Model.position_based]
WINDOW = timedelta(days=2)
HALF_LIFE = timedelta(days=1)


# -- the reference -------------------------------------------------------------------------


def _t(value: Any) -> Any:
    return None if value in (None, "") else value


def _first(*values: Any) -> Any:
    return next((v for v in values if _t(v) is not None), None)


def touch_of(row: Mapping[str, Any]) -> tuple[str, str | None] | None:
    props = row.get("properties") or {}
    channel = _t(row.get("channel", "web"))
    source, campaign, scene = (
        _t(row.get("utm_source")),
        _t(row.get("utm_campaign")),
        _t(row.get("scene")),
    )
    if row["name"] == "message_clicked":
        return (
            _first(props.get("channel"), channel, "message"),
            _first(
                props.get("campaign_id"),
                props.get("campaign"),
                props.get("journey_id"),
                props.get("journey"),
                campaign,
            ),
        )
    if row["name"] == "ad_click":
        return (
            _first(props.get("channel"), props.get("source"), props.get("platform"), source, "ad"),
            _first(props.get("campaign_id"), props.get("campaign"), campaign),
        )
    if source or campaign:
        return (_first(source, channel, "(unknown)"), campaign)
    if scene:
        return (f"{channel or '(unknown)'}:{scene}", None)
    return None


def instant(row: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(row["ts"]).replace(tzinfo=SHANGHAI).astimezone(UTC)


def reference(
    rows: Sequence[Mapping[str, Any]],
    identity: Mapping[str, str],
    *,
    start: date = START,
    end: date = END,
    window: timedelta = WINDOW,
    half_life: timedelta = HALF_LIFE,
    refunds: bool = False,
) -> tuple[dict[tuple[str, str | None], dict[Model, list[float]]], int, float]:
    """Credit per (channel, campaign) and model, total conversions and revenue; conversion
    by conversion, touch by touch."""
    lo = datetime.combine(start, datetime.min.time(), SHANGHAI).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), SHANGHAI).astimezone(UTC)
    people: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        person = identity.get(f"member_no:{row['user']}")
        if person is not None:
            people[person].append({**row, "at": instant(row)})
    refunded: dict[str, float] = defaultdict(float)
    for row in rows:
        if row["name"] == "refund" and row.get("order_id"):
            refunded[row["order_id"]] += float(row.get("amount") or 0)
    credit: dict[tuple[str, str | None], dict[Model, list[float]]] = defaultdict(
        lambda: {m: [0.0, 0.0] for m in RULES}
    )
    total, revenue_total = 0, 0.0
    for events in people.values():
        events.sort(key=lambda r: (r["at"], r["event_id"]))
        touches, previous = [], None
        for row in events:
            key = touch_of(row)
            if key is None or row.get("channel") == "system":
                continue
            if not (lo - window - timedelta(minutes=30) <= row["at"] < hi):
                continue
            repeat = (
                previous is not None
                and previous[1] == key
                and row["at"] - previous[0] <= timedelta(minutes=30)
            )
            previous = (row["at"], key)
            if not repeat and row["at"] >= lo - window:
                touches.append((row["at"], key))
        for row in events:
            if row["name"] != "order_paid" or not lo <= row["at"] < hi:
                continue
            revenue = float(row.get("amount") or 0)
            if refunds and row.get("order_id"):
                revenue = max(revenue - refunded[row["order_id"]], 0.0)
            total += 1
            revenue_total += revenue
            mine = [t for t in touches if row["at"] - window <= t[0] <= row["at"]]
            if not mine:
                for model in RULES:
                    credit[(DIRECT, None)][model][0] += 1
                    credit[(DIRECT, None)][model][1] += revenue
                continue
            n = len(mine)
            decay = [
                2 ** (-(row["at"] - t[0]).total_seconds() / half_life.total_seconds()) for t in mine
            ]
            for i, (_, key) in enumerate(mine):
                weights = {
                    Model.first_touch: 1.0 if i == 0 else 0.0,
                    Model.last_touch: 1.0 if i == n - 1 else 0.0,
                    Model.linear: 1 / n,
                    Model.time_decay: decay[i] / sum(decay),
                    Model.position_based: (
                        1.0
                        if n == 1
                        else 0.5
                        if n == 2
                        else 0.4
                        if i in (0, n - 1)
                        else 0.2 / (n - 2)
                    ),
                }
                for model, weight in weights.items():
                    credit[key][model][0] += weight
                    credit[key][model][1] += weight * revenue
    return dict(credit), total, revenue_total


def engine_credit(result: Any) -> dict[tuple[str, str | None], dict[Model, list[float]]]:
    return {
        (row.channel, row.campaign): {m: [c.conversions, c.revenue] for m, c in row.credits.items()}
        for row in result.campaigns
    }


def assert_same(
    engine: dict[tuple[str, str | None], dict[Model, list[float]]],
    expected: dict[tuple[str, str | None], dict[Model, list[float]]],
) -> None:
    keys = {k for k, v in expected.items() if any(abs(x) > 1e-9 for m in v.values() for x in m)}
    assert {
        k for k in engine if any(abs(c[0]) > 1e-9 for m, c in engine[k].items() if m in RULES)
    } == keys
    for key in keys:
        for model in RULES:
            got, want = engine[key][model], expected[key][model]
            assert got[0] == pytest.approx(want[0], abs=1e-5), (key, model)
            assert got[1] == pytest.approx(want[1], abs=0.02), (key, model)


def fill(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"event_id": f"x{i:05d}", **row} for i, row in enumerate(rows)]


def run(
    store: EventStore,
    rows: list[dict[str, Any]],
    identity: Mapping[str, str] | None = None,
    **query: Any,
) -> Any:
    rows = fill(rows)
    store.append(event_table(rows))
    identity = identity or {f"member_no:{r['user']}": r["user"] for r in rows}
    write_identity(store, identity)
    defaults: dict[str, Any] = {"from": START, "to": END, "window": "2d", "half_life": "1d"}
    return rows, identity, attribute(store, AttributionQuery(**{**defaults, **query}), tz=SHANGHAI)


EDGES = [
    # a: two touches, the ad clicked just outside the 2-day window of the first order
    {
        "user": "a",
        "name": "ad_click",
        "ts": "2026-03-07 23:59",
        "properties": {"platform": "douyin", "campaign": "spring"},
    },
    {
        "user": "a",
        "name": "ad_click",
        "ts": "2026-03-08 10:00",
        "properties": {"platform": "douyin", "campaign": "spring"},
    },
    {
        "user": "a",
        "name": "message_clicked",
        "ts": "2026-03-09 10:00",
        "channel": "wecom",
        "properties": {"campaign_id": "WC-1"},
    },
    {
        "user": "a",
        "name": "page_view",
        "ts": "2026-03-09 10:10",
        "channel": "miniprogram",
        "scene": "1089",
    },
    {
        "user": "a",
        "name": "product_view",
        "ts": "2026-03-09 10:20",
        "channel": "miniprogram",
        "scene": "1089",
    },  # same visit
    {
        "user": "a",
        "name": "page_view",
        "ts": "2026-03-09 11:10",
        "channel": "miniprogram",
        "scene": "1089",
    },  # a new visit
    {"user": "a", "name": "order_paid", "ts": "2026-03-10 10:00", "amount": 100, "order_id": "o1"},
    # a's second order: the same touches plus the utm on the order itself (same timestamp)
    {
        "user": "a",
        "name": "order_paid",
        "ts": "2026-03-11 00:00",
        "amount": 50,
        "order_id": "o2",
        "utm_source": "sms",
        "utm_campaign": "S1",
    },
    {"user": "a", "name": "refund", "ts": "2026-03-12 09:00", "amount": 20, "order_id": "o2"},
    # b: no touchpoint → direct; c is b merged (identity), c's click credits b's order
    {"user": "b", "name": "page_view", "ts": "2026-03-10 08:00"},
    {
        "user": "c",
        "name": "message_clicked",
        "ts": "2026-03-11 23:59",
        "channel": "sms",
        "properties": {"journey": "welcome"},
    },
    {"user": "b", "name": "order_paid", "ts": "2026-03-12 00:00", "amount": 80, "order_id": "o3"},
    # d: Asia/Shanghai midnight: the order at 00:00 on the 13th is outside the period
    {
        "user": "d",
        "name": "message_clicked",
        "ts": "2026-03-12 23:00",
        "channel": "email",
        "properties": {"campaign": "E"},
    },
    {"user": "d", "name": "order_paid", "ts": "2026-03-13 00:00", "amount": 60},
    {"user": "d", "name": "order_paid", "ts": "2026-03-12 23:59:59", "amount": 40},
    # e: two touches at the very same instant (tie broken by event id)
    {"user": "e", "name": "page_view", "ts": "2026-03-11 12:00", "utm_source": "livestream"},
    {
        "user": "e",
        "name": "page_view",
        "ts": "2026-03-11 12:00",
        "utm_campaign": "noon",
        "channel": "app",
    },
    {"user": "e", "name": "order_paid", "ts": "2026-03-11 12:30", "amount": 30},
    # f: system events are never touches
    {"user": "f", "name": "message_clicked", "ts": "2026-03-11 12:00", "channel": "system"},
    {"user": "f", "name": "order_paid", "ts": "2026-03-11 12:30", "amount": 10},
]
MERGED = {
    "member_no:a": "a",
    "member_no:b": "b",
    "member_no:c": "b",
    "member_no:d": "d",
    "member_no:e": "e",
    "member_no:f": "f",
}


def test_rule_models_match_the_reference_on_edge_cases(store: EventStore) -> None:
    rows, identity, result = run(store, EDGES, MERGED)
    expected, total, revenue = reference(rows, identity)
    assert result.conversions == total == 6 and result.revenue == pytest.approx(revenue)
    assert_same(engine_credit(result), expected)
    assert result.direct.conversions == 1 and result.direct.revenue == 10  # f
    assert result.touched_conversions == 5
    # every model hands out exactly the conversions and revenue there are
    for model in Model:
        assert sum(r.credits[model].conversions for r in result.channels) == pytest.approx(6)
        assert sum(r.credits[model].revenue for r in result.channels) == pytest.approx(
            revenue, abs=0.05
        )
    channels = {r.channel for r in result.channels}
    assert {
        "douyin",
        "wecom",
        "miniprogram:1089",
        "sms",
        "email",
        "livestream",
        "app",
        DIRECT,
    } == channels


def test_refunds_are_netted_by_order(store: EventStore) -> None:
    rows, identity, result = run(store, EDGES, MERGED, subtract_refunds=True)
    expected, _total, revenue = reference(rows, identity, refunds=True)
    assert result.revenue == pytest.approx(revenue) == 310 - 20
    assert_same(engine_credit(result), expected)


def test_one_model_and_its_window(store: EventStore) -> None:
    rows, identity, result = run(store, EDGES, MERGED, models=["linear"], window="3d")
    expected, _, _ = reference(rows, identity, window=timedelta(days=3))
    assert result.models == [Model.linear]
    got = engine_credit(result)
    assert got[("douyin", "spring")][Model.linear][0] == pytest.approx(
        expected[("douyin", "spring")][Model.linear][0]
    )


# -- the Markov model ------------------------------------------------------------------------


def absorbing_probability(paths: list[tuple[list[str], bool]], removed: str | None = None) -> float:
    """P(conversion) from the start by the fundamental matrix N = (I − Q)⁻¹ of the chain
    estimated from the paths (an independent construction of the engine's computation)."""
    states = ["start", *sorted({c for path, _ in paths for c in path})]
    absorbing = ["conv", "null"]
    counts = np.zeros((len(states), len(states) + 2))
    where = {s: i for i, s in enumerate(states)} | {"conv": len(states), "null": len(states) + 1}
    for path, converted in paths:
        seq = ["start", *path, absorbing[0] if converted else absorbing[1]]
        for a, b in itertools.pairwise(seq):
            counts[where[a], where[b]] += 1
    p = counts / counts.sum(axis=1, keepdims=True)
    if removed is not None:
        i = where[removed]
        p[:, len(states) + 1] += p[:, i]
        p[:, i] = 0
        p[i, :] = 0
        p[i, len(states) + 1] = 1
    q, r = p[:, : len(states)], p[:, len(states) :]
    b = np.linalg.inv(np.eye(len(states)) - q) @ r
    return float(b[0, 0])


THREE_PATHS = [(["C1", "C2", "C3"], True), (["C1"], False), (["C2", "C3"], False)]


def test_markov_matches_the_published_three_path_example(store: EventStore) -> None:
    """Anderl et al. / ChannelAttribution: P(conv) = 1/3, removal effects C1 0.5, C2 1,
    C3 1 → shares 0.2, 0.4, 0.4 of the one conversion."""
    base = absorbing_probability(THREE_PATHS)
    effects = {c: 1 - absorbing_probability(THREE_PATHS, c) / base for c in ("C1", "C2", "C3")}
    assert base == pytest.approx(1 / 3)
    assert effects == pytest.approx({"C1": 0.5, "C2": 1.0, "C3": 1.0})
    rows: list[dict[str, Any]] = []
    for n, (path, converted) in enumerate(THREE_PATHS):
        for i, channel in enumerate(path):
            rows.append(
                {
                    "user": f"u{n}",
                    "name": "message_clicked",
                    "ts": f"2026-03-10 0{i}:00",
                    "channel": channel,
                }
            )
        if converted:
            rows.append(
                {"user": f"u{n}", "name": "order_paid", "ts": "2026-03-10 09:00", "amount": 100}
            )
    _, _, result = run(store, rows)
    assert result.markov is not None
    assert result.markov.conversion_probability == pytest.approx(base)
    assert result.markov.removal_effects == pytest.approx(effects)
    assert result.markov.conversion_paths == 1 and result.markov.null_paths == 2
    shares = {r.channel: r.credits[Model.markov].conversions for r in result.channels}
    total = sum(effects.values())
    assert shares == pytest.approx({c: e / total for c, e in effects.items()})
    assert shares == pytest.approx({"C1": 0.2, "C2": 0.4, "C3": 0.4})
    revenue = {r.channel: r.credits[Model.markov].revenue for r in result.channels}
    assert revenue == pytest.approx({"C1": 20, "C2": 40, "C3": 40})


@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(["A", "B", "C", "D"]), min_size=1, max_size=4), st.booleans()
        ),
        min_size=1,
        max_size=8,
    )
)
@settings(max_examples=60, deadline=None)
def test_markov_solver_matches_the_fundamental_matrix(paths: list[tuple[list[str], bool]]) -> None:
    counts: dict[tuple[str, str], float] = defaultdict(float)
    for path, converted in paths:
        seq = ["(start)", *path, "(conversion)" if converted else "(null)"]
        for a, b in itertools.pairwise(seq):
            counts[(a, b)] += 1
    assert conversion_probability(counts) == pytest.approx(absorbing_probability(paths), abs=1e-9)
    for channel in {c for p, _ in paths for c in p}:
        assert conversion_probability(counts, channel) == pytest.approx(
            absorbing_probability(paths, channel), abs=1e-9
        )


# -- random event sets ----------------------------------------------------------------------

TOUCHES = [
    {"name": "message_clicked", "channel": "wecom", "properties": {"campaign_id": "W1"}},
    {"name": "message_clicked", "channel": "sms", "properties": {"journey_id": "J"}},
    {"name": "ad_click", "properties": {"source": "douyin"}},
    {"name": "page_view", "utm_source": "email", "utm_campaign": "E1"},
    {"name": "page_view", "channel": "miniprogram", "scene": "1007"},
    {"name": "page_view"},
]

event_rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 5 * 24 * 4),  # quarter hours from 2026-03-08 00:00
        st.one_of(
            st.sampled_from(TOUCHES),
            st.builds(lambda a: {"name": "order_paid", "amount": a}, st.integers(0, 500)),
        ),
    ),
    max_size=25,
)


@given(
    event_rows, st.sampled_from([("1d", 1), ("2d", 2)]), st.sampled_from([("6h", 0.25), ("3d", 3)])
)
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_rule_models_match_the_reference_on_random_events(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[str, int, dict[str, Any]]],
    window: tuple[str, int],
    half_life: tuple[str, float],
) -> None:
    base = datetime(2026, 3, 8)
    events = [
        {"user": user, "ts": (base + timedelta(minutes=15 * q)).isoformat(sep=" "), **row}
        for user, q, row in rows
    ]
    if not any(e["name"] == "order_paid" for e in events):
        events.append({"user": "a", "name": "order_paid", "ts": "2026-03-11 00:00", "amount": 1})
    folder = tmp_path_factory.mktemp("attribution")
    with open_event_store(f"duckdb:///{folder / 'events.duckdb'}") as store:
        filled, identity, result = run(store, events, window=window[0], half_life=half_life[0])
    expected, total, revenue = reference(
        filled, identity, window=timedelta(days=window[1]), half_life=timedelta(days=half_life[1])
    )
    assert result.conversions == total and result.revenue == pytest.approx(revenue)
    assert_same(engine_credit(result), expected)
    for model in Model:
        assert sum(r.credits[model].conversions for r in result.channels) == pytest.approx(total)
        for row in result.channels:
            credit = row.credits[model]
            assert math.isfinite(credit.conversions) and math.isfinite(credit.revenue)


# -- bad input and empty results --------------------------------------------------------------


def test_bad_input_is_refused_with_the_field(store: EventStore) -> None:
    run(store, EDGES[:7])
    for query, field in (
        ({"window": "0d"}, "window"),
        ({"window": "-3d"}, "window"),
        ({"window": "400d"}, "window"),
        ({"half_life": "soon"}, "half_life"),
        ({"conversion": "order_payed"}, "conversion"),
        ({"from": "2026-03-12", "to": "2026-03-10"}, "from"),
    ):
        with pytest.raises(AnalysisError) as caught:
            attribute(store, AttributionQuery(**{"from": START, "to": END, **query}), tz=SHANGHAI)
        assert caught.value.context["field"] == field


def test_a_period_without_conversions_is_labelled_empty(store: EventStore) -> None:
    _, _, result = run(store, EDGES, MERGED, **{"from": date(2026, 1, 1), "to": date(2026, 1, 31)})
    assert result.conversions == 0 and result.revenue == 0 and result.channels == []
    assert result.direct.conversions == 0
    assert result.markov is not None and result.markov.conversion_probability is None


def test_sources_are_the_first_event_of_new_people(load: Callable[..., EventStore]) -> None:
    store = load(
        [
            {
                "user": "a",
                "name": "register",
                "ts": "2026-03-09 23:59",
                "channel": "wecom",
                "scene": "qr_code",
            },
            {
                "user": "b",
                "name": "page_view",
                "ts": "2026-03-10 00:00",
                "utm_source": "douyin",
                "utm_campaign": "x",
            },
            {"user": "b", "name": "page_view", "ts": "2026-03-10 00:05", "utm_source": "sms"},
            {
                "user": "c",
                "name": "register",
                "ts": "2026-03-11 08:00",
                "channel": "store",
                "source": "store_pos",
            },
            {"user": "d", "name": "login", "ts": "2026-03-12 08:00", "channel": "app"},
            {"user": "e", "name": "tier_changed", "ts": "2026-03-01 08:00", "channel": "system"},
            {
                "user": "e",
                "name": "page_view",
                "ts": "2026-03-12 09:00",
                "channel": "miniprogram",
                "scene": "1007",
            },
        ]
    )
    result = sources(store, tz=SHANGHAI, start=START, end=END, limit=2)
    assert result.people == result.total == 4
    counts = {(c.channel, c.campaign): c.people for c in result.campaigns}
    assert counts == {
        ("douyin", "x"): 1,
        ("store_pos", None): 1,
        ("app", None): 1,
        ("miniprogram:1007", None): 1,
    }
    assert [p.person_id for p in result.items] == ["b", "c"]


# -- API and CLI ----------------------------------------------------------------------------


@pytest.fixture
def client(settings: Any, store: EventStore) -> Iterator[TestClient]:
    from siyu.api import create_app

    with TestClient(create_app(settings, events=store)) as test_client:
        yield test_client


def test_api_attributes_and_refuses_bad_input(client: TestClient, store: EventStore) -> None:
    run(store, EDGES, MERGED)
    body = {"from": "2026-03-10", "to": "2026-03-12", "window": "2d", "half_life": "1d"}
    answer = client.post("/v1/analytics/attribution", json=body)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert set(data["models"]) == {m.value for m in Model} and data["conversions"] == 6
    assert {r["channel"] for r in data["channels"]} >= {"wecom", DIRECT}
    bad = client.post("/v1/analytics/attribution", json={**body, "conversion": "nope"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(
        "application/problem+json"
    )
    assert (
        client.post("/v1/analytics/attribution", json={**body, "models": ["magic"]}).status_code
        == 422
    )
    assert (
        client.post("/v1/analytics/attribution", json={**body, "window": "0d"}).status_code == 422
    )
    found = client.get(
        "/v1/analytics/sources", params={"from": "2026-03-01", "to": "2026-03-12", "limit": 2}
    )
    assert found.status_code == 200 and found.json()["people"] == 5


def _cli_home(
    tmp_path: Path, rows: list[dict[str, Any]], identity: Mapping[str, str]
) -> dict[str, str]:
    from siyu.core.config import load_settings
    from siyu.store import open_database
    from siyu.store.migrate import upgrade

    settings = load_settings(home=tmp_path)
    database = open_database(settings.resolved_database_url)
    upgrade(database)
    database.dispose()
    with open_event_store(settings.resolved_events_url) as events:
        events.append(event_table(fill(rows)))
        write_identity(events, identity)
    return {"SIYU_HOME": str(tmp_path), "SIYU_LANG": "en", "COLUMNS": "250"}


def test_cli_prints_every_model_or_json(tmp_path: Path) -> None:
    from siyu.cli import app

    env = _cli_home(tmp_path, EDGES, MERGED)
    runner = CliRunner()
    args = [
        "analytics",
        "attribution",
        "--from",
        "2026-03-10",
        "--to",
        "2026-03-12",
        "--window",
        "2d",
    ]
    shown = runner.invoke(app, args, env=env)
    assert shown.exit_code == 0, shown.output
    assert "position_based" in shown.output and "markov" in shown.output
    as_json = runner.invoke(app, [*args, "--model", "linear", "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["models"] == ["linear"] and data["conversions"] == 6
    bad = runner.invoke(app, [*args, "--conversion", "nope"], env=env)
    assert bad.exit_code == 2 and "nope" in bad.output
