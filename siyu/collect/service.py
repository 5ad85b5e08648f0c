"""Sources: create, list, rotate and revoke write keys; authenticate a request by its key.

Only the SHA-256 of a write key is stored; the key itself is returned once, when a source is
created or its key rotated. Callers own the transaction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.collect.errors import InvalidSourceError, SourceNotFoundError, WriteKeyError
from siyu.collect.messages import is_identifier_type
from siyu.collect.models import USER_ID_TYPES, Source, SourceCreate, SourceStatus
from siyu.core.clock import utcnow
from siyu.core.i18n import N_
from siyu.core.ids import new_id, new_token

KEY_BYTES = 24  # 32 URL-safe characters


def hash_key(write_key: str) -> str:
    return hashlib.sha256(write_key.encode("utf-8")).hexdigest()


def _new_key() -> tuple[str, str, str]:
    key = new_token(KEY_BYTES)
    return key, hash_key(key), key[:8]


def get(*, db_session: Session, source_id: str) -> Source | None:
    return db_session.get(Source, source_id)


def get_or_raise(*, db_session: Session, source_id: str) -> Source:
    source = get(db_session=db_session, source_id=source_id)
    if source is None:
        raise SourceNotFoundError(N_("No source {source_id}"), source_id=source_id)
    return source


def list_all(*, db_session: Session) -> list[Source]:
    return list(db_session.scalars(select(Source).order_by(Source.created_at, Source.id)))


def create(*, db_session: Session, source_in: SourceCreate) -> tuple[Source, str]:
    """A new active source and its write key (shown to the caller once)."""
    if not is_identifier_type(source_in.user_id_type):
        raise InvalidSourceError(
            N_("{user_id_type!r} is not an identifier type; use one of {choices} or custom:NAME"),
            user_id_type=source_in.user_id_type,
            choices=", ".join(USER_ID_TYPES),
        )
    key, key_hash, prefix = _new_key()
    source = Source(
        id=new_id("src"),
        name=source_in.name,
        kind=source_in.kind,
        write_key_hash=key_hash,
        key_prefix=prefix,
        user_id_type=source_in.user_id_type,
        status=SourceStatus.active.value,
        created_at=utcnow(),
    )
    db_session.add(source)
    db_session.flush()
    return source, key


def rotate(*, db_session: Session, source_id: str) -> tuple[Source, str]:
    """A new write key for the source; the old one stops working at commit."""
    source = get_or_raise(db_session=db_session, source_id=source_id)
    if source.status != SourceStatus.active.value:
        raise InvalidSourceError(N_("Source {source_id} is revoked"), source_id=source_id)
    key, source.write_key_hash, source.key_prefix = _new_key()
    source.rotated_at = utcnow()
    db_session.flush()
    return source, key


def revoke(*, db_session: Session, source_id: str) -> Source:
    """Stop the source's key from working (for good; create a new source to resume)."""
    source = get_or_raise(db_session=db_session, source_id=source_id)
    if source.status != SourceStatus.revoked.value:
        source.status = SourceStatus.revoked.value
        source.revoked_at = utcnow()
        db_session.flush()
    return source


def write_key_of(authorization: str | None) -> str | None:
    """The write key in an ``Authorization: Basic`` header (user name; password empty)."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    key = decoded.split(":", 1)[0]
    return key or None


def authenticate(
    *, db_session: Session, authorization: str | None, write_key: str | None = None
) -> Source:
    """The active source whose write key the header carries (else ``write_key``, a body's
    ``writeKey``), or :class:`WriteKeyError`."""
    key = write_key_of(authorization) or write_key
    if key is None:
        raise WriteKeyError(
            N_("Send the source's write key with HTTP Basic authentication"),
            hint=N_("Use the write key as the user name and an empty password."),
        )
    source = db_session.scalars(
        select(Source).where(Source.write_key_hash == hash_key(key))
    ).one_or_none()
    if source is None or source.status != SourceStatus.active.value:
        raise WriteKeyError(
            N_("The write key is unknown, rotated or revoked"),
            hint=N_("Check the key with `siyu sources list`, or create a new one."),
        )
    return source
