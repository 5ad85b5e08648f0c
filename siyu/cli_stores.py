"""What CLI commands share: the stores, opened from settings and closed after; reading files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session

from siyu.core.config import Settings
from siyu.core.errors import InvalidInputError
from siyu.core.i18n import N_
from siyu.events import EventStore, open_event_store


@contextmanager
def open_stores() -> Iterator[tuple[Settings, Session, EventStore]]:
    """Settings, a database session (committed on success) and the event store."""
    from siyu.cli import _settings
    from siyu.store import open_database
    from siyu.store.migrate import require_current

    settings = _settings()
    database = open_database(settings.resolved_database_url)
    try:
        require_current(database)
        with (
            open_event_store(settings.resolved_events_url) as events,
            database.unit_of_work() as session,
        ):
            yield settings, session, events
    finally:
        database.dispose()


def read_text_file(file: Path) -> str:
    """A UTF-8 file's text, or a clear error naming it."""
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            N_("Cannot read {path}: {reason}"), path=str(file), reason=str(exc)
        ) from None
