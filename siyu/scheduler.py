"""What runs by itself in ``siyu serve``: tags by their cadence, then tiers, then segments,
then (once a day) the anomaly alert rules over the day before, then (from Monday 06:00
local) last week's report, built once and mailed to ``SIYU_REPORT_SUBSCRIBERS``.

Each tag says how fresh it must be: ``weekly`` (the default), ``daily`` (a new local day), or
``realtime`` (recomputed incrementally, for the people with new events, at every tick). Dynamic
segments are re-evaluated ``hourly`` or ``daily``. One tick does what is due and returns a
summary; the server runs a tick every ``SIYU_SCHEDULER_INTERVAL`` seconds in a thread.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.analytics.alerts import service as alerts
from siyu.analytics.report import service as reports
from siyu.core.clock import utcnow
from siyu.core.config import Settings
from siyu.core.errors import SiyuError
from siyu.events import EventStore
from siyu.segments import service as segments
from siyu.segments import tiers
from siyu.segments.models import Segment
from siyu.store import Database
from siyu.tags import service as tags
from siyu.tags.definitions import Cadence
from siyu.tags.models import TagDefinitionRow

log = logging.getLogger(__name__)


def due_tags(db_session: Session, now: datetime, settings: Settings) -> tuple[list[str], list[str]]:
    """(tags due for a full refresh, real-time tags) at ``now``."""
    tags.ensure_builtin(db_session)
    today = now.astimezone(settings.tz).date()
    full, realtime = [], []
    rows = db_session.scalars(select(TagDefinitionRow).where(TagDefinitionRow.status == "active"))
    for row in rows:
        last = row.refreshed_at
        if row.cadence == Cadence.REALTIME:
            realtime.append(row.key)
            stale = last is None or last.astimezone(settings.tz).date() < today
        elif row.cadence == Cadence.DAILY:
            stale = last is None or last.astimezone(settings.tz).date() < today
        else:
            stale = last is None or now - last >= timedelta(days=7)
        if stale:
            full.append(row.key)
    return sorted(full), sorted(set(realtime) - set(full))


def due_segments(db_session: Session, now: datetime, settings: Settings) -> list[str]:
    today = now.astimezone(settings.tz).date()
    due = []
    for row in db_session.scalars(
        select(Segment).where(Segment.status == "active", Segment.kind == "dynamic")
    ):
        last = row.evaluated_at
        if row.schedule == "hourly":
            stale = last is None or now - last >= timedelta(hours=1)
        elif row.schedule == "daily":
            stale = last is None or last.astimezone(settings.tz).date() < today
        else:
            stale = False
        if stale:
            due.append(row.key)
    return due


def tick(
    database: Database, events: EventStore, settings: Settings, now: datetime | None = None
) -> dict[str, Any]:
    """Do what is due now; return what was done."""
    moment = now or utcnow()
    done: dict[str, Any] = {"at": moment.isoformat(), "tags": None, "tiers": None, "segments": []}
    with database.unit_of_work() as session:
        full, realtime = due_tags(session, moment, settings)
    if full or realtime:
        mode = "full" if full else "incremental"
        with database.unit_of_work() as session:
            run = tags.refresh(
                db_session=session,
                events=events,
                options=tags.RefreshOptions(
                    tz=settings.tz, as_of=moment, mode=mode, keys=full or realtime
                ),
            )
        done["tags"] = {"mode": run.mode, "tags": len(run.tags), "changes": run.changes}
        if full:
            moved = tiers.evaluate(
                events, tiers.load_scheme(settings.home), tz=settings.tz, as_of=moment
            )
            done["tiers"] = {"changes": moved.changes}
    with database.unit_of_work() as session:
        keys = due_segments(session, moment, settings)
    for key in keys:
        with database.unit_of_work() as session:
            context = segments.world(session, events, tz=settings.tz, now=moment)
            result = segments.evaluate(context, key)
        done["segments"].append({"key": key, "entered": result.entered, "exited": result.exited})
    done["alerts"] = _daily_alerts(database, events, settings, moment)
    done["report"] = _weekly_report(database, events, settings, moment)
    return done


# The local day each event store's alert rules last ran (once a day, after 01:00 local, over
# the day before).
_ALERTS_RAN: dict[str, Any] = {}
ALERTS_HOUR = 1


def _daily_alerts(
    database: Database, events: EventStore, settings: Settings, moment: datetime
) -> int | None:
    local = moment.astimezone(settings.tz)
    if local.hour < ALERTS_HOUR or _ALERTS_RAN.get(events.url) == local.date():
        return None
    with database.unit_of_work() as session:
        summary = alerts.run_rules(session, events, settings, local.date() - timedelta(days=1))
    _ALERTS_RAN[events.url] = local.date()
    return len(summary.alerts)


# The week whose report failed, per event store: not retried at every tick (the log says why).
_REPORT_FAILED: dict[str, str] = {}


def _weekly_report(
    database: Database, events: EventStore, settings: Settings, moment: datetime
) -> dict[str, Any] | None:
    week = reports.due_week(settings, moment)
    if week is None or _REPORT_FAILED.get(events.url) == week:
        return None
    try:
        with database.unit_of_work() as session:
            result = reports.run_scheduled(settings, session, events, moment)
    except SiyuError as exc:
        _REPORT_FAILED[events.url] = week
        log.warning("weekly report %s not done: %s", week, exc.render("en"))
        return {"week": week, "error": exc.code}
    return None if result is None else result.model_dump(mode="json")


class Scheduler:
    """Runs :func:`tick` every ``interval`` seconds in a daemon thread until stopped."""

    def __init__(
        self, database: Database, events: EventStore, settings: Settings, interval: float
    ) -> None:
        self.database, self.events, self.settings = database, events, settings
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="siyu-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                summary = tick(self.database, self.events, self.settings)
                log.info("scheduler tick: %s", summary)
            except Exception:
                log.exception("scheduler tick failed")
            self._stop.wait(self.interval)
