"""Retention by cohort and cohort LTV curves.

A person's cohort is the local day/week/month of their first occurrence *ever* of the cohort
event (or of any event), looked for before the analysis period too; only people whose first
occurrence falls inside the period form cohorts. Period ``k`` of a cohort is the ``k``-th
day/week/month after the cohort's own (period 0). A return is a return event done at or after
the person's cohort event, the cohort event itself aside. Bounded retention counts people who
returned in exactly period ``k``, unbounded ("on or after") people who returned in ``k`` or
any later period observed. Periods that end after the data's last day are incomplete: their
count and rate are None, never 0. LTV is the cumulative revenue (``order_paid`` amounts minus
``refund`` amounts) per cohort member. See ``docs/analytics-retention.md``.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from siyu.analytics.common import (
    MAX_PERIOD_DAYS,
    Day,
    Grain,
    Period,
    bucket,
    buckets,
    cached,
    check_event_names,
    done_by_people,
    last_event_date,
    local_time,
    ratio,
    resolve_period,
    resolved_events,
)
from siyu.events import EventStore

MAX_PERIODS = 60
REVENUE_EVENT = "order_paid"
REFUND_EVENT = "refund"
EVENT_NAME = r"^[A-Za-z0-9_.:$-]{1,100}$"
Breakdown = Literal["channel"]
# Days an analysis may name: far enough from date.min/max that local midnights stay instants.
_GRAIN_DAYS = {Grain.day: 1, Grain.week: 7, Grain.month: 31}
_SIZE = -1  # the period index that carries a cohort's size in the engine's answer


class CohortQuery(BaseModel):
    """Who forms the cohorts, at which grain, over how many periods."""

    model_config = ConfigDict(extra="forbid")

    cohort_event: str | None = Field(
        default=None, pattern=EVENT_NAME, description="First occurrence of this event; null: any"
    )
    grain: Grain = Grain.week
    periods: int = Field(default=12, ge=1, le=MAX_PERIODS, description="Periods after period 0")
    start: Day | None = Field(default=None, description="First local day of the cohorts")
    end: Day | None = Field(default=None, description="Last local day of the cohorts")
    segment: str | None = Field(
        default=None, max_length=63, description="Only members of this saved segment"
    )
    breakdown: Breakdown | None = Field(
        default=None, description="One cohort row per channel of the first event"
    )


class RetentionQuery(CohortQuery):
    return_event: str | None = Field(
        default=None, pattern=EVENT_NAME, description="The return event; null: any event"
    )
    unbounded: bool = Field(default=False, description="Returned in period k or later")


class LtvQuery(CohortQuery):
    pass


class RetentionCell(BaseModel):
    period: int
    start: date = Field(description="First local day of the period")
    complete: bool = Field(description="The period ended on or before the data's last day")
    count: int | None
    rate: float | None


class RetentionRow(BaseModel):
    cohort: date = Field(description="First local day of the cohort period")
    channel: str | None = None
    size: int
    periods: list[RetentionCell]


class AverageCell(BaseModel):
    period: int
    cohorts: int = Field(description="Cohorts whose period is complete")
    size: int = Field(description="Their people")
    count: int | None
    rate: float | None


class RetentionResult(BaseModel):
    period: dict[str, str]
    grain: Grain
    cohort_event: str | None
    return_event: str | None
    periods: int
    unbounded: bool
    segment: str | None
    breakdown: Breakdown | None
    data_end: date | None = Field(description="The data's last local day")
    empty: bool
    cohorts: list[RetentionRow]
    average: list[AverageCell]


class LtvCell(BaseModel):
    period: int
    start: date
    complete: bool
    revenue: float | None = Field(description="Cumulative net revenue of the cohort")
    per_member: float | None = Field(description="Cumulative net revenue per member")


class LtvRow(BaseModel):
    cohort: date
    channel: str | None = None
    size: int
    periods: list[LtvCell]


class LtvAverageCell(BaseModel):
    period: int
    cohorts: int
    size: int
    revenue: float | None
    per_member: float | None


class LtvResult(BaseModel):
    period: dict[str, str]
    grain: Grain
    cohort_event: str | None
    periods: int
    segment: str | None
    breakdown: Breakdown | None
    data_end: date | None
    empty: bool
    cohorts: list[LtvRow]
    average: list[LtvAverageCell]


# -- calendar ---------------------------------------------------------------------------------


def shift(first: date, grain: Grain, k: int) -> date:
    """The first day of the ``k``-th bucket after the bucket starting on ``first``."""
    if grain is Grain.day:
        return first + timedelta(days=k)
    if grain is Grain.week:
        return first + timedelta(weeks=k)
    months = first.year * 12 + first.month - 1 + k
    return date(months // 12, months % 12 + 1, 1)


def bucket_end(first: date, grain: Grain) -> date:
    """The last day of the bucket starting on ``first``."""
    if grain is Grain.month:
        return first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return shift(first, grain, 1) - timedelta(days=1)


def _index(day: ir.DateValue, cohort: ir.DateValue, grain: Grain) -> ir.IntegerValue:
    """How many buckets after the cohort's bucket (``cohort``, a bucket start) ``day`` is."""
    if grain is Grain.month:
        months = (day.year() - cohort.year()) * 12 + (day.month() - cohort.month())
        return months.cast("int64")
    days = bucket(day, grain).delta(cohort, unit="day")
    return days if grain is Grain.day else days // 7


