"""The hand-written migration 0005 creates exactly what the model declares."""

from __future__ import annotations

from sqlalchemy import inspect

from siyu.store import Database
from siyu.store.migrate import pending_changes


def test_import_job_table_matches_the_model(database: Database) -> None:
    assert "import_job" in inspect(database.engine).get_table_names()
    assert pending_changes(database) == []
