"""Funnels against a brute-force reference: each attempt walked in plain Python."""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from siyu.analytics import funnels
from siyu.analytics.common import RESULTS, AnalysisError, parse_window, resolve_period
from siyu.analytics.funnels import FunnelDefinition
from siyu.analytics.funnels_api import definition_from_options
from siyu.api import create_app
from siyu.core.config import Settings
from siyu.events import EventStore, open_event_store
from siyu.segments import service as segments
from siyu.store import Database, open_database
from siyu.store.migrate import upgrade
from tests.analytics.conftest import SHANGHAI, at, event_table, write_identity

Rows = list[dict[str, Any]]
FUNNEL = ["product_view", "add_to_cart", "order_paid"]


# -- the reference ---------------------------------------------------------------------------


def _matches(row: Mapping[str, Any], step: Mapping[str, Any]) -> bool:
    if row["name"] != step["event"]:
        return False
    for item in step.get("where", []):
        field, op, value = item["field"], item["op"], item["value"]
        if field.startswith("properties."):
            actual = (row.get("properties") or {}).get(field.removeprefix("properties."))
        else:
            actual = row.get(field)
        if actual is None:
            return False
        if isinstance(value, int | float):
            actual = float(actual)
        if not _compare(actual, op, value):
            return False
    return True


def _compare(actual: Any, op: str, value: Any) -> bool:
    if op == "in":
        return bool(actual in value)
    return bool(
        {
            "=": actual == value,
            "!=": actual != value,
            ">": actual > value,
            ">=": actual >= value,
            "<": actual < value,
            "<=": actual <= value,
        }[op]
    )


def reference(
    rows: Rows, definition: Mapping[str, Any], identity: Mapping[str, str] | None = None
) -> dict[str, tuple[int, list[datetime], Any, datetime]]:
    """person → (reached, step instants, entry channel, entry instant), walking each attempt."""
    steps = definition["steps"]
    exclusions = definition.get("exclusions", [])
    n = len(steps)
    window = parse_window(definition.get("window", "7d"))
    start, end = (
        at(definition["start"] + " 00:00"),
        at(definition["end"] + " 00:00") + timedelta(days=1),
    )
    by_person: dict[str, Rows] = {}
    for row in rows:
        person = (identity or {}).get(row["user"], row["user"])
        ts = at(row["ts"])
        if start <= ts < end + window:
            by_person.setdefault(person, []).append({**row, "at": ts})
    result: dict[str, tuple[int, list[datetime], Any, datetime]] = {}
    for person, events in by_person.items():
        for event in events:
            matched = [j for j, s in enumerate(steps) if _matches(event, s)]
            event["prio"] = matched[0] if matched else n
        events.sort(key=lambda e: (e["at"], e["prio"], e["event_id"]))
        funnel = [e for e in events if e["prio"] < n]
        best: tuple[int, Any] | None = None
        for index, entry in enumerate(funnel):
            if not (_matches(entry, steps[0]) and start <= entry["at"] < end):
                continue
            chain = [entry["at"]]
            position = index
            for k in range(1, n):
                if definition.get("mode", "any") == "strict":
                    following = funnel[position + 1 : position + 2]
                    found = next((j for j in following if _matches(j, steps[k])), None)
                else:
                    found = next((j for j in funnel[position + 1 :] if _matches(j, steps[k])), None)
                if found is None or found["at"] > entry["at"] + window:
                    break
                chain.append(found["at"])
                position = funnel.index(found)
            reached = len(chain)
            excluded = False
            for item in exclusions:
                first, last = item.get("from_step", 1) - 1, (item.get("to_step") or n) - 1
                if reached <= first:
                    continue
                bound = chain[last] if reached > last else entry["at"] + window
                excluded |= any(
                    _matches(e, item) and chain[first] <= e["at"] <= bound for e in events
                )
            if excluded:
                continue
            if best is None or reached > best[0]:
                best = (reached, (chain, entry))
        if best is not None:
            chain, entry = best[1]
            result[person] = (best[0], chain, entry.get("channel", "web"), entry["at"])
    return result


def engine_people(store: EventStore, definition: Mapping[str, Any]) -> dict[str, int]:
    spec = FunnelDefinition.model_validate(definition)
    plan = funnels.plan_of(store, spec, SHANGHAI)
    table = funnels.people(store, plan).to_pyarrow().to_pylist()
    return {r["person_id"]: r["reached"] for r in table}


