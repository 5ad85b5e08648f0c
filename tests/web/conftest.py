"""A small demo brand built once per test session (a few hundred people, identities resolved,
tags refreshed, tiers evaluated), copied into each test's home, and console helpers."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from siyu.api import create_app
from siyu.core.config import Settings, load_settings, secret_key
from siyu.demo.generator import DemoSpec
from siyu.demo.service import ensure_admin, generate_into_stores
from siyu.events import open_event_store
from siyu.identity import service as identity
from siyu.privacy import service as users
from siyu.privacy.models import Role, UserCreate
from siyu.segments import tiers
from siyu.store import open_database
from siyu.store.migrate import upgrade
from siyu.tags import service as tags

SPEC = DemoSpec(people=300, days=60, seed=11, end_date=date(2026, 5, 31))
PASSWORD = "operator-secret-1"


@pytest.fixture(scope="session")
def brand_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SIYU_HOME of a computed demo brand with its admin; never changed by tests (copy it)."""
    home = tmp_path_factory.mktemp("brand") / "home"
    settings = load_settings(home=home)
    generate_into_stores(settings, SPEC)
    database = open_database(settings.resolved_database_url)
    try:
        with open_event_store(settings.resolved_events_url) as events:
            with database.unit_of_work() as session:
                identity.resolve(
                    db_session=session,
                    events=events,
                    hash_key=identity.derive_hash_key(secret_key(settings)),
                )
            as_of = datetime.combine(SPEC.end_date + timedelta(days=1), time(0), settings.tz)
            with database.unit_of_work() as session:
                run = tags.refresh(
                    db_session=session,
                    events=events,
                    options=tags.RefreshOptions(tz=settings.tz, as_of=as_of),
                )
            tiers.evaluate(
                events, tiers.load_scheme(settings.home_dir), tz=settings.tz, as_of=run.as_of
            )
        ensure_admin(settings, database)
        with database.unit_of_work() as session:
            users.create(
                db_session=session,
                user_in=UserCreate(username="olivia", password=PASSWORD, role=Role.operator),
            )
    finally:
        database.dispose()
    return home


@pytest.fixture
def brand(brand_home: Path, tmp_path: Path) -> Settings:
    """Settings over a private copy of the demo brand."""
    home = tmp_path / "home"
    shutil.copytree(brand_home, home)
    return load_settings(home=home)


@pytest.fixture
def empty(settings: Settings) -> Settings:
    """A migrated home with no events, and an admin."""
    database = open_database(settings.resolved_database_url)
    try:
        upgrade(database)
        ensure_admin(settings, database)
    finally:
        database.dispose()
    return settings


def admin_password(settings: Settings) -> str:
    return (settings.home_dir / "admin-password").read_text().strip()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str, next_url: str = "/") -> object:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": next_url},
        follow_redirects=False,
    )


@pytest.fixture
def console(brand: Settings) -> Iterator[Callable[[str | None], TestClient]]:
    """``console(user)``: a client over the brand, signed in as ``admin`` or ``olivia``
    (operator), or not at all (None)."""
    with TestClient(create_app(brand), raise_server_exceptions=False) as client:

        def _as(username: str | None) -> TestClient:
            if username is not None:
                password = admin_password(brand) if username == "admin" else PASSWORD
                answer = sign_in(client, username, password)
                assert answer.status_code == 303  # type: ignore[attr-defined]
            return client

        yield _as