# -- the engine -------------------------------------------------------------------------------


def _activity(
    events: EventStore,
    period: Period,
    name: str | None,
    **bounds: Any,
) -> ir.Table:
    """Events of ``name``, or every event people did (siyu's own system events aside)."""
    table = resolved_events(events, period.offset, names=None if name is None else [name], **bounds)
    if name is None:
        table = table.filter(done_by_people(table))
    return table


def cohort_people(
    events: EventStore, query: CohortQuery, period: Period, members: ir.Table | None
) -> ir.Table:
    """One row per cohort member: ``person_id``, ``first_ts``, ``first_id`` (the cohort
    event), ``cohort`` (its bucket) and ``cohort_channel`` (null without a breakdown)."""
    source = _activity(events, period, query.cohort_event, end=period.end_utc)
    first = ibis.struct({"ts": source.ts, "id": source.event_id})
    firsts = source.group_by("person_id").aggregate(
        first_ts=source.ts.min(),
        first_id=source.event_id.argmin(first),
        first_channel=source.channel.argmin(first),
    )
    firsts = firsts.filter(firsts.first_ts >= period.start_utc)
    if members is not None:
        firsts = firsts.semi_join(members.select("person_id"), "person_id")
    day = local_time(firsts.first_ts, period.offset).date()
    channel = firsts.first_channel if query.breakdown == "channel" else ibis.null(str)
    return firsts.select(
        "person_id",
        "first_ts",
        "first_id",
        cohort=bucket(day, query.grain),
        cohort_channel=channel,
    )


def _sizes(cohort: ir.Table) -> ir.Table:
    sizes = cohort.group_by(["cohort", "cohort_channel"]).aggregate(value=cohort.count())
    return sizes.select(
        "cohort",
        "cohort_channel",
        k=ibis.literal(_SIZE, "int64"),
        value=sizes.value.cast("float64"),
    )


def retention_table(
    events: EventStore, query: RetentionQuery, period: Period, members: ir.Table | None
) -> ir.Table:
    """Cohort sizes (``k`` = -1) and per-period return counts, as one Ibis expression with the
    columns ``cohort``, ``cohort_channel``, ``k``, ``value``. Unbounded counts come as the
    number of people whose *last* return is in period ``k`` (``k`` = N: N or later)."""
    cohort = cohort_people(events, query, period, members)
    returns = _activity(events, period, query.return_event, start=period.start_utc).select(
        "person_id", "ts", "event_id", "local_date"
    )
    joined = returns.inner_join(cohort, "person_id")
    joined = joined.filter(joined.ts >= joined.first_ts, joined.event_id != joined.first_id)
    at = joined.mutate(k=_index(joined.local_date, joined.cohort, query.grain).cast("int64"))
    if query.unbounded:
        last = at.group_by(["person_id", "cohort", "cohort_channel"]).aggregate(k=at.k.max())
        capped = last.mutate(k=ibis.least(last.k, query.periods))
        counts = capped.group_by(["cohort", "cohort_channel", "k"]).aggregate(value=capped.count())
    else:
        hits = at.filter(at.k <= query.periods).select("person_id", "cohort", "cohort_channel", "k")
        hits = hits.distinct()
        counts = hits.group_by(["cohort", "cohort_channel", "k"]).aggregate(value=hits.count())
    counts = counts.select("cohort", "cohort_channel", "k", value=counts.value.cast("float64"))
    return _sizes(cohort).union(counts)