def check_against_reference(
    store: EventStore,
    rows: Rows,
    definition: Mapping[str, Any],
    identity: Mapping[str, str] | None = None,
) -> funnels.FunnelResult:
    expected = reference(rows, definition, identity)
    assert engine_people(store, definition) == {p: v[0] for p, v in expected.items()}
    result = funnels.compute(store, FunnelDefinition.model_validate(definition), tz=SHANGHAI)
    n = len(definition["steps"])
    counts = [sum(1 for v in expected.values() if v[0] > m) for m in range(n)]
    assert [s.count for s in result.steps] == counts
    for m in range(1, n):
        gaps = [(v[1][m] - v[1][m - 1]).total_seconds() for v in expected.values() if v[0] > m]
        step = result.steps[m]
        if gaps:
            assert step.median_seconds_from_previous == pytest.approx(np.percentile(gaps, 50))
            assert step.p90_seconds_from_previous == pytest.approx(np.percentile(gaps, 90))
        else:
            assert step.median_seconds_from_previous is None
        assert step.conversion_from_previous == (
            counts[m] / counts[m - 1] if counts[m - 1] else None
        )
    total = [(v[1][-1] - v[1][0]).total_seconds() for v in expected.values() if v[0] == n]
    assert result.time_to_convert.people == len(total)
    assert sum(b.count for b in result.time_to_convert.histogram) == len(total)
    if total:
        assert result.time_to_convert.median_seconds == pytest.approx(np.median(total))
    return result


_IDS = itertools.count()


def row(user: str, name: str, ts: str, **fields: Any) -> dict[str, Any]:
    """An event row with an increasing event id (the last tie-break)."""
    return {"event_id": f"f{next(_IDS):06d}", "user": user, "name": name, "ts": ts, **fields}


def definition(**extra: Any) -> dict[str, Any]:
    return {
        "steps": [{"event": name} for name in FUNNEL],
        "window": "1d",
        "start": "2026-03-02",
        "end": "2026-03-03",
    } | extra


# -- hand-written edge cases -----------------------------------------------------------------

EDGES: Rows = [
    # a: converts in 2h, entry in the period.
    row("a", "product_view", "2026-03-02 10:00", channel="wecom"),
    row("a", "add_to_cart", "2026-03-02 11:00"),
    row("a", "order_paid", "2026-03-02 12:00"),
    # b: all three steps at the same instant (ties count as in order).
    row("b", "order_paid", "2026-03-02 09:00"),
    row("b", "add_to_cart", "2026-03-02 09:00"),
    row("b", "product_view", "2026-03-02 09:00"),
    # c: the order comes one second after the window (1 day) closes.
    row("c", "product_view", "2026-03-02 08:00"),
    row("c", "add_to_cart", "2026-03-02 09:00"),
    row("c", "order_paid", "2026-03-03 08:00:01"),
    # d: first attempt fails, a later one (the next day) converts; exactly at the window's end.
    row("d", "product_view", "2026-03-02 08:00", channel="sms"),
    row("d", "product_view", "2026-03-03 08:00", channel="web"),
    row("d", "add_to_cart", "2026-03-03 20:00"),
    row("d", "order_paid", "2026-03-04 08:00"),
    # e: enters at 23:59 on the last local day; converts after the period's end (counts).
    row("e", "product_view", "2026-03-03 23:59"),
    row("e", "add_to_cart", "2026-03-04 00:30"),
    # f: viewed at 00:00 the day after the period (outside), and just before it.
    row("f", "product_view", "2026-03-04 00:00"),
    row("f", "product_view", "2026-03-01 23:59"),
    row("f", "add_to_cart", "2026-03-02 00:10"),
    # g (two identities merged into one person): view as g1, cart and order as g2.
    row("g1", "product_view", "2026-03-02 15:00"),
    row("g2", "add_to_cart", "2026-03-02 16:00"),
    row("g2", "order_paid", "2026-03-02 17:00"),
    # h: repeated steps; the cart before the view does not count.
    row("h", "add_to_cart", "2026-03-02 07:00"),
    row("h", "product_view", "2026-03-02 08:00"),
    row("h", "product_view", "2026-03-02 08:30"),
    row("h", "add_to_cart", "2026-03-02 09:00"),
    row("h", "add_to_cart", "2026-03-02 09:30"),
    # i: a refund between view and order (for the exclusion test); converts otherwise.
    row("i", "product_view", "2026-03-02 10:00"),
    row("i", "refund", "2026-03-02 10:30"),
    row("i", "add_to_cart", "2026-03-02 11:00"),
    row("i", "order_paid", "2026-03-02 11:30"),
]
IDENTITY = {f"member_no:{u}": u for u in "abcdefhi"} | {"member_no:g1": "g", "member_no:g2": "g"}
MERGED = {"g1": "g", "g2": "g"}


