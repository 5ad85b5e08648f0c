"""Users: create, look up, authenticate. Callers own the transaction."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.errors import AuthenticationError, ConflictError
from siyu.core.i18n import N_
from siyu.privacy.models import User, UserCreate

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the user is unknown, so timing does not reveal user names."""
    return _hasher.hash("not-a-password-of-anyone")


def get_by_username(*, db_session: Session, username: str) -> User | None:
    return db_session.scalars(select(User).where(User.username == username)).one_or_none()


def create(*, db_session: Session, user_in: UserCreate) -> User:
    if get_by_username(db_session=db_session, username=user_in.username) is not None:
        raise ConflictError(N_("User {username} already exists"), username=user_in.username)
    user = User(
        username=user_in.username,
        display_name=user_in.display_name or user_in.username,
        password_hash=_hasher.hash(user_in.password),
        role=user_in.role.value,
    )
    db_session.add(user)
    db_session.flush()
    return user


def set_password(*, db_session: Session, user: User, password: str) -> None:
    user.password_hash = _hasher.hash(password)
    db_session.flush()


def authenticate(*, db_session: Session, username: str, password: str) -> User:
    """The active user with these credentials, or :class:`AuthenticationError`."""
    user = get_by_username(db_session=db_session, username=username)
    try:
        _hasher.verify(user.password_hash if user is not None else _dummy_hash(), password)
        verified = user is not None
    except (VerificationError, InvalidHashError):
        verified = False
    if user is None or not verified or not user.is_active:
        raise AuthenticationError(N_("Wrong user name or password"))
    user.last_login_at = utcnow()
    db_session.flush()
    return user
