"""Run tag refreshes requested over the API in a background thread of the server.

A refresh takes seconds to minutes; the API answers 202 at once and the run's status is
polled. One runs at a time (the embedded event store has one writer); the app waits for a
running one before it closes its stores.
"""

from __future__ import annotations

import logging
import threading

from siyu.events import EventStore
from siyu.store import Database
from siyu.tags import service
from siyu.tags.service import RefreshOptions

log = logging.getLogger(__name__)
_threads: list[threading.Thread] = []


def start(database: Database, events: EventStore, run_id: int, options: RefreshOptions) -> None:
    thread = threading.Thread(
        target=_run, args=(database, events, run_id, options), name=f"tag-refresh-{run_id}"
    )
    _threads[:] = [t for t in _threads if t.is_alive()]
    _threads.append(thread)
    thread.start()


def _run(database: Database, events: EventStore, run_id: int, options: RefreshOptions) -> None:
    try:
        with database.unit_of_work() as session:
            service.execute_refresh(
                db_session=session, events=events, run_id=run_id, options=options
            )
    except Exception as exc:
        log.exception("tag refresh %s failed", run_id)
        with database.unit_of_work() as session:
            service.record_failure(session, run_id, exc)


def wait(timeout: float | None = None) -> None:
    """Let running refreshes finish (the app calls this before closing its stores)."""
    for thread in list(_threads):
        thread.join(timeout)