@pytest.fixture
def edges(store: EventStore) -> EventStore:
    store.append(event_table([*EDGES]))
    write_identity(store, IDENTITY)
    return store


def test_edge_cases_match_the_reference(edges: EventStore) -> None:
    result = check_against_reference(edges, EDGES, definition(), MERGED)
    people = engine_people(edges, definition())
    assert people == {"a": 3, "b": 3, "c": 2, "d": 3, "e": 2, "g": 3, "h": 2, "i": 3}
    assert result.steps[0].conversion_from_start == 1.0
    assert result.conversion == pytest.approx(5 / 8)
    assert [p.entered for p in result.trend] == [6, 2]


def test_strict_mode_needs_the_very_next_step(edges: EventStore) -> None:
    people = engine_people(edges, definition(mode="strict"))
    assert people["h"] == 2  # view, view, cart: the second view is followed by the cart
    check_against_reference(edges, EDGES, definition(mode="strict"), MERGED)
    rows = [
        row("s", "product_view", "2026-03-02 10:00"),
        row("s", "product_view", "2026-03-02 10:05"),
        row("s", "order_paid", "2026-03-02 10:10"),
    ]
    two = {"steps": [{"event": "product_view"}, {"event": "order_paid"}]}
    assert reference(rows, definition(**two, mode="strict"))["s"][0] == 2
    three = definition(mode="strict")
    assert reference(rows, three)["s"][0] == 1


def test_exclusions_disqualify_the_attempt(edges: EventStore) -> None:
    excluded = definition(exclusions=[{"event": "refund"}])
    people = check_against_reference(edges, EDGES, excluded, MERGED)
    assert "i" not in engine_people(edges, excluded)
    assert people.steps[0].count == 7
    # Only between steps 2 and 3: i's refund comes before the cart, so i stays.
    late = definition(exclusions=[{"event": "refund", "from_step": 2}])
    assert engine_people(edges, late)["i"] == 3
    check_against_reference(edges, EDGES, late, MERGED)


def test_filters_breakdown_and_properties(load: Callable[..., EventStore]) -> None:
    rows = [
        row(
            "a",
            "product_view",
            "2026-03-02 10:00",
            channel="wecom",
            properties={"category": "美妆"},
        ),
        row("a", "order_paid", "2026-03-02 11:00", amount=120),
        row(
            "b", "product_view", "2026-03-02 10:00", channel="web", properties={"category": "美妆"}
        ),
        row("b", "order_paid", "2026-03-02 11:00", amount=20),
        row(
            "c", "product_view", "2026-03-02 10:00", channel="web", properties={"category": "食品"}
        ),
        row("c", "order_paid", "2026-03-02 11:00", amount=500),
        row("d", "product_view", "2026-03-02 10:00", channel=None, properties={"category": "美妆"}),
    ]
    store = load(rows)
    spec = definition(
        steps=[
            {
                "event": "product_view",
                "where": [{"field": "properties.category", "op": "=", "value": "美妆"}],
            },
            {"event": "order_paid", "where": [{"field": "amount", "op": ">=", "value": 100}]},
        ],
        breakdown="channel",
    )
    result = check_against_reference(store, rows, spec)
    assert [s.count for s in result.steps] == [3, 1]
    by_value = {r.value: r.counts for r in result.breakdown_rows}
    assert by_value == {"wecom": [1, 1], "web": [1, 0], None: [1, 0]}
    limited = funnels.compute(
        store, FunnelDefinition.model_validate(spec | {"breakdown_limit": 1}), tz=SHANGHAI
    )
    assert [r.value for r in limited.breakdown_rows] == ["web", funnels.OTHER]
    assert limited.breakdown_rows[1].counts == [2, 1]
    by_property = funnels.compute(
        store,
        FunnelDefinition.model_validate(
            definition(
                steps=[{"event": "product_view"}, {"event": "order_paid"}],
                breakdown="properties.category",
            )
        ),
        tz=SHANGHAI,
    )
    assert {r.value: r.counts for r in by_property.breakdown_rows} == {
        "美妆": [3, 2],
        "食品": [1, 1],
    }


