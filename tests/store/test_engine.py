"""Units of work, and clear errors when the database cannot be reached or named."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from siyu.core.errors import ConfigError, StoreError
from siyu.privacy import service as users
from siyu.privacy.models import User, UserCreate
from siyu.store import Database, open_database
from siyu.store.engine import normalize_url


def _user_count(database: Database) -> int:
    with database.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(User)) or 0


def test_unit_of_work_commits_on_success(database: Database) -> None:
    with database.unit_of_work() as session:
        users.create(
            db_session=session, user_in=UserCreate(username="li.lei", password="s3cret-pass")
        )

    with database.unit_of_work() as session:
        stored = users.get_by_username(db_session=session, username="li.lei")
        assert stored is not None
        assert stored.display_name == "li.lei"
        assert stored.created_at.tzinfo is not None
    assert _user_count(database) == 1


def test_unit_of_work_rolls_back_on_exception(database: Database) -> None:
    class BoomError(Exception):
        pass

    seen_inside: list[bool] = []

    def create_then_fail() -> None:
        with database.unit_of_work() as session:
            users.create(
                db_session=session,
                user_in=UserCreate(username="han.meimei", password="s3cret-pass"),
            )
            found = users.get_by_username(db_session=session, username="han.meimei")
            seen_inside.append(found is not None)
            raise BoomError

    with pytest.raises(BoomError):
        create_then_fail()

    # Flushed, so visible inside the transaction …
    assert seen_inside == [True]

    # … and gone after it.
    assert _user_count(database) == 0


def test_ping_on_a_working_database(database: Database) -> None:
    database.ping()
    assert database.dialect in {"sqlite", "postgresql"}


def test_unreachable_postgresql_names_the_setting() -> None:
    database = open_database("postgresql://nobody@127.0.0.1:1/x")
    started = time.perf_counter()
    try:
        with pytest.raises(StoreError) as caught:
            database.ping()
    finally:
        database.dispose()

    error = caught.value
    assert time.perf_counter() - started < 15
    assert "SIYU_DATABASE_URL" in error.render("en")
    assert "127.0.0.1" in error.render("en")
    assert error.context["setting"] == "SIYU_DATABASE_URL"
    assert error.render_hint("en")
    assert error.status == 503
    assert error.retryable is True


def test_unit_of_work_on_an_unreachable_database_raises_store_error() -> None:
    database = open_database("postgresql://nobody@127.0.0.1:1/x")
    try:
        with (
            pytest.raises(StoreError, match="SIYU_DATABASE_URL"),
            database.unit_of_work() as session,
        ):
            session.scalar(select(func.count()).select_from(User))
    finally:
        database.dispose()


def test_password_is_hidden_in_store_errors() -> None:
    database = open_database("postgresql://nobody:hunter2-secret@127.0.0.1:1/x")
    try:
        with pytest.raises(StoreError) as caught:
            database.ping()
    finally:
        database.dispose()
    assert "hunter2-secret" not in caught.value.render("en")
    assert "hunter2-secret" not in str(caught.value.context)


@pytest.mark.parametrize("url", ["not a url at all", "://nothing", "postgresql://host:notaport/db"])
def test_garbage_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_database(url)
    assert caught.value.context["setting"] == "SIYU_DATABASE_URL"
    assert "SIYU_DATABASE_URL" in caught.value.render("en")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_normalize_url_uses_psycopg_3(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


def test_password_is_hidden_in_a_bad_url_error() -> None:
    with pytest.raises(ConfigError) as caught:
        open_database("postgresql://u:hunter2-secret@host:notaport/db")
    assert "hunter2-secret" not in caught.value.render("en")


def test_sqlite_file_under_a_regular_file_is_a_store_error(tmp_path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")

    with pytest.raises(StoreError) as caught:
        open_database(f"sqlite:///{blocker / 'sub' / 'siyu.db'}")

    assert "SIYU_DATABASE_URL" in caught.value.render("en")
    assert str(blocker) in caught.value.render("en")
