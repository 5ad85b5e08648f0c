"""The weekly report: figures against a brute-force count, every suggestion rule firing and
not firing, offline HTML, a PDF with Chinese, storage, API, CLI and the Monday schedule."""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from pypdf import PdfReader

from siyu.analytics.common import AnalysisError
from siyu.analytics.metrics import Unit
from siyu.analytics.report import render, service, weekly
from siyu.analytics.report.models import Dimension, WeeklyReport
from siyu.analytics.report.suggestions import RULES, Condition, Fact, Rule, apply, suggest
from siyu.core.config import Settings
from siyu.core.i18n import use_locale
from siyu.events import EventStore
from siyu.scheduler import tick
from siyu.store import open_database
from siyu.store.migrate import upgrade
from tests.analytics.conftest import SHANGHAI, at
from tests.analytics.test_alerts import Inbox

WEEK = "2026-W47"  # Monday 16 – Sunday 22 November 2026
MONDAY = date(2026, 11, 16)


def _day(offset: int, hour: int = 10) -> str:
    return f"{(MONDAY + timedelta(days=offset)).isoformat()} {hour:02d}:00"


def world_rows() -> list[dict[str, Any]]:
    """Old people seen in W45; four people new in W46 (two buy); six new in W47 (three buy,
    one of W46 buys again); messages, an unsubscribe and a complaint; one event in W48 so
    W47 is the last complete week."""
    rows: list[dict[str, Any]] = [
        {"user": f"old{i}", "name": "page_view", "ts": _day(-14 + i)} for i in range(3)
    ]
    for i in range(4):
        rows.append({"user": f"a{i}", "name": "product_view", "ts": _day(-7 + i)})
    rows += [
        {"user": "a0", "name": "order_paid", "ts": _day(-6), "amount": 100, "channel": "wecom"},
        {"user": "a1", "name": "order_paid", "ts": _day(-5), "amount": 50, "channel": "web"},
        {"user": "a0", "name": "message_delivered", "ts": _day(-6), "channel": "wecom"},
        {"user": "a1", "name": "message_delivered", "ts": _day(-6), "channel": "wecom"},
    ]
    for i in range(6):
        rows.append({"user": f"b{i}", "name": "product_view", "ts": _day(i % 7)})
        rows.append({"user": f"b{i}", "name": "message_delivered", "ts": _day(i % 7, 11)})
    rows += [
        {"user": "b0", "name": "order_paid", "ts": _day(1), "amount": 80, "channel": "wecom"},
        {"user": "b1", "name": "order_paid", "ts": _day(2), "amount": 120, "channel": "web"},
        {"user": "b2", "name": "order_paid", "ts": _day(3), "amount": 60.5, "channel": "wecom"},
        {"user": "a0", "name": "order_paid", "ts": _day(4), "amount": 40, "channel": "wecom"},
        {"user": "b3", "name": "unsubscribe", "ts": _day(4, 12), "channel": "sms"},
        {"user": "b4", "name": "complaint", "ts": _day(5, 12), "channel": "sms"},
        {"user": "b0", "name": "page_view", "ts": _day(8)},
    ]
    return rows


def brute_force(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """New people, GMV, orders, buyers and unsubscribes per week, counted row by row."""
    first: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: r["ts"]):
        first.setdefault(row["user"], row["ts"][:10])
    weeks = {"now": (MONDAY, MONDAY + timedelta(days=6))}
    weeks["before"] = (MONDAY - timedelta(days=7), MONDAY - timedelta(days=1))
    found: dict[str, dict[str, float]] = {}
    for label, (start, end) in weeks.items():

        def inside(text: str, start: date = start, end: date = end) -> bool:
            return start <= date.fromisoformat(text[:10]) <= end

        orders = [r for r in rows if r["name"] == "order_paid" and inside(r["ts"])]
        found[label] = {
            "new_people": sum(1 for d in first.values() if inside(d)),
            "gmv": sum(float(r["amount"]) for r in orders),
            "orders": len(orders),
            "buyers": len({r["user"] for r in orders}),
            "unsubscribes": sum(1 for r in rows if r["name"] == "unsubscribe" and inside(r["ts"])),
        }
    return found


