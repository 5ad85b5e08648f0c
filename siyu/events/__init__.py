"""The event store: append Arrow batches, read Ibis tables.

DuckDB file by default; other engines subclass :class:`EventStore`.
"""

from __future__ import annotations

from siyu.core.errors import ConfigError
from siyu.core.i18n import N_
from siyu.events.base import AppendResult, EventStore, conform
from siyu.events.schema import CANONICAL_EVENTS, CHANNELS, EVENTS_SCHEMA

__all__ = [
    "CANONICAL_EVENTS",
    "CHANNELS",
    "EVENTS_SCHEMA",
    "AppendResult",
    "EventStore",
    "conform",
    "open_event_store",
]


def open_event_store(url: str, *, read_only: bool = False) -> EventStore:
    """Open the event store named by ``url`` (``SIYU_EVENTS_URL``)."""
    if url.startswith("duckdb://"):
        from siyu.events.duckdb import DuckDBEventStore

        return DuckDBEventStore(url, read_only=read_only)
    raise ConfigError(
        N_("SIYU_EVENTS_URL {url!r} names no supported event store"),
        hint=N_("Use duckdb:///path/to/events.duckdb."),
        setting="SIYU_EVENTS_URL",
        url=url,
    )
