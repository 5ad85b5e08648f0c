"""Building the demo into real stores, resetting it, and serving it."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pytest

from siyu.core.config import load_settings
from siyu.core.errors import ConflictError
from siyu.demo.generator import DemoSpec
from siyu.demo.service import (
    ADMIN_PASSWORD_FILE,
    ensure_admin,
    generate_into_stores,
    latest_dataset,
    reset,
)
from siyu.events import open_event_store
from siyu.privacy import service as users
from siyu.store import open_database

SMALL = DemoSpec(people=1_500, days=60, seed=3, end_date=date(2026, 5, 31))


def test_generate_into_stores_records_the_dataset(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    summary = generate_into_stores(settings, SMALL)
    with open_event_store(settings.resolved_events_url) as events:
        assert events.count() == summary["events"] > 5_000
        orders = events.table().filter(lambda t: t.name == "order_paid").count().execute()
        assert orders == summary["orders"]
        assert events.table("demo_people").count().execute() == SMALL.people
        assert events.table("products").count().execute() > 30
    database = open_database(settings.resolved_database_url)
    dataset = latest_dataset(database)
    assert dataset is not None
    assert (dataset.seed, dataset.people, dataset.events) == (3, 1_500, summary["events"])
    database.dispose()

    with pytest.raises(ConflictError) as refused:
        generate_into_stores(settings, SMALL)
    assert "siyu demo --reset" in (refused.value.render_hint() or "")


def test_reset_moves_the_stores_aside(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    first = generate_into_stores(settings, SMALL)
    trash = reset(settings)
    assert trash is not None and (trash / "events.duckdb").exists() and (trash / "siyu.db").exists()
    assert not (settings.home_dir / "events.duckdb").exists()
    again = generate_into_stores(settings, SMALL)
    assert again["events"] == first["events"]
    # A second reset replaces the previous trash: one undo step is kept.
    second_trash = reset(settings)
    assert second_trash is not None and not trash.exists() and second_trash.exists()


def test_admin_is_created_once_with_a_private_password(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    database = open_database(settings.resolved_database_url)
    from siyu.store.migrate import upgrade

    upgrade(database)
    username, password = ensure_admin(settings, database)
    assert username == "admin" and password and len(password) >= 12
    path = settings.home_dir / ADMIN_PASSWORD_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_admin(settings, database) == (username, password)
    with database.unit_of_work() as session:
        user = users.authenticate(db_session=session, username=username, password=password)
        assert user.role == "admin"
    database.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_siyu_demo_serves_a_ready_product(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "SIYU_HOME": str(tmp_path / "home"), "SIYU_LANG": "en"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "siyu",
            "demo",
            "--people",
            "1000",
            "--days",
            "60",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert ready is not None and ready.status_code == 200, ready.text if ready else "no answer"
        assert ready.json()["checks"]["events"]["status"] == "ok"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in output
    password = (tmp_path / "home" / ADMIN_PASSWORD_FILE).read_text().strip()
    assert f"admin / {password}" in output