def test_empty_results_are_labelled_not_nan(edges: EventStore) -> None:
    spec = definition(start="2026-01-01", end="2026-01-31", grain="week")
    result = funnels.compute(edges, FunnelDefinition.model_validate(spec), tz=SHANGHAI)
    assert [s.count for s in result.steps] == [0, 0, 0]
    assert all(s.conversion_from_start is None for s in result.steps)
    assert result.conversion is None and result.time_to_convert.median_seconds is None
    assert result.trend and all(p.conversion is None for p in result.trend)
    assert result.trend[0].bucket.isoformat() == "2025-12-29"  # ISO week of 1 January
    assert "NaN" not in result.model_dump_json()


def test_bad_definitions_are_refused(edges: EventStore) -> None:
    with pytest.raises(ValidationError):
        FunnelDefinition.model_validate({"steps": [{"event": "product_view"}]})
    with pytest.raises(ValidationError):
        FunnelDefinition.model_validate({"steps": [{"event": "product_view"}] * 21})
    with pytest.raises(ValidationError):
        FunnelDefinition.model_validate(definition(breakdown="amount"))
    with pytest.raises(ValidationError):
        FunnelDefinition.model_validate(
            definition(exclusions=[{"event": "refund", "from_step": 3}])
        )
    for window in ("0d", "-1d", "soon"):
        with pytest.raises(AnalysisError):
            funnels.compute(
                edges, FunnelDefinition.model_validate(definition(window=window)), tz=SHANGHAI
            )
    unknown = definition(steps=[{"event": "product_view"}, {"event": "nope"}])
    with pytest.raises(AnalysisError, match="nope"):
        funnels.compute(edges, FunnelDefinition.model_validate(unknown), tz=SHANGHAI)
    with pytest.raises(AnalysisError):
        funnels.dropped_people(edges, FunnelDefinition.model_validate(definition()), 1, tz=SHANGHAI)


def test_cli_options_parse_conditions() -> None:
    spec = definition_from_options(
        "product_view,order_paid",
        window="7d",
        mode="any",
        start=None,
        end=None,
        where=["1:properties.category = '美妆'", "2:channel in ('wecom', 'web')"],
        exclude=["refund"],
    )
    assert spec.steps[0].where[0].value == "美妆"
    assert spec.steps[1].where[0].op == "in" and spec.steps[1].where[0].value == ["wecom", "web"]
    assert spec.exclusions[0].event == "refund"
    with pytest.raises(AnalysisError):
        definition_from_options(
            "a,b", window="7d", mode="any", start=None, end=None, where=["3:x=1"]
        )
    with pytest.raises(AnalysisError):
        definition_from_options("a", window="7d", mode="any", start=None, end=None)


# -- random event sets -----------------------------------------------------------------------

NAMES = ["product_view", "add_to_cart", "order_paid", "refund"]
event_rows = st.lists(
    st.tuples(
        st.sampled_from(["p", "q", "r"]),
        st.sampled_from(NAMES),
        st.integers(min_value=0, max_value=24),  # 3-hour slots from 1 March: ties, window edges
        st.sampled_from(["web", "wecom"]),
    ),
    max_size=25,
)
step_names = st.lists(st.sampled_from(NAMES[:3]), min_size=2, max_size=4)


@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=event_rows,
    names=step_names,
    mode=st.sampled_from(["any", "strict"]),
    exclude=st.booleans(),
)
def test_engine_matches_the_reference_on_random_events(
    data: list[tuple[str, str, int, str]], names: list[str], mode: str, exclude: bool
) -> None:
    base = datetime(2026, 3, 1)
    rows = [
        row(user, name, (base + timedelta(hours=3 * slot)).strftime("%Y-%m-%d %H:%M"), channel=c)
        for user, name, slot, c in data
    ]
    # Every name exists in the store (far outside the period) so none is "unknown".
    rows += [row("zz", name, "2025-01-01 00:00") for name in NAMES]
    spec = definition(
        steps=[{"event": name} for name in names],
        window="1d",
        mode=mode,
        exclusions=[{"event": "refund"}] if exclude else [],
    )
    with tempfile.TemporaryDirectory() as folder:
        RESULTS.clear()
        with open_event_store(f"duckdb:///{Path(folder) / 'events.duckdb'}") as store:
            store.append(event_table([*rows]))
            write_identity(store, {f"member_no:{u}": u for u in ("p", "q", "r", "zz")})
            check_against_reference(store, rows, spec)


