"""Campaign costs (CSV, API, replace by key) and ROI against numbers worked out by hand."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from siyu.analytics import costs
from siyu.analytics.attribution import DIRECT
from siyu.analytics.costs import CostItem, RoiQuery
from siyu.core.errors import InvalidInputError
from siyu.events import EventStore
from tests.analytics.conftest import SHANGHAI


def item(day: str, channel: str, cost: str, campaign: str = "") -> CostItem:
    return CostItem(
        date=date.fromisoformat(day), channel=channel, campaign=campaign, cost=Decimal(cost)
    )


def test_csv_errors_are_reported_per_line() -> None:
    text = (
        "date,channel,campaign,cost\n"
        "2026-03-10,sms,S1,100\n"
        "2026-13-01,sms,S1,100\n"  # bad date
        "2026-03-11,,S1,100\n"  # no channel
        "2026-03-11,sms,S1,-5\n"  # negative
        "2026-03-12,sms,S1,abc\n"  # not a number
        "2026-03-10,sms,S1,7\n"  # duplicate of line 2
        "2026/03/13,sms,,1.5\n"  # fine: slashes, channel-wide
    )
    read = costs.read_csv(text)
    assert read.rows == 7 and len(read.items) == 3
    assert [(e["line"], e["column"]) for e in read.errors] == [
        (3, "date"),
        (4, "channel"),
        (5, "cost"),
        (6, "cost"),
        (7, "date,channel,campaign"),
    ]
    missing = costs.read_csv("day,channel\n2026-03-10,sms\n")
    assert {e["column"] for e in missing.errors} == {"date", "cost"} and missing.items == []


def test_same_key_replaces_and_lists_filter_and_page(store: EventStore) -> None:
    first = costs.store(store, [item("2026-03-10", "sms", "100"), item("2026-03-11", "sms", "50")])
    assert (first.inserted, first.replaced) == (2, 0)
    again = costs.store(store, [item("2026-03-10", "sms", "80"), item("2026-03-10", "ad", "9")])
    assert (again.inserted, again.replaced) == (1, 1)
    page = costs.list_costs(store, channel="sms")
    assert page.total == 2 and [i.cost for i in page.items] == [Decimal("80.00"), Decimal("50.00")]
    assert costs.list_costs(store, start=date(2026, 3, 11)).total == 1
    assert [i.channel for i in costs.list_costs(store, limit=1, offset=1).items] == ["sms"]
    with pytest.raises(InvalidInputError):
        costs.store(store, [item("2026-03-12", "sms", "1"), item("2026-03-12", "sms", "2")])
    assert costs.list_costs(store).total == 3  # nothing of the refused batch


# a: acquired 2026-03-10 through sms (one touch), orders again on day 3 → revenue 100 + 300
# b: acquired through sms (half) and wecom (half) on 03-11 (linear), 200
# c: an old customer (first order in February) converting through wecom in the period, 50
# d: direct new customer
ROWS = [
    {"user": "c", "name": "order_paid", "ts": "2026-02-01 10:00", "amount": 10},
    {"user": "a", "name": "message_clicked", "ts": "2026-03-10 09:00", "channel": "sms"},
    {"user": "a", "name": "order_paid", "ts": "2026-03-10 10:00", "amount": 100},
    {"user": "a", "name": "order_paid", "ts": "2026-03-13 10:00", "amount": 300},
    {"user": "b", "name": "message_clicked", "ts": "2026-03-11 08:00", "channel": "sms"},
    {"user": "b", "name": "message_clicked", "ts": "2026-03-11 09:00", "channel": "wecom"},
    {"user": "b", "name": "order_paid", "ts": "2026-03-11 10:00", "amount": 200},
    {"user": "c", "name": "message_clicked", "ts": "2026-03-12 09:00", "channel": "wecom"},
    {"user": "c", "name": "order_paid", "ts": "2026-03-12 10:00", "amount": 50},
    {"user": "d", "name": "order_paid", "ts": "2026-03-12 11:00", "amount": 70},
]
PERIOD = {"from": date(2026, 3, 10), "to": date(2026, 3, 13)}


def test_roi_cac_ltv_payback_and_gaps(load: Callable[..., EventStore]) -> None:
    store = load(ROWS)
    costs.store(
        store,
        [
            item("2026-03-10", "sms", "150"),
            item("2026-03-11", "sms", "150"),
            item("2026-03-13", "sms", "100"),
            item("2026-03-10", "wecom", "60", "W1"),
        ],
    )
    result = costs.roi(store, RoiQuery(**PERIOD, model="linear"), tz=SHANGHAI)
    rows = {r.channel: r for r in result.channels}
    sms, wecom, direct = rows["sms"], rows["wecom"], rows[DIRECT]
    # sms: a's two orders (100 on 03-10, 300 on 03-13: the click is within 30 days) + half of b
    assert sms.revenue == 100 + 300 + 100 and sms.conversions == pytest.approx(2.5)
    assert sms.cost == 400 and sms.cost_days == 3 and sms.missing_cost_days == 1
    assert sms.roi == pytest.approx((500 - 400) / 400) and sms.roas == pytest.approx(500 / 400)
    assert sms.new_customers == pytest.approx(1.5) and sms.cac == pytest.approx(400 / 1.5)
    # LTV of sms's acquired: a 400 (weight 1), b 200 (weight 0.5) → 500 / 1.5
    assert sms.ltv == pytest.approx(500 / 1.5)
    assert sms.ltv_cac == pytest.approx((500 / 1.5) / (400 / 1.5))
    # cumulative revenue of acquired: day 0 = 100 + 100 = 200 < 400; day 3 + 300 → 500 ≥ 400
    assert sms.payback_days == 3
    assert wecom.revenue == 150 and wecom.cost == 60 and wecom.new_customers == pytest.approx(0.5)
    assert wecom.payback_days == 0  # day 0: half of b's 200 ≥ 60
    assert direct.cost is None and direct.roi is None and direct.new_customers == 1
    assert [(g.channel, g.dates) for g in result.gaps] == [
        ("sms", [date(2026, 3, 12)]),
        ("wecom", [date(2026, 3, 11), date(2026, 3, 12), date(2026, 3, 13)]),
    ]
    campaigns = {(r.channel, r.campaign): r for r in result.campaigns}
    assert campaigns[("wecom", "W1")].cost == 60 and campaigns[("wecom", "W1")].revenue == 0
    assert campaigns[("wecom", None)].cost is None
    first = costs.roi(store, RoiQuery(**PERIOD, model="first_touch"), tz=SHANGHAI)
    assert {r.channel: r.new_customers for r in first.channels}["sms"] == 2
    assert result.uncosted == []


def test_roi_without_costs_is_none_not_zero(load: Callable[..., EventStore]) -> None:
    store = load(ROWS)
    result = costs.roi(store, RoiQuery(**PERIOD), tz=SHANGHAI)
    assert all(r.cost is None and r.roi is None and r.payback_days is None for r in result.channels)
    assert result.gaps == [] and result.uncosted == ["sms", "wecom"]
    empty = costs.roi(
        store, RoiQuery(**{"from": date(2025, 1, 1), "to": date(2025, 1, 5)}), tz=SHANGHAI
    )
    assert empty.channels == [] and empty.campaigns == []


@pytest.fixture
def client(settings: Any, store: EventStore) -> Iterator[TestClient]:
    from siyu.api import create_app

    with TestClient(create_app(settings, events=store)) as test_client:
        yield test_client


def test_costs_and_roi_api(client: TestClient, load: Callable[..., EventStore]) -> None:
    load(ROWS)
    batch = {"items": [{"date": "2026-03-10", "channel": "sms", "cost": "150"}]}
    stored = client.post("/v1/analytics/costs", json=batch)
    assert stored.status_code == 200 and stored.json() == {
        "received": 1,
        "inserted": 1,
        "replaced": 0,
    }
    bad = client.post(
        "/v1/analytics/costs",
        json={
            "items": [
                {"date": "2026-03-10", "channel": "sms", "cost": "-1"},
                {"date": "x", "channel": "a", "cost": 1},
            ]
        },
    )
    assert bad.status_code == 422
    duplicate = client.post("/v1/analytics/costs", json={"items": batch["items"] * 2})
    assert duplicate.status_code == 422
    listed = client.get("/v1/analytics/costs", params={"channel": "sms"})
    assert listed.status_code == 200 and listed.json()["total"] == 1
    roi = client.get("/v1/analytics/roi", params={"from": "2026-03-10", "to": "2026-03-13"})
    assert roi.status_code == 200
    sms = next(r for r in roi.json()["channels"] if r["channel"] == "sms")
    assert sms["cost"] == 150 and sms["revenue"] == 500
    assert client.get("/v1/analytics/roi", params={"model": "markov"}).status_code == 422
    unknown = client.get("/v1/analytics/roi", params={"conversion": "nope"})
    assert unknown.status_code == 422


def test_cli_imports_all_or_nothing_and_lists(tmp_path: Path) -> None:
    from siyu.cli import app
    from siyu.core.config import load_settings
    from siyu.store import open_database
    from siyu.store.migrate import upgrade

    settings = load_settings(home=tmp_path)
    database = open_database(settings.resolved_database_url)
    upgrade(database)
    database.dispose()
    env = {"SIYU_HOME": str(tmp_path), "SIYU_LANG": "en", "COLUMNS": "200"}
    runner = CliRunner()
    bad = tmp_path / "bad.csv"
    bad.write_text("date,channel,cost\n2026-03-10,sms,10\n2026-03-11,sms,-1\n")
    refused = runner.invoke(app, ["analytics", "costs", "import", str(bad)], env=env)
    assert refused.exit_code == 2 and "negative" in refused.output
    good = tmp_path / "good.csv"
    good.write_text(
        "date,channel,campaign,cost\n"
        + "".join(f"{date(2026, 3, 1) + timedelta(days=i)},sms,S,{i}.5\n" for i in range(3))
    )
    imported = runner.invoke(app, ["analytics", "costs", "import", str(good), "--json"], env=env)
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.output)["stored"]["inserted"] == 3
    listed = runner.invoke(app, ["analytics", "costs", "list", "--json"], env=env)
    assert listed.exit_code == 0 and json.loads(listed.output)["total"] == 3
    roi = runner.invoke(
        app, ["analytics", "roi", "--from", "2026-03-01", "--to", "2026-03-03"], env=env
    )
    # no events at all: the conversion event is unknown, said plainly
    assert roi.exit_code == 2 and "order_paid" in roi.output
