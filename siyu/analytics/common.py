"""What every analysis shares: its period in the brand's time zone, time grains, the
person-resolved events it reads, its error, safe ratios and the result cache.

Days are local days (``Settings.timezone``, Asia/Shanghai by default). A period is a range of
whole local days, both ends included; it is read as the UTC instants
``[start 00:00 local, end + 1 day 00:00 local)``. Local times inside a query are the UTC time
shifted by the zone's offset at the period's start, exact for zones without daylight saving
(all of China).
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, Field

from siyu.core.errors import InvalidInputError
from siyu.core.i18n import N_
from siyu.events import EventStore
from siyu.identity import service as identity

# A day a query may name: far enough from date.min/max that shifting it never overflows.
Day = Annotated[date, Field(ge=date(1970, 1, 1), le=date(2200, 12, 31))]
DEFAULT_DAYS = 30
MAX_PERIOD_DAYS = 3 * 366
SYSTEM_CHANNEL = "system"
T = TypeVar("T")


class AnalysisError(InvalidInputError):
    """An analysis that cannot be run as asked; ``field`` names the part at fault."""

    code = "analysis_invalid"
    title = N_("Invalid analysis")


class Grain(StrEnum):
    day = "day"
    week = "week"  # ISO weeks, starting on Monday
    month = "month"


@dataclass(frozen=True)
class Period:
    """Whole local days ``start``..``end`` (both included) in ``tz``."""

    start: date
    end: date
    tz: ZoneInfo

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def start_utc(self) -> datetime:
        return local_midnight(self.start, self.tz)

    @property
    def end_utc(self) -> datetime:
        """The first instant after the period (exclusive bound)."""
        return local_midnight(self.end + timedelta(days=1), self.tz)

    @property
    def offset(self) -> timedelta:
        return self.start_utc.astimezone(self.tz).utcoffset() or timedelta(0)

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        return Period(
            self.start - timedelta(days=self.days), self.start - timedelta(days=1), self.tz
        )

    def year_ago(self) -> Period:
        """The same calendar days one year earlier (29 February becomes the 28th)."""
        return Period(_year_before(self.start), _year_before(self.end), self.tz)

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "tz": self.tz.key}


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def _year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def done_by_people(table: ir.Table) -> ir.BooleanValue:
    """Not one of siyu's own events (tier changes, segment entries, exposures: channel
    ``system``), which are records about people, not activity."""
    return table.channel.isnull() | (table.channel != SYSTEM_CHANNEL)


def last_event_date(events: EventStore, tz: ZoneInfo) -> date | None:
    """The local date of the latest event people did (siyu's own system events aside)."""
    table = events.table()
    latest = table.filter(done_by_people(table)).ts.max()
    value = latest.execute()
    if value is None or value != value:  # NaT
        return None
    instant = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    local: date = instant.astimezone(tz).date()
    return local


def resolve_period(
    events: EventStore,
    tz: ZoneInfo,
    start: date | None = None,
    end: date | None = None,
    *,
    default_days: int = DEFAULT_DAYS,
) -> Period:
    """The period asked for; without an end, the day of the latest event (today when there are
    none), so "the last 30 days" of a store whose data stopped a week ago is not empty."""
    if end is None:
        end = last_event_date(events, tz) or datetime.now(tz).date()
        if start is not None and start > end:
            end = start + timedelta(days=default_days - 1)
    if start is None:
        start = end - timedelta(days=default_days - 1)
    if start > end:
        raise AnalysisError(
            N_("The period starts ({start}) after it ends ({end})"),
            field="from",
            start=start.isoformat(),
            end=end.isoformat(),
        )
    days = (end - start).days + 1
    if days > MAX_PERIOD_DAYS:
        raise AnalysisError(
            N_("The period is {days} days long; at most {limit} days can be analysed at once"),
            field="from",
            days=days,
            limit=MAX_PERIOD_DAYS,
        )
    return Period(start, end, tz)


_DURATION = re.compile(r"^\s*(-?\d+)\s*(m|min|h|d|w)\s*$")
_UNIT_SECONDS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_WINDOW = timedelta(days=366)


def parse_window(text: str, *, field: str = "window") -> timedelta:
    """A positive duration such as ``30m``, ``24h``, ``7d`` or ``2w`` (at most a year)."""
    match = _DURATION.match(text or "")
    if match is None:
        raise AnalysisError(
            N_("{value!r} is not a duration: write a number and a unit, like 30m, 24h, 7d or 2w"),
            field=field,
            value=text,
        )
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise AnalysisError(
            N_("The {field} must be longer than zero (got {value})"), field=field, value=text
        )
    window = timedelta(seconds=seconds)
    if window > MAX_WINDOW:
        raise AnalysisError(
            N_("The {field} is longer than a year (got {value})"), field=field, value=text
        )
    return window


def local_time(ts: ir.TimestampValue, offset: timedelta) -> ir.TimestampValue:
    """A UTC timestamp column as wall-clock time in the zone (fixed ``offset``)."""
    return ts + ibis.interval(seconds=int(offset.total_seconds()))


def bucket(day: ir.DateValue, grain: Grain) -> ir.DateValue:
    """The first day of the day/ISO week/month ``day`` falls in."""
    if grain is Grain.day:
        return day
    return day.truncate("W" if grain is Grain.week else "M")


def bucket_of(day: date, grain: Grain) -> date:
    """:func:`bucket` for one Python date (to label empty buckets the query did not return)."""
    if grain is Grain.day:
        return day
    if grain is Grain.week:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def buckets(period: Period, grain: Grain) -> list[date]:
    """Every bucket the period touches, in order."""
    found: list[date] = []
    day = period.start
    while day <= period.end:
        first = bucket_of(day, grain)
        if not found or found[-1] != first:
            found.append(first)
        day += timedelta(days=1)
    return found


def resolved_events(
    events: EventStore,
    offset: timedelta,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    names: list[str] | None = None,
    spans: list[tuple[datetime, datetime]] | None = None,
) -> ir.Table:
    """Events done by a resolved person (``person_id`` not null), optionally within
    ``[start, end)``, within any of ``spans`` and of the given names, with ``local_ts`` and
    ``local_date``. Time and name conditions apply to the events before identities are
    joined, so the engine reads only the rows it needs."""
    raw = events.table()
    early = []
    if start is not None:
        early.append(raw.ts >= start)
    if end is not None:
        early.append(raw.ts < end)
    if spans:
        early.append(ibis.or_(*[(raw.ts >= s) & (raw.ts < e) for s, e in spans]))
    if names is not None:
        early.append(raw.name.isin(names))
    table = identity.person_events(events, raw.filter(*early) if early else raw)
    filtered = table.filter(table.person_id.notnull())
    local = local_time(filtered.ts, offset)
    return filtered.mutate(local_ts=local, local_date=local.date())


def known_event_names(events: EventStore) -> set[str]:
    """Every event name stored (for "unknown event" errors that list what exists)."""
    table = events.table()
    return set(table.select("name").distinct().to_pyarrow().column("name").to_pylist())


def check_event_names(events: EventStore, names: list[str], *, field: str) -> None:
    """Refuse event names the store has never seen: a typo would give an empty analysis."""
    known = known_event_names(events)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise AnalysisError(
            N_("Unknown event {names}; stored events are: {known}"),
            field=field,
            names=", ".join(unknown),
            known=", ".join(sorted(known)[:40]) or "-",
        )


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or None when undefined (never NaN or infinity)."""
    if not denominator:
        return None
    return numerator / denominator


def change(current: float | None, before: float | None) -> float | None:
    """Relative change from ``before`` to ``current``; None when it is undefined."""
    if current is None or before is None or not before:
        return None
    return (current - before) / abs(before)


class ResultCache:
    """Analysis results by (kind, definition, store, data version); least recently used go."""

    def __init__(self, size: int = 128) -> None:
        self._size = size
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, key: str, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]  # type: ignore[no-any-return]
        value = compute()
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


RESULTS = ResultCache()


def cached(events: EventStore, kind: str, definition: Any, compute: Callable[[], T]) -> T:
    """``compute()``, or its earlier result for the same definition over the same data."""
    if isinstance(definition, BaseModel):
        definition = definition.model_dump(mode="json")
    spelled = json.dumps(definition, sort_keys=True, default=str, ensure_ascii=False)
    key = "\x1f".join((kind, events.url, events.data_version(), spelled))
    return RESULTS.get_or_compute(key, compute)