@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow])
@given(data=event_rows, names=st.permutations(NAMES[:3]), size=st.integers(2, 3))
def test_the_asof_path_matches_the_reference(
    data: list[tuple[str, str, int, str]], names: list[str], size: int
) -> None:
    """Distinct steps in any order without exclusions take the ASOF-join path."""
    base = datetime(2026, 3, 1)
    rows = [
        row(user, name, (base + timedelta(hours=3 * slot)).strftime("%Y-%m-%d %H:%M"), channel=c)
        for user, name, slot, c in data
    ]
    rows += [row("zz", name, "2025-01-01 00:00") for name in NAMES]
    spec = definition(steps=[{"event": name} for name in names[:size]], window="1d", mode="any")
    with tempfile.TemporaryDirectory() as folder:
        RESULTS.clear()
        with open_event_store(f"duckdb:///{Path(folder) / 'events.duckdb'}") as store:
            store.append(event_table([*rows]))
            write_identity(store, {f"member_no:{u}": u for u in ("p", "q", "r", "zz")})
            check_against_reference(store, rows, spec)


# -- API and CLI -----------------------------------------------------------------------------


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'siyu.db'}")
    upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def client(
    settings: Settings, sqlite_database: Database, edges: EventStore
) -> Iterator[TestClient]:
    url = sqlite_database.engine.url.render_as_string(False)
    settings = settings.model_copy(update={"database_url": url})
    with TestClient(create_app(settings, events=edges)) as test_client:
        yield test_client


def test_api_computes_and_saves_dropoff(client: TestClient, edges: EventStore) -> None:
    answer = client.post("/v1/analytics/funnels", json=definition(breakdown="channel"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [s["count"] for s in body["steps"]] == [8, 8, 5]
    assert body["breakdown_rows"] and body["trend"]
    saved = client.post(
        "/v1/analytics/funnels/dropoff-segment",
        json={"funnel": definition(), "step": 3, "key": "cart_no_order", "name": "加购未付款"},
    )
    assert saved.status_code == 201, saved.text
    assert saved.json()["members"] == 3  # c, e and h reached the cart but not the order
    assert sorted(
        segments.static_members(edges, "cart_no_order").to_pyarrow().column("person_id").to_pylist()
    ) == ["c", "e", "h"]
    again = client.post(
        "/v1/analytics/funnels/dropoff-segment",
        json={"funnel": definition(), "step": 3, "key": "cart_no_order", "name": "x"},
    )
    assert again.status_code == 409
    for bad in (
        {"steps": [{"event": "product_view"}]},
        definition(window="0d"),
        definition(steps=[{"event": "product_view"}, {"event": "nope"}]),
        definition(start="2026-03-05", end="2026-03-01"),
    ):
        refused = client.post("/v1/analytics/funnels", json=bad)
        assert refused.status_code == 422, bad
        assert refused.headers["content-type"].startswith("application/problem+json")


def test_cli_prints_a_funnel(
    settings: Settings,
    sqlite_database: Database,
    edges: EventStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from siyu.cli import app
    from siyu.core.config import get_settings

    edges.close()
    monkeypatch.setenv("SIYU_HOME", str(settings.home))
    monkeypatch.setenv("SIYU_DATABASE_URL", sqlite_database.engine.url.render_as_string(False))
    monkeypatch.setenv("SIYU_EVENTS_URL", f"duckdb:///{tmp_path / 'events.duckdb'}")
    monkeypatch.setenv("SIYU_LANG", "en")
    get_settings.cache_clear()
    runner = CliRunner()
    common = ["analytics", "funnel", "--steps", ",".join(FUNNEL), "--window", "1d",
              "--from", "2026-03-02", "--to", "2026-03-03"]  # fmt: skip
    printed = runner.invoke(app, [*common, "--json"])
    assert printed.exit_code == 0, printed.output
    document: dict[str, Any] = json.loads(printed.output)
    assert [s["count"] for s in document["steps"]] == [8, 8, 5]
    table = runner.invoke(app, [*common, "--breakdown", "channel", "--mode", "strict"])
    assert table.exit_code == 0, table.output
    assert "order_paid" in table.output and "wecom" in table.output
    wrong = runner.invoke(app, ["analytics", "funnel", "--steps", "product_view"])
    assert wrong.exit_code == 2
    get_settings.cache_clear()


def test_period_defaults_to_the_last_30_days(edges: EventStore) -> None:
    spec = FunnelDefinition.model_validate({"steps": [{"event": n} for n in FUNNEL]})
    result = funnels.compute(edges, spec, tz=SHANGHAI)
    period = resolve_period(edges, SHANGHAI)
    assert result.period == period.as_dict()
