"""Engines and units of work for the operational store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from siyu.core.config import hide_password
from siyu.core.errors import ConfigError, StoreError
from siyu.core.i18n import N_

CONNECT_TIMEOUT_S = 10


def normalize_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever spelling the user gave."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with siyu's per-dialect settings; nothing is connected yet."""
    try:
        parsed = make_url(normalize_url(url))
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        # Fail in seconds, not minutes, when the server does not answer (unless the URL sets it).
        connect_args = (
            {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT_S}
        )
        return create_engine(
            parsed, pool_pre_ping=True, pool_size=10, max_overflow=10, connect_args=connect_args
        )
    except (ArgumentError, ValueError):
        # ArgumentError: not a URL, or an unknown driver; ValueError: e.g. a port that is no number.
        raise ConfigError(
            N_("SIYU_DATABASE_URL {url!r} is not a database URL"),
            hint=N_("Use sqlite:///path/to/siyu.db or postgresql://user@host:5432/dbname."),
            setting="SIYU_DATABASE_URL",
            url=hide_password(url),
        ) from None


def _sqlite_engine(parsed: URL) -> Engine:
    database = parsed.database or ""
    if database and database != ":memory:":
        folder = Path(database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                N_(
                    "The operational database at SIYU_DATABASE_URL ({url}) cannot be used: {reason}"
                ),
                hint=N_("Point SIYU_DATABASE_URL at a file in a directory you can write to."),
                setting="SIYU_DATABASE_URL",
                url=parsed.render_as_string(hide_password=True),
                reason=f"{folder}: {exc.strerror or exc}",
            ) from None
    engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@dataclass
class Database:
    """The operational store of one siyu process: an engine and its session factory."""

    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A session whose work commits at the end of the block, or rolls back on error.

        Services only flush; the boundary (request, job, CLI command) owns the transaction.
        """
        session = self.sessions()
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            raise store_unavailable(self.engine, exc) from None
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        """Connect and run ``SELECT 1``; raise :class:`StoreError` naming the setting on failure."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except DBAPIError as exc:
            raise store_unavailable(self.engine, exc) from None

    def dispose(self) -> None:
        self.engine.dispose()


def store_unavailable(engine: Engine, exc: BaseException) -> StoreError:
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    return StoreError(
        N_("The operational database at SIYU_DATABASE_URL ({url}) cannot be used: {reason}"),
        hint=N_("Check that the server is running and the URL, user and database are right."),
        setting="SIYU_DATABASE_URL",
        url=engine.url.render_as_string(hide_password=True),
        reason=reason,
    )


def open_database(url: str) -> Database:
    engine = make_engine(url)
    return Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))
