"""One weekly report of the demo brand, computed once per session (its figures take seconds):
the console's report tests hand it to the background build instead of computing it again."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from siyu.analytics.report import weekly
from siyu.analytics.report.models import WeeklyReport
from siyu.core.config import load_settings
from siyu.events import open_event_store
from siyu.store import open_database


@pytest.fixture(scope="session")
def weekly_report(brand_home: Path, tmp_path_factory: pytest.TempPathFactory) -> WeeklyReport:
    home = tmp_path_factory.mktemp("report") / "home"
    shutil.copytree(brand_home, home)
    settings = load_settings(home=home)
    database = open_database(settings.resolved_database_url)
    try:
        with (
            open_event_store(settings.resolved_events_url) as events,
            database.unit_of_work() as session,
        ):
            return weekly.build(events, session, tz=settings.tz)
    finally:
        database.dispose()


@pytest.fixture
def quick_report_build(
    weekly_report: WeeklyReport, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., WeeklyReport]:
    """The console's build job gets the session's report figures; it still runs in its
    thread, reports progress, and renders and stores the HTML, PDF and JSON."""

    def build(*_args: Any, **_kwargs: Any) -> WeeklyReport:
        return weekly_report

    monkeypatch.setattr("siyu.web.report_jobs.weekly.build", build)
    return build
