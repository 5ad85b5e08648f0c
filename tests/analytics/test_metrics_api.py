"""Metrics through the API and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from siyu.events import EventStore

ROWS = [
    {"user": "a", "name": "order_paid", "ts": "2026-03-08 10:00", "amount": 99, "channel": "sms"},
    {"user": "b", "name": "order_paid", "ts": "2026-03-09 10:00", "amount": 50, "channel": "web"},
    {"user": "b", "name": "page_view", "ts": "2026-03-10 10:00", "channel": "web"},
]  # fmt: skip


def test_api_metrics(client: TestClient, load: Callable[..., EventStore]) -> None:
    load(ROWS)
    answer = client.get(
        "/v1/analytics/metrics",
        params={"metric": ["gmv", "aov", "buyers"], "from": "2026-03-08", "to": "2026-03-10"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    values = {m["key"]: m for m in body["metrics"]}
    assert values["gmv"]["value"] == 149
    assert values["aov"]["value"] == 74.5
    assert [p["value"] for p in values["gmv"]["series"]] == [99, 50, 0]
    by_channel = client.get(
        "/v1/analytics/metrics",
        params={"metric": "gmv", "from": "2026-03-08", "to": "2026-03-10", "dimension": "channel"},
    ).json()
    assert {r["value"]: r["metrics"]["gmv"] for r in by_channel["breakdown"]} == {
        "sms": 99,
        "web": 50,
    }


def test_api_default_period_is_the_last_30_days_of_data(
    client: TestClient, load: Callable[..., EventStore]
) -> None:
    load(ROWS)
    body = client.get("/v1/analytics/metrics", params={"metric": "orders"}).json()
    assert body["period"] == {"start": "2026-02-09", "end": "2026-03-10", "tz": "Asia/Shanghai"}
    assert body["metrics"][0]["value"] == 2


def test_api_bad_input(client: TestClient, load: Callable[..., EventStore]) -> None:
    load(ROWS)
    cases: list[dict[str, Any]] = [
        {"metric": "nope"},
        {"dimension": "'; drop table events; --"},
        {"from": "2026-03-10", "to": "2026-03-01"},
        {"from": "2020-01-01", "to": "2026-03-01"},
        {"from": "yesterday"},
        {"grain": "hour"},
    ]
    for params in cases:
        answer = client.get("/v1/analytics/metrics", params=params)
        assert answer.status_code == 422, params
        assert answer.headers["content-type"].startswith("application/problem+json"), params
    catalog = client.get("/v1/analytics/metrics/catalog", headers={"Accept-Language": "en"})
    assert {"gmv", "dau", "retention_d7"} <= {m["key"] for m in catalog.json()}


def test_cli_metrics(cli_home: Callable[..., Any]) -> None:
    run = cli_home(ROWS)
    shown = run("analytics", "metrics", "-m", "gmv", "--from", "2026-03-08", "--to", "2026-03-10")
    assert shown.exit_code == 0, shown.output
    assert "149.00" in shown.output
    as_json = run("analytics", "metrics", "-m", "orders", "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["metrics"][0]["value"] == 2
    bad = run("analytics", "metrics", "-m", "nope")
    assert bad.exit_code == 2
    assert "nope" in bad.output
    catalog = run("analytics", "metrics", "--catalog")
    assert catalog.exit_code == 0 and "gmv" in catalog.output