@pytest.fixture
def db(settings: Settings) -> Iterator[Any]:
    database = open_database(settings.resolved_database_url)
    upgrade(database)
    yield database
    database.dispose()


def _build(db: Any, store: EventStore, week: str | None = None) -> WeeklyReport:
    with db.unit_of_work() as session:
        return weekly.build(store, session, tz=SHANGHAI, week=week)


# -- figures -----------------------------------------------------------------------------------


def test_figures_match_a_brute_force_count(
    db: Any, load: Callable[..., EventStore], settings: Settings
) -> None:
    rows = world_rows()
    store = load(rows)
    report = _build(db, store)  # the default: the last complete week
    assert report.week == WEEK and report.start == MONDAY and report.data_until == _d(8)
    expected = brute_force(rows)
    for key in ("new_people", "gmv", "orders", "buyers", "unsubscribes"):
        kpi = report.kpi(key)
        assert kpi is not None
        now, before = expected["now"][key], expected["before"][key]
        assert kpi.value == pytest.approx(now), key
        assert kpi.previous == pytest.approx(before), key
        assert kpi.change == (pytest.approx((now - before) / before) if before else None), key
    assert [s.dimension for s in report.suggestions][:1] == [Dimension.acquisition]
    assert {s.dimension for s in report.suggestions} == set(Dimension)
    for item in report.suggestions:
        assert item.evidence, item  # every read-out cites its numbers
    assert report.funnel is None and report.notes  # no add_to_cart/checkout events: said so
    channels = {c.channel: c for c in report.channels}
    assert sum(c.revenue for c in channels.values()) == pytest.approx(expected["now"]["gmv"])

    # Stored: HTML (offline, parses), JSON (the model) and a PDF whose text is Chinese.
    paths = service.save(settings, report)
    names = sorted(p.name for p in paths)
    assert names == [f"weekly-{WEEK}.{ext}" for ext in ("html", "json", "pdf")]
    html = (settings.home_dir / "reports" / f"weekly-{WEEK}.html").read_text()
    _check_offline_html(html)
    assert html.count("<svg") == len(report.charts) >= 4
    stored = json.loads((settings.home_dir / "reports" / f"weekly-{WEEK}.json").read_text())
    assert WeeklyReport.model_validate(stored).kpis == report.kpis
    pdf = (settings.home_dir / "reports" / f"weekly-{WEEK}.pdf").read_bytes()
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "新增人数" in text and WEEK in text
    listed = service.list_reports(settings)
    assert [(r.name, r.formats) for r in listed] == [(f"weekly-{WEEK}", ["html", "pdf", "json"])]


def _d(offset: int) -> date:
    return MONDAY + timedelta(days=offset)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            assert name not in {"src", "href"} or not value or not value.startswith("http"), value


def _check_offline_html(html: str) -> None:
    """No address outside the ECharts licence comments; nothing loaded from elsewhere."""
    licences = re.findall(r"/\*[\s\S]*?\*/", html)
    assert any("Apache" in c for c in licences)
    stripped = html
    for comment in licences:
        if re.search(r"licen[cs]e|copyright", comment, re.IGNORECASE):
            stripped = stripped.replace(comment, "")
    assert re.findall(r"https?://", stripped) == []
    parser = _Parser()
    parser.feed(html)
    parser.close()
    assert {"html", "body", "table", "svg", "script"} <= set(parser.tags)
    assert "echarts.init" in html


def test_bad_and_future_weeks(db: Any, load: Callable[..., EventStore]) -> None:
    store = load(world_rows())
    with pytest.raises(AnalysisError, match="2026-W60"):
        _build(db, store, "2026-W60")
    with pytest.raises(AnalysisError, match="2027-W02"):
        _build(db, store, "2027-W02")  # after the data