def ltv_table(
    events: EventStore, query: CohortQuery, period: Period, members: ir.Table | None
) -> ir.Table:
    """Cohort sizes (``k`` = -1) and net revenue per period (not cumulated), columns as in
    :func:`retention_table`."""
    cohort = cohort_people(events, query, period, members)
    money = resolved_events(
        events, period.offset, start=period.start_utc, names=[REVENUE_EVENT, REFUND_EVENT]
    ).select("person_id", "ts", "name", "local_date", "amount")
    joined = money.inner_join(cohort, "person_id")
    joined = joined.filter(joined.ts >= joined.first_ts)
    amount = joined.amount.cast("float64").fill_null(0)
    signed = ibis.cases((joined.name == REFUND_EVENT, -amount.abs()), else_=amount)
    at = joined.mutate(
        k=_index(joined.local_date, joined.cohort, query.grain).cast("int64"), signed=signed
    )
    at = at.filter(at.k <= query.periods)
    revenue = at.group_by(["cohort", "cohort_channel", "k"]).aggregate(value=at.signed.sum())
    return _sizes(cohort).union(revenue)


def _collect(table: ir.Table) -> dict[tuple[date, str | None], dict[int, float]]:
    """The engine's answer as ``{(cohort, channel): {k: value}}``."""
    found: dict[tuple[date, str | None], dict[int, float]] = defaultdict(dict)
    for row in table.to_pyarrow().to_pylist():
        found[(row["cohort"], row["cohort_channel"])][int(row["k"])] = float(row["value"] or 0)
    return found


def _default_days(query: CohortQuery) -> int:
    """Enough days for the oldest cohort to have all its periods."""
    return min(MAX_PERIOD_DAYS, max(30, (query.periods + 1) * _GRAIN_DAYS[query.grain]))


def _prepare(
    events: EventStore, query: CohortQuery, tz: ZoneInfo, names: dict[str, str | None]
) -> tuple[Period, date | None]:
    for field, name in names.items():
        if name is not None:
            check_event_names(events, [name], field=field)
    period = resolve_period(events, tz, query.start, query.end, default_days=_default_days(query))
    return period, last_event_date(events, tz)


def _row_keys(
    found: dict[tuple[date, str | None], dict[int, float]], query: CohortQuery, period: Period
) -> list[tuple[date, str | None]]:
    """Every cohort bucket of the period (empty ones too), or the channels found."""
    if query.breakdown is None:
        return [(first, None) for first in buckets(period, query.grain)]
    return sorted(found, key=lambda key: (key[0], key[1] is None, key[1] or ""))


def _complete(first: date, grain: Grain, k: int, data_end: date | None) -> bool:
    return data_end is not None and bucket_end(shift(first, grain, k), grain) <= data_end


