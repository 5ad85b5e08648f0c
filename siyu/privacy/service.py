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
from siyu.privacy.models import Role, User, UserCreate

# Roles that may see identifiers and contact details (phone numbers, emails) unmasked.
PII_ROLES = frozenset({Role.admin})
ROLE_LABELS = {
    Role.admin: N_("Administrator"),
    Role.operator: N_("Operator"),
    Role.analyst: N_("Analyst"),
    Role.auditor: N_("Auditor"),
}

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the user is unknown, so timing does not reveal user names."""
    return _hasher.hash("not-a-password-of-anyone")


def get_by_username(*, db_session: Session, username: str) -> User | None:
    return db_session.scalars(select(User).where(User.username == username)).one_or_none()


def get(*, db_session: Session, user_id: int) -> User | None:
    return db_session.get(User, user_id)


def list_users(*, db_session: Session) -> list[User]:
    """Every user, by user name."""
    return list(db_session.scalars(select(User).order_by(User.username)))


def may_see_pii(role: str) -> bool:
    """Whether ``role`` may see phone numbers, emails and other identifiers unmasked."""
    return role in PII_ROLES


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
