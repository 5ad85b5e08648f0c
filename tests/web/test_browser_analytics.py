"""The analytics and reports pages in Chromium: a funnel built in the UI (rows added and
removed) gives the step counts of ``POST /v1/analytics/funnels``; every analytics page draws
its charts; last week's report is built in the background and shown in its sandboxed frame.
Fails on any console error and any request to another host; screenshots in
``test-artifacts/``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from siyu.core.config import Settings
from tests.web.conftest import admin_password
from tests.web.reports_fixture import quick_report_build, weekly_report
from tests.web.test_browser import ARTIFACTS, CHROMIUM, server

# Fixtures: the running server (shared with the console's browser test) and the report.
__all__ = ["quick_report_build", "server", "weekly_report"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} not found: install it with `make system-deps` "
        "(apt-get install chromium fonts-wqy-microhei)",
    ),
]
STEPS = ["product_view", "add_to_cart", "order_paid"]
EXPERIMENT = {
    "key": "big_coupon",
    "name": "大额券",
    "variants": [
        {"key": "control", "weight": 50, "control": True},
        {"key": "big", "weight": 50},
    ],
    "start_at": "2026-04-01T00:00:00+08:00",
    "primary_metric": {"key": "ordered", "kind": "conversion", "event": "order_paid"},
}


@pytest.mark.usefixtures("quick_report_build")
def test_analytics_in_chromium(server: str, brand: Settings) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    host = urlsplit(server).netloc

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, locale="zh-CN", reduced_motion="reduce"
        )
        page = context.new_page()
        page.set_default_timeout(15_000)

        def on_request(request: object) -> None:
            url = request.url  # type: ignore[attr-defined]
            if url.startswith(("data:", "blob:", "about:")):
                return
            if urlsplit(url).netloc != host:
                problems.append(f"request to another host: {url}")

        page.on("request", on_request)
        page.on(
            "console",
            lambda message: (
                problems.append(f"console {message.type}: {message.text}")
                if message.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

        def shot(name: str) -> None:
            page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)

        page.goto(server + "/login?next=/analytics/funnels")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", admin_password(brand))
        page.click("button[type=submit]")
        page.wait_for_url(server + "/analytics/funnels")

        # Funnel: pick the steps, add a third, add and remove a fourth, run it.
        page.wait_for_selector("#analysis .notice.empty")
        rows = page.locator("#funnel-steps .step-row select")
        assert rows.count() >= 2
        while rows.count() > 2:
            page.locator("#funnel-steps [data-step-remove]").last.click()
        assert page.locator("#funnel-steps [data-step-remove]").first.is_disabled()
        page.click("[data-step-add=funnel-steps]")
        page.click("[data-step-add=funnel-steps]")
        assert rows.count() == 4
        page.locator("#funnel-steps [data-step-remove]").last.click()
        assert rows.count() == 3
        for index, name in enumerate(STEPS):
            rows.nth(index).select_option(name)
        page.select_option("select[name=breakdown]", "channel")
        page.evaluate("window.__same_page = true")
        page.click("form.analysis-form button[type=submit]")
        page.wait_for_selector("#analysis .funnel-steps")
        page.wait_for_selector("#analysis [data-echarts] svg")
        assert page.evaluate("window.__same_page") is True  # HTMX, no page load
        assert "step=add_to_cart" in page.url
        shown = [
            int(text.replace(",", ""))
            for text in page.locator("#analysis .step-count").all_inner_texts()
        ]
        api = context.request.post(
            server + "/v1/analytics/funnels",
            data={"steps": [{"event": s} for s in STEPS], "window": "7d", "breakdown": "channel"},
        )
        assert api.ok, api.text()
        assert shown == [step["count"] for step in api.json()["steps"]]
        assert shown[0] > 0
        shot("analytics-funnel")

        # The other analytics pages draw their charts or tables.
        for path, ready, name in (
            ("/analytics/retention", "#analysis table.heatmap", "retention"),
            ("/analytics/paths?start_event=product_view", "#analysis [data-echarts] svg", "paths"),
            ("/analytics/attribution", "#analysis [data-echarts] svg", "attribution"),
            ("/analytics/metrics?dimension=channel", "#analysis [data-echarts] svg", "metrics"),
        ):
            page.goto(server + path)
            page.wait_for_selector(ready)
            shot(f"analytics-{name}")

        # Experiments: one started and exposed through the API, then listed and read.
        page.goto(server + "/analytics/experiments")
        page.wait_for_selector("#analysis .notice.empty")
        people = page.evaluate(
            "fetch('/people').then(r => r.text()).then(t => "
            '[...t.matchAll(/href="\\/people\\/(p_[0-9a-z]+)"/g)].map(m => m[1]))'
        )
        created = context.request.post(server + "/v1/experiments", data=EXPERIMENT)
        assert created.ok, created.text()
        assert context.request.post(server + "/v1/experiments/big_coupon/start").ok
        exposed = context.request.post(
            server + "/v1/experiments/big_coupon/exposures",
            data={"people": people, "at": "2026-05-01T00:00:00+08:00"},
        )
        assert exposed.ok, exposed.text()
        page.reload()
        page.click("a[href='/analytics/experiments/big_coupon']")
        page.wait_for_selector("#h-variants")
        assert page.locator("nav.tabs a.current").inner_text() == "实验"
        shot("analytics-experiment")

        # Reports: build last week's in the background, watch it finish, open it.
        page.click(".sidebar a[href='/reports']")
        page.wait_for_selector("#report-list .notice.empty")
        page.click("form[action='/reports/build'] button")
        page.wait_for_selector("#report-job progress")
        page.wait_for_selector("#report-job .notice.done", timeout=90_000)
        page.wait_for_selector("#report-list table.reports")
        shot("reports")
        page.click("#report-job .notice.done a")
        frame = page.frame_locator("iframe.report-frame")
        frame.locator("h1").wait_for()
        frame.locator(".canvas svg").first.wait_for()  # ECharts ran inside the sandbox
        shot("report-view")

        # Tablet width: nothing overflows sideways.
        page.set_viewport_size({"width": 820, "height": 1180})
        page.goto(server + "/analytics/funnels?" + "&".join(f"step={s}" for s in STEPS))
        page.wait_for_selector("#analysis [data-echarts] svg")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page is {overflow}px wider than a tablet"
        shot("analytics-funnel-tablet")
        browser.close()

    assert not problems, "\n".join(problems)
