"""Anomaly detection against hand computations and scipy/statsmodels; alert rules run end
to end with delivery to a local webhook, a local WeCom-robot stand-in and a real SMTP server."""

from __future__ import annotations

import email.policy
import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from scipy.stats import median_abs_deviation
from statsmodels.tsa.seasonal import STL

from siyu.analytics.alerts import service
from siyu.analytics.alerts.detect import Direction, Method, baseline, judge
from siyu.analytics.alerts.models import RuleCreate, Target
from siyu.analytics.common import AnalysisError
from siyu.core.config import Settings
from siyu.events import EventStore
from siyu.store import open_database
from siyu.store.migrate import upgrade

DAY = date(2026, 3, 30)  # a Monday


# -- detection -----------------------------------------------------------------------------


def test_weekday_baseline_is_the_median_of_the_same_weekdays() -> None:
    history = [float(i) for i in range(28)]  # day 27 is the day before DAY
    expected, noise = baseline(history, Method.weekday)  # type: ignore[misc]
    same = np.array([21.0, 14.0, 7.0, 0.0])  # 7, 14, 21, 28 days before
    assert expected == np.median(same)
    assert noise == pytest.approx(median_abs_deviation(same, scale="normal"))


def test_mad_baseline_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    history = list(rng.normal(100, 5, 28))
    expected, noise = baseline(history, Method.mad)  # type: ignore[misc]
    assert expected == pytest.approx(np.median(history))
    assert noise == pytest.approx(median_abs_deviation(history, scale="normal"))


def test_stl_baseline_matches_a_direct_decomposition() -> None:
    rng = np.random.default_rng(5)
    weekly = np.tile([100, 90, 95, 110, 130, 160, 150], 8).astype(float)
    history = list(weekly + rng.normal(0, 3, 56))
    expected, noise = baseline(history, Method.stl)  # type: ignore[misc]
    fit = STL(np.array(history), period=7, robust=True).fit()
    assert expected == pytest.approx(fit.trend[-1] + fit.seasonal[-7])
    assert noise == pytest.approx(median_abs_deviation(fit.resid, scale="normal"))
    assert abs(expected - 100) < 15  # the next day is a "100" weekday


def test_judge_needs_both_the_threshold_and_the_noise() -> None:
    flat = [100.0] * 28
    assert judge(DAY, 120, flat).anomalous  # +20% and no noise
    assert not judge(DAY, 110, flat).anomalous  # +10% < 15%
    assert judge(DAY, 80, flat).direction is Direction.down
    assert not judge(DAY, 80, flat, direction=Direction.up).anomalous
    noisy = [100.0, 60.0, 140.0, 100.0] * 7  # same weekdays vary a lot
    assert not judge(DAY, 125, noisy).anomalous
    assert not judge(DAY, 5, [0.0] * 28).anomalous  # nothing to compare a change with
    missing = judge(DAY, 500, [None] * 28)
    assert not missing.anomalous and missing.expected is None
    assert not judge(DAY, None, flat).anomalous


# -- running rules -------------------------------------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server: Any = self.server
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        server.received.append({"path": self.path, "body": body})
        status, answer = server.answer
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def http_server() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.received = []
    server.answer = (200, {"errcode": 0, "errmsg": "ok"})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    with socket.socket() as probe:  # a free port (the controller checks it by connecting)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


def orders_by_day(counts: dict[date, int]) -> list[dict[str, Any]]:
    rows = []
    for day, count in counts.items():
        for i in range(count):
            rows.append(
                {
                    "user": f"u{i}",
                    "name": "order_paid",
                    "ts": f"{day.isoformat()} 12:{i % 60:02d}",
                    "amount": 10,
                }
            )
    return rows


def history_with_spike(spike: int) -> dict[date, int]:
    counts = {DAY - timedelta(days=d): 20 for d in range(1, 40)}
    counts[DAY] = spike
    return counts


@pytest.fixture
def db(settings: Settings) -> Iterator[Any]:
    database = open_database(settings.resolved_database_url)
    upgrade(database)
    yield database
    database.dispose()


def test_rules_raise_once_and_deliver_everywhere(
    settings: Settings,
    db: Any,
    load: Callable[..., EventStore],
    http_server: Any,
    smtp: tuple[int, Inbox],
) -> None:
    port, inbox = smtp
    settings = settings.model_copy(
        update={
            "smtp_url": f"smtp://127.0.0.1:{port}",
            "wecom_robot_url": f"{http_server.url}/cgi-bin/webhook/send",
        }
    )
    store = load(orders_by_day(history_with_spike(35)))
    with db.unit_of_work() as session:
        rule = service.create_rule(
            session,
            RuleCreate(
                name="订单数异常",
                metric="orders",
                targets=[
                    Target(kind="webhook", address=f"{http_server.url}/hook"),
                    Target(kind="wecom_robot", address="robot-key-1"),
                    Target(kind="email", address="ops@example.com"),
                ],
            ),
        )
        quiet = service.create_rule(
            session, RuleCreate(name="GMV down", metric="gmv", direction=Direction.down)
        )
    with db.unit_of_work() as session:
        summary = service.run_rules(session, store, settings, DAY)
    assert [a.metric for a in summary.alerts] == ["orders"]
    alert = summary.alerts[0]
    assert (alert.value, alert.expected, alert.change) == (35, 20, pytest.approx(0.75))
    assert summary.delivered == 3 and summary.failed == 0
    paths = sorted(r["path"] for r in http_server.received)
    assert paths == ["/cgi-bin/webhook/send?key=robot-key-1", "/hook"]
    robot = next(r for r in http_server.received if "key=" in r["path"])["body"]
    assert robot["msgtype"] == "markdown" and "订单数异常" in robot["markdown"]["content"]
    hook = next(r for r in http_server.received if r["path"] == "/hook")["body"]
    assert hook["metric"] == "orders" and hook["value"] == 35
    assert len(inbox.messages) == 1 and "订单数异常" in inbox.messages[0]["Subject"]
    with db.unit_of_work() as session:
        again = service.run_rules(session, store, settings, DAY)
        _items, total = service.list_alerts(session)
    assert again.delivered == 0 and total == 1  # deduplicated, not delivered twice
    assert len(http_server.received) == 2 and len(inbox.messages) == 1
    assert quiet.id != rule.id


