"""Shared fixtures: clean settings per test, and real SQLite/PostgreSQL databases.

PostgreSQL tests use ``SIYU_TEST_POSTGRES_URL`` or a server on 127.0.0.1:5432. Each test
session creates its own database (``siyu_test_<random>``, dropped at the end) and each test
gets a fresh schema in it, so runs and tests never see each other's tables.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher
from hypothesis import settings as hypothesis_settings
from psycopg import sql
from sqlalchemy.engine import make_url

from siyu.core import i18n
from siyu.core.config import Settings, get_settings, load_settings
from siyu.privacy import service as user_service
from siyu.store import Database, open_database
from siyu.store.migrate import upgrade

# Timing belongs in bench/: a loaded CI machine must not fail a property test on its clock.
hypothesis_settings.register_profile("siyu", deadline=None)
hypothesis_settings.load_profile("siyu")

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_ENV = "SIYU_TEST_POSTGRES_URL"
DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without the developer's SIYU_* variables and with fresh cached settings."""
    for name in list(os.environ):
        if name.startswith("SIYU_") and name != POSTGRES_ENV:
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    i18n.set_default_locale(i18n.DEFAULT_LOCALE)
    yield
    get_settings.cache_clear()
    i18n.set_default_locale(i18n.DEFAULT_LOCALE)


@pytest.fixture(autouse=True)
def _fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with its cheapest cost: the same code path, milliseconds instead of ~100 ms a hash."""
    monkeypatch.setattr(
        user_service, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path)


# -- PostgreSQL ------------------------------------------------------------------------------


def _libpq_url(url: str) -> str:
    """A URL psycopg accepts (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """A PostgreSQL server that answers, or a visible skip."""
    url = os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES_URL
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        psycopg.connect(_libpq_url(url), connect_timeout=2).close()
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        pytest.skip(f"PostgreSQL not reachable at {shown} ({reason}): set {POSTGRES_ENV}")
    return url


@pytest.fixture(scope="session")
def pg_session_url(pg_server_url: str) -> Iterator[str]:
    """A database of this test session's own, dropped at its end."""
    name = f"siyu_test_{secrets.token_hex(6)}"
    admin = _libpq_url(pg_server_url)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def pg_url(pg_session_url: str) -> Iterator[str]:
    """A URL whose connections see only a fresh, empty schema of their own."""
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_session_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    url = make_url(pg_session_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(pg_session_url, autocommit=True) as connection:
            connection.execute("SET lock_timeout = '10s'")  # a leaked connection fails, not hangs
            connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


# -- operational store on both dialects ------------------------------------------------------


@pytest.fixture(params=DIALECTS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'siyu.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def empty_database(database_url: str) -> Iterator[Database]:
    """An operational database with no tables yet."""
    database = open_database(database_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def database(empty_database: Database) -> Database:
    """An operational database migrated to head."""
    upgrade(empty_database)
    return empty_database
