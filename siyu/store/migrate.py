"""Alembic, driven from code: upgrade, current revision, and the models-vs-migrations check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError

from siyu.core.errors import MigrationRequiredError
from siyu.core.i18n import N_
from siyu.store.engine import Database, store_unavailable
from siyu.store.registry import load_metadata

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = database.engine
    return config


def _label(revisions: tuple[str, ...] | list[str]) -> str | None:
    """Revisions as one label; domains may branch from a common revision, so there can be
    several heads (``0002_collect,0003_identity``)."""
    return ",".join(sorted(revisions)) or None


def head_revision(database: Database) -> str | None:
    return _label(ScriptDirectory.from_config(alembic_config(database)).get_heads())


def current_revision(database: Database) -> str | None:
    try:
        with database.engine.connect() as connection:
            return _label(MigrationContext.configure(connection).get_current_heads())
    except DBAPIError as exc:
        raise store_unavailable(database.engine, exc) from None


def upgrade(database: Database, revision: str = "heads") -> str | None:
    """Bring the schema to ``revision``; return the revision now current."""
    try:
        command.upgrade(alembic_config(database), revision)
    except DBAPIError as exc:
        raise store_unavailable(database.engine, exc) from None
    return current_revision(database)


def pending_changes(database: Database) -> list[Any]:
    """What autogenerate would still write: empty when models and migrations agree."""
    metadata = load_metadata()
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def require_current(database: Database) -> None:
    """Raise unless the schema is at head (used by readiness checks and commands)."""
    current, head = current_revision(database), head_revision(database)
    if current != head:
        raise MigrationRequiredError(
            N_("The operational database is at revision {current}, not {head}"),
            hint=N_("Run `siyu db upgrade`."),
            setting="SIYU_DATABASE_URL",
            current=current or "empty",
            head=head,
        )
