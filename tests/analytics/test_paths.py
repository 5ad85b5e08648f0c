"""Paths against a brute-force reference: each person's events walked in plain Python."""

from __future__ import annotations

import itertools
import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from siyu.analytics import paths
from siyu.analytics.common import RESULTS, AnalysisError
from siyu.analytics.paths import OTHER, PathQuery
from siyu.api import create_app
from siyu.core.config import Settings
from siyu.events import EventStore, open_event_store
from tests.analytics.conftest import SHANGHAI, at, event_table, write_identity

Rows = list[dict[str, Any]]
_IDS = itertools.count()


def row(user: str, name: str, ts: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"p{next(_IDS):06d}", "user": user, "name": name, "ts": ts, **fields}


def reference(rows: Rows, query: PathQuery, start: str, end: str) -> Counter[tuple[str, ...]]:
    """Path → people, per the documented rules."""
    low, high = at(start + " 00:00"), at(end + " 00:00") + timedelta(days=1)
    by_person: dict[str, Rows] = {}
    for item in rows:
        if item.get("channel") == "system" or item["name"] in query.exclude:
            continue
        if low <= at(item["ts"]) < high:
            by_person.setdefault(item["user"], []).append(item)
    found: Counter[tuple[str, ...]] = Counter()
    for events in by_person.values():
        events.sort(key=lambda e: (at(e["ts"]), e["name"], e["event_id"]))
        names = [e["name"] for e in events]
        if query.collapse:
            names = [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]
        if query.start_event not in names:
            continue
        anchor = names.index(query.start_event)
        if query.before:
            path = names[max(0, anchor - query.steps + 1) : anchor + 1]
        else:
            path = names[anchor : anchor + query.steps]
        found[tuple(path)] += 1
    return found


def check(store: EventStore, rows: Rows, query: PathQuery) -> paths.PathResult:
    assert query.start is not None and query.end is not None
    expected = reference(rows, query, query.start.isoformat(), query.end.isoformat())
    result = paths.compute(store, query, tz=SHANGHAI)
    people = sum(expected.values())
    assert result.people == people
    ranked = sorted(expected.items(), key=lambda item: (-item[1], "\x1f".join(item[0])))
    assert [(tuple(p.events), p.count) for p in result.paths] == ranked[: query.top]
    for p in result.paths:
        assert p.share == pytest.approx(p.count / people)
    # Sankey: every node count is the people at that step; links sum per source ≤ the node.
    at_step: Counter[tuple[int, str]] = Counter()
    for path, count in expected.items():
        first = query.steps - len(path) + 1 if query.before else 1
        for offset, name in enumerate(path):
            at_step[(first + offset, name)] += count
    nodes = {(n.step, n.event): n.count for n in result.nodes}
    for step in {s for s, _ in at_step}:
        want = sorted(
            ((n, c) for (s, n), c in at_step.items() if s == step), key=lambda x: (-x[1], x[0])
        )
        kept = want[: query.nodes_per_step]
        assert {(step, n): c for n, c in kept}.items() <= nodes.items()
        rest = sum(c for _, c in want[query.nodes_per_step :])
        assert nodes.get((step, OTHER), 0) == rest
    outgoing: Counter[str] = Counter()
    for link in result.links:
        outgoing[link.source] += link.value
    for node in result.nodes:
        assert outgoing[node.id] <= node.count
    return result


ROWS: Rows = [
    row("a", "page_view", "2026-03-02 10:00"),
    row("a", "page_view", "2026-03-02 10:01"),
    row("a", "product_view", "2026-03-02 10:02"),
    row("a", "add_to_cart", "2026-03-02 10:03"),
    row("a", "order_paid", "2026-03-02 10:04"),
    row("b", "product_view", "2026-03-02 09:00"),
    row("b", "page_view", "2026-03-02 10:00"),
    row("b", "message_sent", "2026-03-02 10:00", channel="system"),
    row("b", "search", "2026-03-02 10:00"),  # same instant: ordered by name (page_view first)
    row("c", "page_view", "2026-03-01 23:59"),  # the day before the period
    row("c", "page_view", "2026-03-03 00:00"),
    row("c", "product_view", "2026-03-04 00:00"),  # the day after the period
    row("d", "product_view", "2026-03-02 12:00"),
]


@pytest.fixture
def loaded(load: Callable[..., EventStore]) -> EventStore:
    return load(ROWS)


def query(**extra: Any) -> PathQuery:
    return PathQuery.model_validate(
        {"start_event": "page_view", "steps": 3, "start": "2026-03-02", "end": "2026-03-03"} | extra
    )


