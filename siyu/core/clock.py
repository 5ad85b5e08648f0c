"""The one source of "now", so tests can pin time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

_frozen: ContextVar[datetime | None] = ContextVar("siyu_frozen_now", default=None)


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (or the pinned one inside :func:`frozen`)."""
    pinned = _frozen.get()
    return pinned if pinned is not None else datetime.now(UTC)


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """Pin :func:`utcnow` to ``at`` for the enclosed block."""
    if at.tzinfo is None:
        raise ValueError("frozen() needs an aware datetime")
    token = _frozen.set(at.astimezone(UTC))
    try:
        yield
    finally:
        _frozen.reset(token)
