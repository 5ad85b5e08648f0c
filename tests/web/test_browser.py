"""The console in a real browser: Debian's Chromium, headless, driven by Playwright.

Signs in, visits every page, filters the overview, searches and opens a profile, switches
language and tablet width; fails on any console error and on any request to another host.
Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from siyu.api import create_app
from siyu.core.config import Settings
from tests.web.conftest import admin_password

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} not found: install it with `make system-deps` "
        "(apt-get install chromium fonts-wqy-microhei)",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(brand: Settings) -> Iterator[str]:
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(
        create_app(brand), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)


def test_console_in_chromium(server: str, brand: Settings) -> None:
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

        def until_url(part: str) -> None:
            """Wait for the address to contain ``part`` (HTMX pushes it without a load)."""
            deadline = time.monotonic() + 15
            while part not in page.url:
                assert time.monotonic() < deadline, f"{part!r} never appeared in {page.url}"
                page.wait_for_timeout(50)

        def shot(name: str) -> None:
            page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)

        # Sign in.
        page.goto(server + "/")
        assert page.url.endswith("/login")
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        shot("login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "wrong-password")
        page.click("button[type=submit]")
        page.wait_for_selector(".notice.error")
        # The refused sign-in answers 401, which Chromium reports as a failed resource.
        problems[:] = [p for p in problems if "status of 401" not in p]
        page.fill("input[name=password]", admin_password(brand))
        page.click("button[type=submit]")
        page.wait_for_url(server + "/")

        # Overview: cards, sparklines and the three charts drawn by ECharts.
        page.wait_for_selector(".card.metric")
        for kind in ("bar", "pyramid", "pie"):
            page.wait_for_selector(f"[data-chart={kind}] svg")
        assert page.locator(".card.metric").count() >= 10
        assert "累计人数" in page.content()
        shot("overview")

        # Filters reload the panels through HTMX, without a page load.
        page.evaluate("window.__same_page = true")
        page.check("input[name=days][value='7']")
        until_url("days=7")
        page.wait_for_selector("[data-chart=bar] svg")
        assert page.evaluate("window.__same_page") is True
        page.select_option("select[name=channel]", "miniprogram")
        until_url("channel=miniprogram")
        page.wait_for_selector(".card.metric")
        shot("overview-filtered")

        # People: search by name, open a profile.
        page.click("nav a[href='/people']")
        page.wait_for_selector("table.list a.person-link")
        shot("people")
        names = page.locator("table.list a.person-link").all_inner_texts()
        name = next(n for n in names if not n.startswith(("(", "（")))  # not "(no name)"
        page.fill("input[name=q]", name[:2])
        page.click("form.search button")
        until_url("q=")
        page.wait_for_selector("table.list a.person-link")
        page.locator("table.list a.person-link").first.click()
        page.wait_for_selector("#h-timeline")
        assert page.locator("ol.timeline li").count() >= 1
        shot("profile")
        page.select_option("#timeline select[name=name]", index=1)
        page.wait_for_selector("#timeline ol.timeline li, #timeline .notice.empty")
        profile_url = page.url

        # English.
        page.click(".lang-switch a[lang=en]")
        page.wait_for_url(profile_url)
        assert page.locator("html").get_attribute("lang") == "en"
        assert "Timeline" in page.content()
        shot("profile-en")
        page.goto(server + "/")
        page.wait_for_selector("[data-chart=pie] svg")
        assert "Total people" in page.content()
        shot("overview-en")

        # Tablet width: the navigation moves above the page, nothing overflows sideways.
        page.set_viewport_size({"width": 820, "height": 1180})
        page.goto(server + "/people")
        page.wait_for_selector("table.list")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page is {overflow}px wider than a tablet"
        shot("people-tablet")
        page.goto(server + "/")
        page.wait_for_selector("[data-chart=pyramid] svg")
        shot("overview-tablet")

        # Sign out.
        page.click("form[action='/logout'] button")
        page.wait_for_url(server + "/login")
        browser.close()

    assert not problems, "\n".join(problems)
    assert shutil.which(str(CHROMIUM)) or CHROMIUM.exists()
