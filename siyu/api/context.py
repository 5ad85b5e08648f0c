"""What one running app holds: settings and both stores, opened once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from siyu.core.config import Settings, ensure_home, secret_key
from siyu.core.errors import SiyuError
from siyu.events import EventStore, open_event_store
from siyu.store import Database, open_database


@dataclass
class AppContext:
    settings: Settings
    database: Database
    events: EventStore | None
    # Why the event store could not be opened; /readyz reports it instead of crashing start-up.
    events_error: SiyuError | None = field(default=None)

    @classmethod
    def open(cls, settings: Settings, *, events: EventStore | None = None) -> AppContext:
        ensure_home(settings)
        secret_key(settings)
        database = open_database(settings.resolved_database_url)
        if events is not None:
            return cls(settings=settings, database=database, events=events)
        try:
            return cls(settings, database, open_event_store(settings.resolved_events_url))
        except SiyuError as exc:
            return cls(settings, database, None, exc)

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
        self.database.dispose()
