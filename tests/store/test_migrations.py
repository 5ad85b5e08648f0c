"""Migrations take an empty database to head on SQLite and PostgreSQL and agree with the models."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, text

from siyu.core.errors import MigrationRequiredError
from siyu.store import Database
from siyu.store.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    pending_changes,
    require_current,
    upgrade,
)
from siyu.store.registry import load_metadata


def _tables(database: Database) -> set[str]:
    return set(inspect(database.engine).get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_reaches_head_and_matches_models(empty_database: Database) -> None:
    assert current_revision(empty_database) is None

    reached = upgrade(empty_database)

    assert reached == head_revision(empty_database) == "0002,0003,0004,0005,0006,0007,0008,0009"
    assert _tables(empty_database) == set(load_metadata().tables)
    assert pending_changes(empty_database) == []
    require_current(empty_database)


def test_upgrade_is_idempotent(database: Database) -> None:
    before = _tables(database)

    assert upgrade(database) == head_revision(database)
    assert upgrade(database) == head_revision(database)

    assert _tables(database) == before
    assert pending_changes(database) == []


def test_require_current_refuses_an_empty_database(empty_database: Database) -> None:
    with pytest.raises(MigrationRequiredError) as caught:
        require_current(empty_database)

    error = caught.value
    assert error.context["current"] == "empty"
    assert error.context["head"] == "0002,0003,0004,0005,0006,0007,0008,0009"
    assert error.context["setting"] == "SIYU_DATABASE_URL"
    assert "siyu db upgrade" in (error.render_hint("en") or "")
    assert error.status == 503


def test_downgrade_to_base_and_back(database: Database) -> None:
    config = alembic_config(database)

    command.downgrade(config, "base")
    assert current_revision(database) is None
    assert _tables(database) == set()
    with pytest.raises(MigrationRequiredError):
        require_current(database)

    command.upgrade(config, "heads")
    assert current_revision(database) == head_revision(database)
    assert pending_changes(database) == []


def test_pending_changes_notices_a_table_the_migrations_lack(database: Database) -> None:
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE stray_table (id INTEGER PRIMARY KEY)"))

    changes = pending_changes(database)

    assert [change[0] for change in changes] == ["remove_table"]
    assert changes[0][1].name == "stray_table"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:
    from siyu.store import open_database

    database = open_database(f"sqlite:///{tmp_path / 'nested' / 'siyu.db'}")
    try:
        with database.engine.connect() as connection:
            journal_mode = connection.execute(text("PRAGMA journal_mode")).scalar_one()
            foreign_keys = connection.execute(text("PRAGMA foreign_keys")).scalar_one()
            busy_timeout = connection.execute(text("PRAGMA busy_timeout")).scalar_one()
    finally:
        database.dispose()

    assert journal_mode == "wal"
    assert foreign_keys == 1
    assert busy_timeout == 10000
    assert (tmp_path / "nested" / "siyu.db").exists()