def retention(
    events: EventStore,
    query: RetentionQuery,
    *,
    tz: ZoneInfo,
    members: ir.Table | None = None,
) -> RetentionResult:
    """Retention by cohort; ``members`` (``person_id``) restricts the cohorts to a segment."""
    period, data_end = _prepare(
        events, query, tz, {"cohort_event": query.cohort_event, "return_event": query.return_event}
    )

    def compute() -> RetentionResult:
        found = _collect(retention_table(events, query, period, members))
        rows: list[RetentionRow] = []
        totals: dict[int, list[int]] = {k: [0, 0, 0] for k in range(query.periods + 1)}
        for first, channel in _row_keys(found, query, period):
            values = found.get((first, channel), {})
            size = int(values.get(_SIZE, 0))
            counts = [int(values.get(k, 0)) for k in range(query.periods + 1)]
            if query.unbounded:  # last return in k → counted in every period up to k
                counts = [sum(counts[k:]) for k in range(len(counts))]
            cells = []
            for k, count in enumerate(counts):
                complete = _complete(first, query.grain, k, data_end)
                if complete and size:
                    totals[k][0] += 1
                    totals[k][1] += size
                    totals[k][2] += count
                cells.append(
                    RetentionCell(
                        period=k,
                        start=shift(first, query.grain, k),
                        complete=complete,
                        count=count if complete else None,
                        rate=ratio(count, size) if complete else None,
                    )
                )
            rows.append(RetentionRow(cohort=first, channel=channel, size=size, periods=cells))
        average = [
            AverageCell(
                period=k,
                cohorts=cohorts,
                size=size,
                count=count if cohorts else None,
                rate=ratio(count, size),
            )
            for k, (cohorts, size, count) in totals.items()
        ]
        return RetentionResult(
            period=period.as_dict(),
            grain=query.grain,
            cohort_event=query.cohort_event,
            return_event=query.return_event,
            periods=query.periods,
            unbounded=query.unbounded,
            segment=query.segment,
            breakdown=query.breakdown,
            data_end=data_end,
            empty=not any(row.size for row in rows),
            cohorts=rows,
            average=average,
        )

    if members is not None:  # a segment's members change without the events changing
        return compute()
    definition = {**query.model_dump(mode="json"), "period": period.as_dict()}
    return cached(events, "retention", definition, compute)


def cohort_ltv(
    events: EventStore,
    query: LtvQuery,
    *,
    tz: ZoneInfo,
    members: ir.Table | None = None,
) -> LtvResult:
    """Cumulative net revenue per cohort member by period."""
    period, data_end = _prepare(events, query, tz, {"cohort_event": query.cohort_event})

    def compute() -> LtvResult:
        found = _collect(ltv_table(events, query, period, members))
        rows: list[LtvRow] = []
        totals: dict[int, list[Any]] = {k: [0, 0, Decimal(0)] for k in range(query.periods + 1)}
        for first, channel in _row_keys(found, query, period):
            values = found.get((first, channel), {})
            size = int(values.get(_SIZE, 0))
            cells, running = [], 0.0
            for k in range(query.periods + 1):
                running += values.get(k, 0.0)
                complete = _complete(first, query.grain, k, data_end)
                if complete and size:
                    totals[k][0] += 1
                    totals[k][1] += size
                    totals[k][2] += Decimal(str(round(running, 2)))
                cells.append(
                    LtvCell(
                        period=k,
                        start=shift(first, query.grain, k),
                        complete=complete,
                        revenue=round(running, 2) if complete else None,
                        per_member=ratio(running, size) if complete else None,
                    )
                )
            rows.append(LtvRow(cohort=first, channel=channel, size=size, periods=cells))
        average = [
            LtvAverageCell(
                period=k,
                cohorts=cohorts,
                size=size,
                revenue=float(revenue) if cohorts else None,
                per_member=ratio(float(revenue), size),
            )
            for k, (cohorts, size, revenue) in totals.items()
        ]
        return LtvResult(
            period=period.as_dict(),
            grain=query.grain,
            cohort_event=query.cohort_event,
            periods=query.periods,
            segment=query.segment,
            breakdown=query.breakdown,
            data_end=data_end,
            empty=not any(row.size for row in rows),
            cohorts=rows,
            average=average,
        )

    if members is not None:
        return compute()
    definition = {**query.model_dump(mode="json"), "period": period.as_dict()}
    return cached(events, "cohort-ltv", definition, compute)


def segment_people(db_session: Session, events: EventStore, *, tz: ZoneInfo, key: str) -> ir.Table:
    """A saved segment's members now (``person_id``), through the segments service; an unknown
    key is a NotFoundError."""
    from siyu.segments import service as segments

    members: ir.Table = segments.members_of(segments.world(db_session, events, tz=tz), key)
    return members.select("person_id").distinct()


__all__ = [
    "CohortQuery",
    "LtvQuery",
    "LtvResult",
    "RetentionQuery",
    "RetentionResult",
    "bucket_end",
    "cohort_ltv",
    "retention",
    "segment_people",
    "shift",
]
