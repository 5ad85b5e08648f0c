"""Console pages: every page of the console on the 20,000-person demo brand, once warm.

The demo brand is built by ``siyu demo`` (generation, OneID, tags, tiers) into a cached home
under ``bench/.cache/``; an admin signs in and each page is requested ten times after one
warm-up request, in process (no network). The baseline is ``GET /healthz`` in the same run: the cost of the
framework alone. Target (issue 7): every page's p95 under 300 ms.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

from fastapi.testclient import TestClient
from rich.console import Console

from bench.brand import CACHE
from bench.harness import Result, Scale, Target, phase, progress, record
from siyu.api import create_app
from siyu.core.config import load_settings
from siyu.demo.service import ADMIN_PASSWORD_FILE, run_demo

NAME = "console"
PEOPLE: dict[Scale, int] = {"small": 20_000, "full": 20_000}
TARGET_MS = 300.0
REPEAT = 20


def _home(people: int) -> Path:
    home = CACHE / f"console-demo-{people}"
    settings = load_settings(home=home)
    if not (home / ADMIN_PASSWORD_FILE).exists():
        with phase(f"build the {people:,}-person demo brand (cached in {home})"):
            run_demo(
                settings, people=people, days=365, seed=42, reset_first=False, serve=False,
                host="127.0.0.1", port=8000, console=Console(quiet=True),
            )  # fmt: skip
    return home


def _sign_in(client: TestClient, password: str) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token, "no CSRF token on the login page"
    answer = client.post(
        "/login",
        data={"username": "admin", "password": password, "csrf_token": token.group(1),
              "next": "/"},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303, answer.text


def _pages(client: TestClient) -> list[str]:
    people = client.get("/people").text
    person = re.search(r'href="(/people/p_[^"]+)"', people)
    tag = re.search(r'href="(/tags/[a-z][a-z0-9_]*)"', client.get("/tags").text)
    pages = [
        "/", "/?days=90", "/people", "/people?q=%E7%8E%8B", "/tags", "/segments",
        "/segments/new", "/tiers", "/analytics/metrics", "/analytics/retention",
        "/analytics/attribution", "/analytics/experiments", "/reports",
        "/analytics/funnels?step=product_view&step=add_to_cart&step=order_paid",
        "/analytics/paths?start_event=product_view",
    ]  # fmt: skip
    if person:
        pages += [person.group(1), person.group(1) + "/timeline"]
    if tag:
        pages.append(tag.group(1))
    return pages


def _time(client: TestClient, path: str) -> list[float]:
    client.get(path)  # warm: caches, templates
    found = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        answer = client.get(path)
        found.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, f"{path}: {answer.status_code}"
    return found


def run(scale: Scale) -> Result:
    home = _home(PEOPLE[scale])
    settings = load_settings(home=home)
    password = (home / ADMIN_PASSWORD_FILE).read_text(encoding="utf-8").strip()
    timings: dict[str, dict[str, float]] = {}
    with TestClient(create_app(settings)) as client:
        base = _time(client, "/healthz")
        _sign_in(client, password)
        for path in _pages(client):
            ms = sorted(_time(client, path))
            timings[path] = {
                "p50_ms": statistics.median(ms),
                "p95_ms": ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))],
            }
            progress(f"{path}: p50 {timings[path]['p50_ms']:.0f} ms, "
                     f"p95 {timings[path]['p95_ms']:.0f} ms")  # fmt: skip
    worst = max(t["p95_ms"] for t in timings.values())
    slowest = max(timings, key=lambda p: timings[p]["p95_ms"])
    framework = statistics.median(base)
    figures = {
        "pages": len(timings),
        "worst_p95_ms": worst,
        "slowest_page": slowest,
        "median_p50_ms": statistics.median(t["p50_ms"] for t in timings.values()),
        "framework_ms": framework,
        "per_page": timings,
    }
    return record(
        NAME,
        figures,
        scale=scale,
        ratios={"worst page p95 / framework": worst / framework if framework else 0.0},
        targets=[Target("worst page p95 ms", worst, TARGET_MS, "<")],
        headline=("pages", "worst_p95_ms", "slowest_page", "median_p50_ms"),
    )
