"""Console users on SQLite and PostgreSQL: create, authenticate, refuse."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from siyu.core.clock import frozen
from siyu.core.errors import AuthenticationError, ConflictError
from siyu.privacy import service as users
from siyu.privacy.models import Role, UserCreate, UserRead
from siyu.store import Database

PASSWORD = "correct horse battery"


def _create(database: Database, username: str = "zhang.san", **extra: object) -> None:
    with database.unit_of_work() as session:
        users.create(
            db_session=session, user_in=UserCreate(username=username, password=PASSWORD, **extra)
        )


def test_create_stores_a_hash_not_the_password(database: Database) -> None:
    _create(database, display_name="张三", role=Role.analyst)

    with database.unit_of_work() as session:
        user = users.get_by_username(db_session=session, username="zhang.san")
        assert user is not None
        read = UserRead.model_validate(user)

    assert read.display_name == "张三"
    assert read.role is Role.analyst
    assert read.is_active is True
    assert read.last_login_at is None
    assert PASSWORD not in user.password_hash
    assert user.password_hash.startswith("$argon2")


def test_authenticate_with_the_right_password(database: Database) -> None:
    _create(database)
    at = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)

    with frozen(at), database.unit_of_work() as session:
        user = users.authenticate(db_session=session, username="zhang.san", password=PASSWORD)
        assert user.username == "zhang.san"

    with database.unit_of_work() as session:
        stored = users.get_by_username(db_session=session, username="zhang.san")
        assert stored is not None
        assert stored.last_login_at == at


@pytest.mark.parametrize(
    ("username", "password"),
    [("zhang.san", "wrong password"), ("nobody", PASSWORD), ("zhang.san", "")],
)
def test_authenticate_refuses_wrong_credentials(
    database: Database, username: str, password: str
) -> None:
    _create(database)

    with pytest.raises(AuthenticationError) as caught, database.unit_of_work() as session:
        users.authenticate(db_session=session, username=username, password=password)

    assert caught.value.status == 401
    # The same message whether the user exists or not.
    assert caught.value.render("en") == "Wrong user name or password"
    assert caught.value.render("zh-CN") == "用户名或密码错误"


def test_duplicate_username_is_a_conflict(database: Database) -> None:
    _create(database)

    with pytest.raises(ConflictError) as caught:
        _create(database)

    assert caught.value.status == 409
    assert caught.value.context["username"] == "zhang.san"
    assert "zhang.san" in caught.value.render("en")


def test_inactive_user_cannot_log_in(database: Database) -> None:
    _create(database)
    with database.unit_of_work() as session:
        user = users.get_by_username(db_session=session, username="zhang.san")
        assert user is not None
        user.is_active = False

    with pytest.raises(AuthenticationError), database.unit_of_work() as session:
        users.authenticate(db_session=session, username="zhang.san", password=PASSWORD)


def test_set_password_replaces_the_old_one(database: Database) -> None:
    _create(database)
    with database.unit_of_work() as session:
        user = users.get_by_username(db_session=session, username="zhang.san")
        assert user is not None
        users.set_password(db_session=session, user=user, password="a new password")

    with pytest.raises(AuthenticationError), database.unit_of_work() as session:
        users.authenticate(db_session=session, username="zhang.san", password=PASSWORD)
    with database.unit_of_work() as session:
        assert users.authenticate(
            db_session=session, username="zhang.san", password="a new password"
        )


@pytest.mark.parametrize(
    "fields",
    [
        {"username": "x", "password": PASSWORD},
        {"username": "has space", "password": PASSWORD},
        {"username": "ok_name", "password": "short"},
    ],
)
def test_user_create_validates_its_input(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        UserCreate(**fields)