def _empty_report() -> WeeklyReport:
    return WeeklyReport(
        name=f"weekly-{WEEK}", week=WEEK, start=MONDAY, end=_d(6), previous_start=_d(-7),
        previous_end=_d(-1), timezone="Asia/Shanghai", lang="zh-CN", generated_at=at(_day(8)),
        data_until=_d(8), kpis=[], charts=[], movers=[], anomalies=[], experiments=[],
        funnel=None, channels=[], returning_rate=None, previous_returning_rate=None,
        suggestions=suggest({}),
    )  # fmt: skip


def test_no_cjk_font_is_a_clear_error(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    report = _empty_report()
    monkeypatch.setattr(render, "cjk_fonts", list)
    with pytest.raises(render.FontMissingError) as caught:
        service.save(settings, report)
    assert "fonts-wqy-microhei" in (caught.value.render_hint("en") or "")
    assert service.list_reports(settings) == []  # nothing half-made
    assert service.save(settings, report, pdf=False)  # --no-pdf still works


# -- rules -------------------------------------------------------------------------------------


def _firing(rule: Rule) -> dict[str, Fact]:
    """Figures that satisfy every condition of the rule."""
    values: dict[str, list[float]] = {}
    for c in rule.conditions:
        value, previous = values.get(c.metric, [1000.0, 1000.0])
        if c.test == "fell":
            value, previous = 1000 * (1 - c.threshold) - 1, 1000.0
        elif c.test == "rose":
            value, previous = 1000 * (1 + c.threshold) + 1, 1000.0
        elif c.test == "below":
            value, previous = c.threshold - 1, c.threshold
        values[c.metric] = [value, previous]
    for key in rule.cites:
        values.setdefault(key, [5.0, 4.0])
    for c in rule.conditions:  # minimum sizes and levels hold with these values
        assert c.test in ("fell", "rose", "below") or values[c.metric][0] >= c.threshold
    return {k: Fact(v, p, Unit.number, k) for k, (v, p) in values.items()}


def _broken(facts: dict[str, Fact], c: Condition) -> dict[str, Fact]:
    value = {
        "fell": facts[c.metric].previous,
        "rose": facts[c.metric].previous,
        "below": c.threshold,
        "above": c.threshold,
        "at_least": c.threshold - 0.5,
    }[c.test]
    return facts | {c.metric: Fact(value, facts[c.metric].previous, Unit.number, c.metric)}


@pytest.mark.parametrize("rule", RULES, ids=[r.key for r in RULES])
def test_each_rule_fires_only_when_all_its_conditions_hold(rule: Rule) -> None:
    facts = _firing(rule)
    found = apply(rule, facts)
    assert found is not None and found.rule == rule.key and found.severity == "action"
    assert set(found.evidence) >= set(rule.metrics)
    assert "{" not in found.text
    for condition in rule.conditions:
        assert apply(rule, _broken(facts, condition)) is None, condition
    assert apply(rule, {}) is None  # no figures, no claim


def test_the_welcome_journey_rule_cites_its_numbers() -> None:
    facts = {
        "retention_d7": Fact(0.098, 0.121, Unit.rate, "D7 retention"),
        "new_people": Fact(1080, 1000, Unit.number, "New people"),
    }
    with use_locale("en"):
        found = [s for s in suggest(facts) if s.rule == "d7_fell_while_growing"]
    assert len(found) == 1
    assert found[0].text == (
        "D7 retention fell from 12.1% to 9.8% (−19.0%) while new people grew +8.0%: "
        "review the welcome journey"
    )
    assert found[0].evidence["retention_d7"] == 0.098
    assert found[0].evidence["new_people.change"] == pytest.approx(0.08)


def test_quiet_dimensions_show_their_figures() -> None:
    facts = {"new_people": Fact(100, 100, Unit.number, "New people")}
    with use_locale("en"):
        found = suggest(facts)
    assert [s.dimension for s in found] == list(Dimension)
    assert all(s.severity == "steady" for s in found)
    assert found[0].text == "Nothing notable: New people 100 (+0.0%)"
    assert found[0].evidence == {
        "new_people": 100,
        "new_people.previous": 100,
        "new_people.change": 0.0,
    }


# -- API and CLI -------------------------------------------------------------------------------


def test_api(client: TestClient, load: Callable[..., EventStore], settings: Settings) -> None:
    load(world_rows())
    assert client.get("/v1/reports").json() == []
    built = client.post("/v1/reports/weekly", params={"week": WEEK, "pdf": "false"})
    assert built.status_code == 200, built.text
    assert built.json()["name"] == f"weekly-{WEEK}"
    listed = client.get("/v1/reports").json()
    assert [(r["name"], r["formats"]) for r in listed] == [(f"weekly-{WEEK}", ["html", "json"])]
    page = client.get(f"/v1/reports/weekly-{WEEK}.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    data = client.get(f"/v1/reports/weekly-{WEEK}.json")
    assert data.headers["content-type"] == "application/json" and data.json()["week"] == WEEK
    (settings.home_dir / "secret.txt").write_text("secret")
    for name in (
        f"weekly-{WEEK}.pdf",  # not built
        "weekly-2026-W01.html",
        "..%2Fsecret.txt",
        "..%2F..%2Fetc%2Fpasswd",
        "secret.txt",
    ):
        answer = client.get(f"/v1/reports/{name}")
        assert answer.status_code == 404, name
        assert "secret" not in answer.text.replace(name, "").replace("secret.txt", "")
    missing = client.get("/v1/reports/weekly-2026-W01.html")
    assert missing.headers["content-type"] == "application/problem+json"
    assert client.post("/v1/reports/weekly", params={"week": "47"}).status_code == 422
    refused = client.post("/v1/reports/weekly", params={"week": "2026-W60", "pdf": "false"})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"


def test_cli(cli_home: Callable[..., Any], tmp_path: Path) -> None:
    run = cli_home(world_rows())
    out = tmp_path / "out"
    done = run("report", "weekly", "--week", WEEK, "--no-pdf", "--out", str(out))
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.iterdir()) == [f"weekly-{WEEK}.html", f"weekly-{WEEK}.json"]
    listed = run("report", "list", "--json")
    assert listed.exit_code == 0 and f"weekly-{WEEK}" in listed.output
    bad = run("report", "weekly", "--week", "2026-W99", "--no-pdf")
    assert bad.exit_code == 2 and "2026-W99" in bad.output


# -- schedule ----------------------------------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


def test_monday_tick_builds_and_mails_last_weeks_report_once(
    settings: Settings, db: Any, load: Callable[..., EventStore], smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    settings = settings.model_copy(
        update={
            "smtp_url": f"smtp://127.0.0.1:{port}",
            "report_subscribers": "ops@example.com,boss@example.com",
        }
    )
    store = load(world_rows())
    early = tick(db, store, settings, now=at("2026-11-23 05:30"))
    assert early["report"] is None and not inbox.messages
    first = tick(db, store, settings, now=at("2026-11-23 07:00"))
    assert first["report"]["week"] == WEEK
    assert first["report"]["sent_to"] == ["ops@example.com", "boss@example.com"]
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert WEEK in message["Subject"]
    parts = {part.get_content_type(): part for part in message.walk()}
    assert "text/html" in parts and "application/pdf" in parts
    assert parts["application/pdf"].get_filename() == f"weekly-{WEEK}.pdf"
    assert "<svg" in parts["text/html"].get_content()
    again = tick(db, store, settings, now=at("2026-11-23 08:00"))
    assert again["report"] is None and len(inbox.messages) == 1
