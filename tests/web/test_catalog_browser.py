"""The tag, segment and tier pages in Chromium: refresh a tag and watch its progress, build a
segment with two conditions in the visual builder and check its live count against the API,
save it, and look at the tiers; screenshots of each page land in ``test-artifacts/``."""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest

from siyu.core.config import Settings
from tests.web.conftest import admin_password
from tests.web.test_browser import ARTIFACTS, CHROMIUM, server  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} not found: install it with `make system-deps`",
    ),
]


def test_tags_segments_and_tiers_in_chromium(server: str, brand: Settings) -> None:  # noqa: F811
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
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on(
            "request",
            lambda request: (
                problems.append(f"request to another host: {request.url}")
                if not request.url.startswith(("data:", "blob:", "about:"))
                and urlsplit(request.url).netloc != host
                else None
            ),
        )
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

        page.goto(server + "/login?next=/tags")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", admin_password(brand))
        page.click("button[type=submit]")
        page.wait_for_url(server + "/tags")

        # The tag library, a tag's page with its chart, and a refresh followed to its end.
        page.wait_for_selector("table.list a.tag-link")
        assert page.locator("nav a[href='/tags'].active").count() == 1
        shot("tags")
        page.goto(server + "/tags/rfm_segment")
        page.wait_for_selector("[data-chart] svg")
        before = page.get_attribute("#refresh", "data-run")
        page.click(".refresh-form button")
        page.wait_for_selector(
            f"#refresh[data-status=done]:not([data-run='{before}'])", timeout=60_000
        )
        page.wait_for_timeout(800)  # the chart's animation
        shot("tag")

        # The rule builder: a tag condition and an event condition, then the live count.
        page.goto(server + "/segments/new")
        page.wait_for_selector("#builder .group")
        root = "#builder > .group > .group-actions"
        page.click(f"{root} button[data-add=tag]")
        page.select_option(".cond-tag select.key", "rfm_segment")
        page.select_option(".cond-tag select.op", "is not null")
        page.click(f"{root} button[data-add=event]")
        page.select_option(".cond-event select.mode", "count")
        page.select_option(".cond-event select.event", "order_paid")
        page.select_option(".cond-event select.op", ">=")
        page.fill(".cond-event input.measure", "2")
        page.fill(".cond-event input.days", "365")
        deadline = time.monotonic() + 15
        while "order_paid" not in (page.text_content("#preview") or ""):
            assert time.monotonic() < deadline, (
                f"no live count for both conditions: {page.inner_html('#preview')} {problems}"
            )
            page.wait_for_timeout(100)
        page.wait_for_timeout(400)  # let the last keystroke's request settle
        rule = json.loads(page.input_value("#rule-json"))
        assert set(rule) == {"and"} and len(rule["and"]) == 2
        shown = int(page.get_attribute("#live-count", "data-count") or "-1")
        api = page.request.post(server + "/v1/segments/count", data={"rule": rule}).json()
        assert shown == api["count"] > 0, (shown, api)
        shot("segment-builder")

        # Save it; its page shows the same count.
        page.fill("input[name=key]", "loyal_buyers")
        page.fill("input[name=name]", "忠诚买家")
        page.click("#save-segment")
        page.wait_for_url(server + "/segments/loyal_buyers")
        assert page.text_content("#segment-count") == f"{api['count']:,}"
        shot("segment")
        page.goto(server + "/segments")
        page.wait_for_selector("a.segment-link")
        shot("segments")

        # Tiers: the pyramid and the movement matrix.
        page.goto(server + "/tiers")
        page.wait_for_selector("[data-chart=pyramid] svg")
        assert page.locator("table.matrix td.heat").count() > 0
        page.wait_for_timeout(800)  # the chart's animation
        shot("tiers")

        # Tablet width: the builder stacks, nothing overflows sideways.
        page.set_viewport_size({"width": 820, "height": 1180})
        for path in ("/segments/new", "/tags", "/tiers"):
            page.goto(server + path)
            page.wait_for_selector("main#content")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{path} is {overflow}px wider than a tablet"
        page.goto(server + "/segments/new")
        page.click(f"{root} button[data-add=tag]")
        page.click(f"{root} button[data-add=group]")
        page.click("#builder .group .group button[data-add=event]")
        page.wait_for_selector("#live-count")
        shot("segment-builder-tablet")
        browser.close()

    assert not problems, "\n".join(problems)
