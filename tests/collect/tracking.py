"""Fixtures and helpers for the tracking API tests: a migrated home, a source, a client."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from siyu.api import create_app
from siyu.collect import service as sources
from siyu.collect.models import SourceCreate
from siyu.core.config import Settings, load_settings
from siyu.events import open_event_store
from siyu.store import open_database
from siyu.store.migrate import upgrade

PROBLEM = "application/problem+json"


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@dataclass
class World:
    settings: Settings
    source_id: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return basic(self.key)


def make_world(
    home: Path, database_url: str | None = None, user_id_type: str = "member_no"
) -> World:
    settings = load_settings(home=home, database_url=database_url)
    database = open_database(settings.resolved_database_url)
    try:
        upgrade(database)
        with database.unit_of_work() as db_session:
            source, key = sources.create(
                db_session=db_session,
                source_in=SourceCreate(name="商城", user_id_type=user_id_type),
            )
            source_id = source.id
    finally:
        database.dispose()
    return World(settings=settings, source_id=source_id, key=key)


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> World:
    """A home on SQLite or PostgreSQL with one source (userId = member_no)."""
    return make_world(tmp_path, database_url)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.settings), raise_server_exceptions=False) as test_client:
        yield test_client


def stored(client: TestClient) -> list[dict[str, Any]]:
    """Every stored event, ordered by event_id, as plain dicts."""
    events = client.app.state.context.events  # type: ignore[attr-defined]
    table = events.table().order_by("event_id").to_pyarrow()
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def stored_in(settings: Settings) -> list[dict[str, Any]]:
    with open_event_store(settings.resolved_events_url, read_only=True) as events:
        rows: list[dict[str, Any]] = events.table().order_by("event_id").to_pyarrow().to_pylist()
    return rows


def dead_letters(settings: Settings) -> list[Any]:
    from siyu.collect import deadletters

    database = open_database(settings.resolved_database_url)
    try:
        with database.unit_of_work() as db_session:
            return deadletters.list_all(db_session=db_session, limit=10_000)
    finally:
        database.dispose()