def test_failed_deliveries_are_retried(
    settings: Settings, db: Any, load: Callable[..., EventStore], http_server: Any
) -> None:
    store = load(orders_by_day(history_with_spike(2)))
    http_server.answer = (500, {"error": "down"})
    with db.unit_of_work() as session:
        service.create_rule(
            session,
            RuleCreate(name="drop", metric="orders",
                       targets=[Target(kind="webhook", address=f"{http_server.url}/hook")]),
        )  # fmt: skip
    with db.unit_of_work() as session:
        first = service.run_rules(session, store, settings, DAY)
    assert first.failed == 1 and first.alerts[0].direction == "down"
    assert first.alerts[0].deliveries[0]["ok"] is False
    http_server.answer = (200, {})
    with db.unit_of_work() as session:
        second = service.run_rules(session, store, settings, DAY)
    assert second.delivered == 1
    with db.unit_of_work() as session:
        acknowledged = service.acknowledge(session, second.alerts[0].id, "tester")
        third = service.run_rules(session, store, settings, DAY)
    assert acknowledged.status == "acknowledged" and third.delivered == 0


def test_bad_rules(db: Any) -> None:
    with db.unit_of_work() as session, pytest.raises(AnalysisError):
        service.create_rule(session, RuleCreate(name="x", metric="nope"))
    with db.unit_of_work() as session, pytest.raises(AnalysisError):
        service.create_rule(session, RuleCreate(name="x", metric="churn_rate"))
    for kind, address in [("webhook", "ftp://x"), ("email", "not-mail"), ("wecom_robot", "a b")]:
        with pytest.raises(ValueError, match="address"):
            Target(kind=kind, address=address)  # type: ignore[arg-type]


def test_api_and_cli(client: TestClient, load: Callable[..., EventStore], tmp_path: Path) -> None:
    load(orders_by_day(history_with_spike(40)))
    created = client.post("/v1/analytics/alert-rules", json={"name": "订单", "metric": "orders"})
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    for bad in [
        {"name": "x", "metric": "nope"},
        {"name": "x", "metric": "orders", "threshold": -1},
        {"name": "x", "metric": "orders", "targets": [{"kind": "fax", "address": "1"}]},
        {"metric": "orders"},
    ]:
        answer = client.post("/v1/analytics/alert-rules", json=bad)
        assert answer.status_code == 422, bad
        assert answer.headers["content-type"].startswith("application/problem+json")
    run = client.post("/v1/analytics/alerts/run", params={"day": DAY.isoformat()})
    assert run.status_code == 200, run.text
    assert len(run.json()["alerts"]) == 1
    page = client.get("/v1/analytics/alerts", params={"status": "open"}).json()
    assert page["total"] == 1
    alert_id = page["items"][0]["id"]
    assert client.post(f"/v1/analytics/alerts/{alert_id}/ack").json()["status"] == "acknowledged"
    assert client.post("/v1/analytics/alerts/999/ack").status_code == 404
    assert client.get("/v1/analytics/alerts", params={"status": "open"}).json()["total"] == 0
    found = client.get("/v1/analytics/anomalies", params={"day": DAY.isoformat()}).json()
    orders = next(f for f in found if f["metric"] == "orders")
    assert orders["verdict"]["anomalous"] is True
    assert (
        client.patch(f"/v1/analytics/alert-rules/{rule_id}", json={"enabled": False}).json()[
            "enabled"
        ]
        is False
    )
    assert client.delete(f"/v1/analytics/alert-rules/{rule_id}").status_code == 204
    assert client.get(f"/v1/analytics/alert-rules/{rule_id}").status_code == 404


def test_cli(cli_home: Callable[..., Any], tmp_path: Path) -> None:
    run = cli_home(orders_by_day(history_with_spike(40)))
    rule = tmp_path / "rule.yaml"
    rule.write_text("name: 订单异常\nmetric: orders\nthreshold: 0.2\n", encoding="utf-8")
    assert run("analytics", "alerts", "add-rule", str(rule)).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    failed = run("analytics", "alerts", "add-rule", str(bad))
    assert failed.exit_code == 2 and "bad.yaml" in failed.output
    ran = run("analytics", "alerts", "run", "--day", DAY.isoformat(), "--json")
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output)["alerts"][0]["value"] == 40
    listed = run("analytics", "alerts", "list")
    assert listed.exit_code == 0 and "2026-03-30" in listed.output
    assert run("analytics", "alerts", "ack", "1").exit_code == 0
    assert run("analytics", "alerts", "ack", "99").exit_code == 2
    shown = run("analytics", "anomalies", "--day", DAY.isoformat())
    assert shown.exit_code == 0, shown.output


def test_scan_without_data_is_empty(store: EventStore) -> None:
    from tests.analytics.conftest import SHANGHAI

    assert service.scan(store, SHANGHAI) == []
    assert datetime  # keep the import used by type checkers
