"""Small, hand-written event stores for analysis tests (a real DuckDB file each)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from siyu.analytics.common import RESULTS
from siyu.api import create_app
from siyu.core.config import Settings
from siyu.events import EventStore, open_event_store
from siyu.events.schema import EVENTS_SCHEMA
from siyu.identity.service import IDENTITY_MAP_TABLE
from siyu.store import open_database
from siyu.store.migrate import upgrade

SHANGHAI = ZoneInfo("Asia/Shanghai")
Rows = list[Mapping[str, Any]]
_IDS = itertools.count()


def at(text: str) -> datetime:
    """A Shanghai wall-clock time ``YYYY-MM-DD HH:MM[:SS]`` as a UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(UTC)


def event_table(rows: Rows) -> pa.Table:
    """Rows (``user``, ``name``, ``ts`` as Shanghai text or datetime, any event column,
    ``properties`` as a dict) as an events table; event ids are unique in the test run."""
    columns: dict[str, list[Any]] = {field.name: [] for field in EVENTS_SCHEMA}
    for row in rows:
        values = dict(row)
        user = values.pop("user", None)
        ts = values.pop("ts")
        values.setdefault("event_id", f"e{next(_IDS):08d}")
        values["user_id"] = values.get("user_id", f"member_no:{user}" if user else None)
        values["ts"] = at(ts) if isinstance(ts, str) else ts
        values.setdefault("received_at", values["ts"])
        values.setdefault("channel", "web")
        if isinstance(values.get("properties"), dict):
            values["properties"] = json.dumps(values["properties"], ensure_ascii=False)
        if values.get("amount") is not None:
            values["amount"] = Decimal(str(values["amount"]))
        for name in columns:
            columns[name].append(values.get(name))
    return pa.table(columns, schema=EVENTS_SCHEMA)


def write_identity(store: EventStore, mapping: Mapping[str, str]) -> None:
    """The identity map: raw key (``member_no:u1``) → person id."""
    store.replace_table(
        IDENTITY_MAP_TABLE,
        pa.table(
            {"key": list(mapping), "person_id": list(mapping.values())},
            schema=pa.schema([("key", pa.string()), ("person_id", pa.string())]),
        ),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    RESULTS.clear()
    with open_event_store(f"duckdb:///{tmp_path / 'events.duckdb'}") as events:
        yield events


@pytest.fixture
def load(store: EventStore) -> Callable[..., EventStore]:
    """``load(rows, identity=None)``: append the rows and write the identity map (by default
    each ``member_no:X`` user is person ``X``)."""

    def _load(rows: Rows, identity: Mapping[str, str] | None = None) -> EventStore:
        table = event_table(rows)
        store.append(table)
        if identity is None:
            users = {u for u in table.column("user_id").to_pylist() if u}
            identity = {u: u.split(":", 1)[1] for u in users if u.startswith("member_no:")}
        write_identity(store, identity)
        return store

    return _load


@pytest.fixture
def client(settings: Settings, store: EventStore) -> Iterator[TestClient]:
    """The API over ``store`` with a migrated SQLite database in the test's home."""
    database = open_database(settings.resolved_database_url)
    upgrade(database)
    database.dispose()
    with TestClient(create_app(settings, events=store)) as test_client:
        yield test_client


@pytest.fixture
def cli_home(settings: Settings) -> Callable[..., Any]:
    """``cli_home(rows, identity=None)``: a SIYU_HOME whose database is migrated and whose
    event store holds the rows; returns a function running ``siyu ARGS…`` there."""

    def _prepare(rows: Rows, identity: Mapping[str, str] | None = None) -> Callable[..., Any]:
        database = open_database(settings.resolved_database_url)
        upgrade(database)
        database.dispose()
        with open_event_store(settings.resolved_events_url) as events:
            table = event_table(rows)
            if rows:
                events.append(table)
            if identity is None:
                users = {u for u in table.column("user_id").to_pylist() if u}
                identity = {u: u.split(":", 1)[1] for u in users}
            write_identity(events, identity)

        def run(*args: str) -> Any:
            from siyu.cli import app

            return CliRunner().invoke(app, list(args), env={"SIYU_HOME": str(settings.home)})

        return run

    return _prepare
