"""The analytics pages (funnels, retention, paths, attribution, experiments, metrics) and the
reports page answer in Chinese, show their results, their empty states and in-page errors,
and keep to the roles."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from siyu.analytics.experiments import service as experiments
from siyu.analytics.experiments.models import ExperimentCreate
from siyu.analytics.report import service as reports
from siyu.api import create_app
from siyu.core.config import Settings, secret_key
from siyu.events import open_event_store
from siyu.identity.service import derive_hash_key
from siyu.privacy import service as users
from siyu.privacy.models import Role, UserCreate
from siyu.store import open_database
from tests.web.conftest import PASSWORD, admin_password, csrf_of, sign_in
from tests.web.reports_fixture import quick_report_build, weekly_report

__all__ = ["quick_report_build", "weekly_report"]  # fixtures

Console = Callable[[str | None], TestClient]
STEPS = ["product_view", "add_to_cart", "order_paid"]


def _add_user(settings: Settings, username: str, role: Role) -> None:
    database = open_database(settings.resolved_database_url)
    try:
        with database.unit_of_work() as session:
            users.create(
                db_session=session,
                user_in=UserCreate(username=username, password=PASSWORD, role=role),
            )
    finally:
        database.dispose()


def _step_counts(html: str) -> list[int]:
    found = re.findall(r'<td class="num step-count">([\d,]+)</td>', html)
    return [int(n.replace(",", "")) for n in found]


def test_funnel_page_runs_and_matches_the_api(console: Console) -> None:
    client = console("admin")
    first = client.get("/analytics/funnels")
    assert first.status_code == 200
    html = first.text
    assert "步骤" in html and "数据概览" in html  # Chinese labels and the navigation
    assert 'href="/analytics/funnels"' in html and 'href="/reports"' in html
    assert 'class="notice empty"' in html  # nothing asked yet: says what to do
    assert html.count('name="step"') >= 2 + 1  # two rows or more, and the row template
    params = {"step": STEPS, "window": "7d", "mode": "any", "breakdown": "channel"}
    partial = client.get("/analytics/funnels", params=params, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert partial.text.lstrip().startswith('<div id="analysis"')
    counts = _step_counts(partial.text)
    api = client.post(
        "/v1/analytics/funnels",
        json={"steps": [{"event": s} for s in STEPS], "window": "7d", "breakdown": "channel"},
    )
    assert api.status_code == 200, api.text
    assert counts == [s["count"] for s in api.json()["steps"]]
    assert counts[0] > 0
    assert partial.text.count("data-echarts=") == 2  # the funnel and time to convert
    for row in api.json()["breakdown_rows"]:  # one table row per channel
        assert f'<th scope="row">{row["value"]}</th>' in partial.text
    assert "Traceback" not in partial.text


def test_who_dropped_off_becomes_a_segment(console: Console) -> None:
    client = console("admin")
    params = {"step": STEPS, "window": "7d", "mode": "any"}
    html = client.get("/analytics/funnels", params=params).text
    assert 'action="/analytics/funnels/dropoff"' in html
    api = client.post(
        "/v1/analytics/funnels", json={"steps": [{"event": s} for s in STEPS], "window": "7d"}
    ).json()
    form = {
        "csrf_token": csrf_of(html), "step": STEPS, "window": "7d", "mode": "any",
        "start": api["period"]["start"], "end": api["period"]["end"], "at": "2",
        "key": "dropped_at_two", "name": "第二步流失",
    }  # fmt: skip
    saved = client.post("/analytics/funnels/dropoff", data=form, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/segments/dropped_at_two"
    page = client.get("/segments/dropped_at_two").text
    assert f'<dd id="segment-count">{api["steps"][1]["dropped"]:,}</dd>' in page
    again = client.post("/analytics/funnels/dropoff", data=form)
    assert again.status_code == 409 and "Traceback" not in again.text
    bad = client.post("/analytics/funnels/dropoff", data={**form, "csrf_token": "x"})
    assert bad.status_code == 403


def test_unknown_event_is_an_error_in_the_page(console: Console) -> None:
    client = console("admin")
    answer = client.get("/analytics/funnels", params={"step": ["product_view", "no_such_evt"]})
    assert answer.status_code == 200
    assert 'class="notice error"' in answer.text and "no_such_evt" in answer.text
    assert "Traceback" not in answer.text
    window = client.get("/analytics/funnels", params={"step": STEPS, "window": "soon"})
    assert 'class="notice error"' in window.text and "soon" in window.text
    paths = client.get("/analytics/paths", params={"start_event": "nope_evt"})
    assert 'class="notice error"' in paths.text and "nope_evt" in paths.text


def test_retention_heat_map_marks_incomplete_cells(console: Console) -> None:
    client = console("admin")
    answer = client.get("/analytics/retention", params={"grain": "week", "periods": "8"})
    assert answer.status_code == 200
    assert "留存" in answer.text and 'class="heatmap"' in answer.text
    assert "cell incomplete" in answer.text  # the latest cohorts' later weeks
    assert re.search(r'<td class="num cell" style="background: rgba', answer.text)
    unbounded = client.get(
        "/analytics/retention",
        params={"cohort_event": "order_paid", "return_event": "order_paid", "unbounded": "1"},
        headers={"HX-Request": "true"},
    )
    assert unbounded.text.lstrip().startswith('<div id="analysis"')


def test_paths_attribution_and_metrics(console: Console) -> None:
    client = console("admin")
    paths = client.get("/analytics/paths", params={"start_event": "product_view", "steps": "3"})
    assert paths.status_code == 200 and "&#34;sankey&#34;" in paths.text
    assert "路径" in paths.text
    before = client.get(
        "/analytics/paths", params={"start_event": "order_paid", "direction": "before"}
    )
    assert "之前" in before.text
    attribution = client.get("/analytics/attribution", params={"measure": "revenue"})
    assert attribution.status_code == 200
    header = re.search(
        r'<table class="list compact attribution">.*?</thead>', attribution.text, re.S
    )
    assert header and header.group(0).count('<th class="num">') == 6  # six models side by side
    assert "¥" in attribution.text and "data-echarts=" in attribution.text
    explorer = client.get(
        "/analytics/metrics",
        params={"metric": ["gmv", "orders", "open_rate"], "grain": "week", "dimension": "channel"},
    )
    assert explorer.status_code == 200
    assert explorer.text.count("data-echarts=") == 3
    assert "按 渠道" in explorer.text  # the breakdown table
    assert explorer.text.count('name="metric"') > 20  # the whole catalogue to choose from


def test_experiments_list_and_result(console: Console, brand: Settings) -> None:
    client = console("admin")
    empty = client.get("/analytics/experiments")
    assert empty.status_code == 200 and "siyu experiments create" in empty.text
    spec = ExperimentCreate.model_validate(
        {
            "key": "big_coupon",
            "name": "大额券",
            "variants": [
                {"key": "control", "weight": 50, "control": True},
                {"key": "big", "weight": 50},
            ],
            "salt": "web",
            "start_at": "2026-04-01T00:00:00+08:00",
            "primary_metric": {"key": "ordered", "kind": "conversion", "event": "order_paid"},
        }
    )
    database = open_database(brand.resolved_database_url)
    people = re.findall(r'href="/people/(p_[0-9a-z]+)"', client.get("/people").text)
    try:
        with open_event_store(brand.resolved_events_url) as events:
            with database.unit_of_work() as session:
                experiments.create(session, events, spec)
                experiments.start(session, "big_coupon")
            with database.unit_of_work() as session:
                experiments.expose(
                    session,
                    events,
                    "big_coupon",
                    people,
                    hash_key=derive_hash_key(secret_key(brand)),
                    tz=brand.tz,
                    at=datetime(2026, 5, 1, tzinfo=UTC),
                )
    finally:
        database.dispose()
    listed = client.get("/analytics/experiments", params={"status": "running"})
    assert 'href="/analytics/experiments/big_coupon"' in listed.text
    assert "大额券" in listed.text
    none = client.get("/analytics/experiments", params={"status": "stopped"})
    assert 'class="notice empty"' in none.text
    result = client.get("/analytics/experiments/big_coupon")
    assert result.status_code == 200
    assert "曝光人数" in result.text and "变体" in result.text and "提升" in result.text
    assert '<svg class="ci"' in result.text or "—" in result.text
    missing = client.get("/analytics/experiments/nope")
    assert missing.status_code == 404 and 'class="notice error"' in missing.text


def test_roles(console: Console, brand: Settings) -> None:
    _add_user(brand, "ada", Role.analyst)
    _add_user(brand, "audrey", Role.auditor)
    with TestClient(create_app(brand), raise_server_exceptions=False) as client:
        sign_in(client, "audrey", PASSWORD)
        denied = client.get("/analytics/funnels")
        assert denied.status_code == 403 and 'class="notice error"' in denied.text
        assert client.get("/analytics/experiments").status_code == 403
        reports_page = client.get("/reports")
        assert reports_page.status_code == 200
        assert 'href="/analytics/funnels"' not in reports_page.text
        assert 'action="/reports/build"' not in reports_page.text
    with TestClient(create_app(brand), raise_server_exceptions=False) as client:
        sign_in(client, "ada", PASSWORD)
        assert client.get("/analytics/metrics").status_code == 200
        token = csrf_of(client.get("/reports").text)
        refused = client.post("/reports/build", data={"csrf_token": token})
        assert refused.status_code == 403
    anonymous = console(None).get("/analytics/funnels", follow_redirects=False)
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]


@pytest.mark.usefixtures("quick_report_build")
def test_reports_build_view_and_download(console: Console, brand: Settings) -> None:
    client = console("olivia")  # an operator may build
    page = client.get("/reports")
    assert page.status_code == 200 and "报告" in page.text
    assert "siyu report weekly" in page.text  # the empty state
    no_token = client.post("/reports/build", data={"csrf_token": "x"})
    assert no_token.status_code == 403
    started = client.post(
        "/reports/build", data={"csrf_token": csrf_of(page.text)}, headers={"HX-Request": "true"}
    )
    assert started.status_code == 200 and "<progress" in started.text
    job = re.search(r'hx-get="/reports/jobs/([^"]+)"', started.text)
    assert job
    deadline = time.monotonic() + 60
    while True:
        polled = client.get(f"/reports/jobs/{job.group(1)}", headers={"HX-Request": "true"})
        if "<progress" not in polled.text:
            break
        assert time.monotonic() < deadline, "the report build did not finish"
        time.sleep(0.3)
    assert 'class="notice done"' in polled.text, polled.text
    assert polled.headers.get("HX-Trigger") == "siyu-report-built"
    name = reports.list_reports(brand)[0].name
    listed = client.get("/reports", headers={"HX-Request": "true"})
    assert f'href="/reports/{name}"' in listed.text
    view = client.get(f"/reports/{name}")
    assert view.status_code == 200
    assert f'src="/reports/files/{name}.html" sandbox="allow-scripts"' in view.text
    html = client.get(f"/reports/files/{name}.html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert html.headers["Content-Security-Policy"].startswith("sandbox allow-scripts;")
    assert "default-src 'none'" in html.headers["Content-Security-Policy"]
    for suffix, media in (("pdf", "application/pdf"), ("json", "application/json")):
        got = client.get(f"/reports/files/{name}.{suffix}", params={"download": "1"})
        assert got.status_code == 200 and got.headers["content-type"].startswith(media)
        assert got.headers["content-disposition"].startswith("attachment")
    assert client.get("/reports/files/secret.key").status_code == 404
    assert client.get("/reports/weekly-1999-W01").status_code == 404


def test_empty_brand_says_what_to_do(empty: Settings) -> None:
    with TestClient(create_app(empty)) as client:
        sign_in(client, "admin", admin_password(empty))
        for path in (
            "/analytics/funnels",
            "/analytics/retention",
            "/analytics/paths",
            "/analytics/attribution",
            "/analytics/metrics",
        ):
            answer = client.get(path)
            assert answer.status_code == 200, path
            assert "siyu demo" in answer.text, path
        assert "siyu report weekly" in client.get("/reports").text


@pytest.mark.parametrize("path", ["/analytics", "/analytics/experiments?page=abc&status=<b>"])
def test_odd_addresses(console: Console, path: str) -> None:
    answer = console("admin").get(path)
    assert answer.status_code == 200 and "Traceback" not in answer.text