def test_paths_after_and_before(loaded: EventStore) -> None:
    after = check(loaded, ROWS, query())
    assert {tuple(p.events): p.count for p in after.paths} == {
        ("page_view", "product_view", "add_to_cart"): 1,
        ("page_view", "search"): 1,
        ("page_view",): 1,
    }
    raw = check(loaded, ROWS, query(collapse=False))
    assert ("page_view", "page_view", "product_view") in {tuple(p.events) for p in raw.paths}
    before = check(loaded, ROWS, query(start_event="order_paid", before=True, steps=4))
    assert [p.events for p in before.paths] == [
        ["page_view", "product_view", "add_to_cart", "order_paid"]
    ]
    assert before.nodes[0].id == "1:page_view"
    short = check(loaded, ROWS, query(start_event="page_view", before=True))
    assert {tuple(p.events) for p in short.paths} == {("page_view",), ("product_view", "page_view")}
    assert {n.id for n in short.nodes} >= {"2:product_view", "3:page_view"}
    check(loaded, ROWS, query(exclude=["product_view"]))


def test_sankey_groups_the_long_tail(loaded: EventStore) -> None:
    result = check(loaded, ROWS, query(start_event="product_view", steps=2, nodes_per_step=1))
    assert [n.id for n in result.nodes if n.step == 1] == ["1:product_view"]
    assert "2:" + OTHER in {n.id for n in result.nodes}
    assert result.links and all(link.value > 0 for link in result.links)


def test_empty_and_bad_queries(loaded: EventStore) -> None:
    empty = paths.compute(loaded, query(start="2026-01-01", end="2026-01-02"), tz=SHANGHAI)
    assert empty.people == 0 and empty.paths == [] and empty.nodes == [] and empty.links == []
    with pytest.raises(AnalysisError, match="nope"):
        paths.compute(loaded, query(start_event="nope"), tz=SHANGHAI)
    for steps in (1, 11):
        with pytest.raises(ValidationError):
            query(steps=steps)


names = ["page_view", "product_view", "add_to_cart", "search"]


@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(
        st.tuples(
            st.sampled_from(["p", "q", "r"]),
            st.sampled_from(names),
            st.integers(min_value=0, max_value=30),
        ),
        max_size=25,
    ),
    steps=st.integers(min_value=2, max_value=5),
    before=st.booleans(),
    collapse=st.booleans(),
)
def test_engine_matches_the_reference_on_random_events(
    data: list[tuple[str, str, int]], steps: int, before: bool, collapse: bool
) -> None:
    base = datetime(2026, 3, 1, 20, 0)
    rows = [
        row(user, name, (base + timedelta(hours=slot)).strftime("%Y-%m-%d %H:%M"))
        for user, name, slot in data
    ] + [row("zz", "page_view", "2025-01-01 00:00")]
    spec = query(steps=steps, before=before, collapse=collapse, nodes_per_step=2, top=5)
    with tempfile.TemporaryDirectory() as folder:
        RESULTS.clear()
        with open_event_store(f"duckdb:///{Path(folder) / 'events.duckdb'}") as store:
            store.append(event_table([*rows]))
            write_identity(store, {f"member_no:{u}": u for u in ("p", "q", "r", "zz")})
            check(store, rows, spec)


@pytest.fixture
def client(settings: Settings, loaded: EventStore) -> Iterator[TestClient]:
    with TestClient(create_app(settings, events=loaded)) as test_client:
        yield test_client


def test_api(client: TestClient) -> None:
    answer = client.post("/v1/analytics/paths", json=query().model_dump(mode="json"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["people"] == 3
    for bad in ({"start_event": "page_view", "steps": 1}, {"start_event": "nope"}):
        refused = client.post("/v1/analytics/paths", json=bad)
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("application/problem+json")


def test_cli(
    settings: Settings, loaded: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from siyu.cli import app
    from siyu.core.config import get_settings
    from siyu.store import open_database
    from siyu.store.migrate import upgrade

    loaded.close()
    database = open_database(f"sqlite:///{tmp_path / 'siyu.db'}")
    upgrade(database)
    database.dispose()
    monkeypatch.setenv("SIYU_HOME", str(settings.home))
    monkeypatch.setenv("SIYU_DATABASE_URL", f"sqlite:///{tmp_path / 'siyu.db'}")
    monkeypatch.setenv("SIYU_EVENTS_URL", f"duckdb:///{tmp_path / 'events.duckdb'}")
    monkeypatch.setenv("SIYU_LANG", "en")
    get_settings.cache_clear()
    runner = CliRunner()
    common = ["analytics", "paths", "--start", "page_view", "--steps", "3",
              "--from", "2026-03-02", "--to", "2026-03-03"]  # fmt: skip
    printed = runner.invoke(app, [*common, "--json"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)["people"] == 3
    table = runner.invoke(app, [*common, "--before"])
    assert table.exit_code == 0, table.output
    assert "page_view" in table.output
    wrong = runner.invoke(app, ["analytics", "paths", "--start", "page_view", "--steps", "1"])
    assert wrong.exit_code == 2
    get_settings.cache_clear()
