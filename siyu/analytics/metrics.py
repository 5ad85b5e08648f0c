"""The metric library: declarative metrics computed in one fused, set-at-a-time pass.

A metric is a ratio (or a difference) of **measures**. A measure is a per-person quantity
over a bucket of local days: the number of events of some names, the sum of their amounts,
or the number of distinct local days, ISO weeks or months with such events. The engine
computes every measure the asked metrics need in two aggregations: per (bucket, dimension,
person), then per (bucket, dimension), where each measure gives its ``total`` (sum over
people), ``people`` (people with a non-zero value) and ``repeat`` (people with a value of
two or more). So DAU is person-days over days, repurchase rate is repeat buyers over buyers,
and a breakdown by channel or tier costs no extra scan.

A few metrics need a person's whole history and are computed by their own queries
(:data:`SPECIAL`): new and total people (first event ever), D1/D7/D30 retention of the new
people, churn (active in the previous period, not in this one) and 365-day realised LTV.

Dimensions are event columns (channel, source, utm_source, utm_campaign, scene, category:
people count in every value they touched), person attributes (tier, lifecycle stage, RFM
segment, city tier, gender: the value now, from the last tag refresh/tier evaluation), or a
saved segment (``segment:KEY``: members now vs. everyone else).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, Field

from siyu.analytics.common import (
    AnalysisError,
    Grain,
    Period,
    bucket,
    buckets,
    cached,
    change,
    done_by_people,
    local_time,
    ratio,
    resolved_events,
)
from siyu.core.i18n import N_, current_locale, gettext
from siyu.events import EventStore
from siyu.identity import service as identity
from siyu.segments import service as segments
from siyu.segments import tiers
from siyu.tags import service as tags

ORDER = "order_paid"
REFUND = "refund"
UNSUBSCRIBE = "unsubscribe"
COMPLAINT = "complaint"
BROWSE = ("page_view", "product_view", "search", "login")
# Channels the brand owns and reaches people on directly: GMV ordered through them is the
# private domain's share.
PRIVATE_CHANNELS = ("wecom", "miniprogram", "sms", "email", "app")
NO_VALUE = "(none)"
OTHERS = "(others)"
DIMENSION_VALUES_LIMIT = 50


class Unit(StrEnum):
    number = "number"
    rate = "rate"
    money = "money"
    per_person = "per_person"


class Family(StrEnum):
    scale = "scale"
    interaction = "interaction"
    conversion = "conversion"
    retention = "retention"
    value = "value"
    channel = "channel"


FAMILY_LABELS = {
    Family.scale: N_("User scale"),
    Family.interaction: N_("Interaction depth"),
    Family.conversion: N_("Conversion efficiency"),
    Family.retention: N_("Retention quality"),
    Family.value: N_("Value contribution"),
    Family.channel: N_("Channel effect"),
}

How = Literal["events", "amount", "days", "weeks", "months"]
Stat = Literal["total", "people", "repeat"]


@dataclass(frozen=True)
class Measure:
    """A per-person quantity: ``how`` over events named ``names`` (None: any event people
    did), optionally only on ``channels``."""

    key: str
    how: How
    names: tuple[str, ...] | None
    channels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Ref:
    measure: str
    stat: Stat = "total"


Divisor = Literal["days", "weeks", "months"]


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    family: Family
    unit: Unit
    numerator: Ref | None = None
    denominator: Ref | None = None
    minus: Ref | None = None
    per: Divisor | None = None
    higher_is_better: bool = True
    description: str = ""


MEASURES = {
    m.key: m
    for m in (
        Measure("active_days", "days", None),
        Measure("active_weeks", "weeks", None),
        Measure("active_months", "months", None),
        Measure("visit_days", "days", BROWSE),
        Measure("orders", "events", (ORDER,)),
        Measure("gmv", "amount", (ORDER,)),
        Measure("private_gmv", "amount", (ORDER,), PRIVATE_CHANNELS),
        Measure("refunds", "amount", (REFUND,)),
        Measure("contacts_added", "events", ("wecom_add_contact",)),
        Measure("contacts_removed", "events", ("wecom_delete_contact",)),
        Measure("group_joins", "events", ("group_join",)),
        Measure("group_leaves", "events", ("group_leave",)),
        Measure("messages_sent", "events", ("message_sent",)),
        Measure("messages_delivered", "events", ("message_delivered",)),
        Measure("messages_opened", "events", ("message_opened",)),
        Measure("messages_clicked", "events", ("message_clicked",)),
        Measure("coupons_claimed", "events", ("coupon_claim",)),
        Measure("coupons_used", "events", ("coupon_use",)),
        Measure("unsubscribes", "events", (UNSUBSCRIBE,)),
        Measure("complaints", "events", (COMPLAINT,)),
    )
}

_M = Metric
METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        _M("total_people", N_("Total people"), Family.scale, Unit.number,
           description=N_("People resolved so far whose first event is on or before the end")),
        _M("new_people", N_("New people"), Family.scale, Unit.number,
           description=N_("People whose first event ever falls in the period")),
        _M("active_people", N_("Active people"), Family.scale, Unit.number,
           Ref("active_days", "people")),
        _M("dau", N_("DAU"), Family.scale, Unit.number, Ref("active_days"), per="days",
           description=N_("Average distinct active people per day")),
        _M("wau", N_("WAU"), Family.scale, Unit.number, Ref("active_weeks"), per="weeks"),
        _M("mau", N_("MAU"), Family.scale, Unit.number, Ref("active_months"), per="months"),
        _M("contacts_added", N_("WeCom contacts added"), Family.scale, Unit.number,
           Ref("contacts_added")),
        _M("contacts_removed", N_("WeCom contacts removed"), Family.scale, Unit.number,
           Ref("contacts_removed"), higher_is_better=False),
        _M("net_contacts", N_("Net contact growth"), Family.scale, Unit.number,
           Ref("contacts_added"), minus=Ref("contacts_removed")),
        _M("net_group_members", N_("Net group members"), Family.scale, Unit.number,
           Ref("group_joins"), minus=Ref("group_leaves")),
        _M("visits_per_person", N_("Visits per person"), Family.interaction, Unit.per_person,
           Ref("visit_days"), Ref("visit_days", "people"),
           description=N_("Days with a page view, product view, search or login, per visitor")),
        _M("messages_per_person", N_("Messages per person"), Family.interaction,
           Unit.per_person, Ref("messages_sent"), Ref("messages_sent", "people")),
        _M("messages_delivered", N_("Messages delivered"), Family.interaction, Unit.number,
           Ref("messages_delivered")),
        _M("open_rate", N_("Message open rate"), Family.interaction, Unit.rate,
           Ref("messages_opened"), Ref("messages_delivered")),
        _M("click_rate", N_("Message click rate"), Family.interaction, Unit.rate,
           Ref("messages_clicked"), Ref("messages_delivered")),
        _M("visit_to_order", N_("Visit-to-order conversion"), Family.conversion, Unit.rate,
           Ref("orders", "people"), Ref("visit_days", "people"),
           description=N_("Buyers over visitors in the same bucket")),
        _M("coupons_claimed", N_("Coupons claimed"), Family.conversion, Unit.number,
           Ref("coupons_claimed")),
        _M("coupon_redemption", N_("Coupon redemption rate"), Family.conversion, Unit.rate,
           Ref("coupons_used"), Ref("coupons_claimed")),
        _M("retention_d1", N_("D1 retention"), Family.retention, Unit.rate),
        _M("retention_d7", N_("D7 retention"), Family.retention, Unit.rate),
        _M("retention_d30", N_("D30 retention"), Family.retention, Unit.rate),
        _M("repurchase_rate", N_("Repurchase rate"), Family.retention, Unit.rate,
           Ref("orders", "repeat"), Ref("orders", "people"),
           description=N_("Buyers with two or more orders over all buyers")),
        _M("churn_rate", N_("Churn rate"), Family.retention, Unit.rate, higher_is_better=False,
           description=N_("Active in the previous period of the same length, not in this one")),
        _M("gmv", N_("GMV"), Family.value, Unit.money, Ref("gmv")),
        _M("net_revenue", N_("Net revenue"), Family.value, Unit.money, Ref("gmv"),
           minus=Ref("refunds")),
        _M("orders", N_("Orders"), Family.value, Unit.number, Ref("orders")),
        _M("buyers", N_("Buyers"), Family.value, Unit.number, Ref("orders", "people")),
        _M("aov", N_("AOV"), Family.value, Unit.money, Ref("gmv"), Ref("orders")),
        _M("arpu", N_("ARPU"), Family.value, Unit.money, Ref("gmv"), Ref("active_days", "people")),
        _M("ltv_365d", N_("365-day LTV"), Family.value, Unit.money,
           description=N_("Paid amount over the 365 days to the end, per buyer in them")),
        _M("private_gmv_share", N_("Private-domain GMV share"), Family.value, Unit.rate,
           Ref("private_gmv"), Ref("gmv")),
        _M("refund_amount", N_("Refunds"), Family.channel, Unit.money, Ref("refunds"),
           higher_is_better=False),
        _M("unsubscribes", N_("Unsubscribes"), Family.channel, Unit.number, Ref("unsubscribes"),
           higher_is_better=False),
        _M("complaints", N_("Complaints"), Family.channel, Unit.number, Ref("complaints"),
           higher_is_better=False),
        _M("unsubscribe_rate", N_("Unsubscribe rate"), Family.channel, Unit.rate,
           Ref("unsubscribes"), Ref("messages_delivered"), higher_is_better=False,
           description=N_("Unsubscribes over messages delivered")),
        _M("complaint_rate", N_("Complaint rate"), Family.channel, Unit.rate,
           Ref("complaints"), Ref("messages_delivered"), higher_is_better=False,
           description=N_("Complaints over messages delivered")),
    )
}  # fmt: skip
SPECIAL = (
    "total_people",
    "new_people",
    "retention_d1",
    "retention_d7",
    "retention_d30",
    "churn_rate",
    "ltv_365d",
)
RETENTION_DAYS = {"retention_d1": 1, "retention_d7": 7, "retention_d30": 30}
EVENT_DIMENSIONS = ("channel", "source", "utm_source", "utm_campaign", "scene", "category")
TAG_DIMENSIONS = ("lifecycle_stage", "rfm_segment", "city_tier", "gender", "age_band")
DIMENSIONS = (*EVENT_DIMENSIONS, "tier", *TAG_DIMENSIONS)
OVERVIEW = (
    "total_people", "new_people", "dau", "mau", "net_contacts", "open_rate", "click_rate",
    "visit_to_order", "coupon_redemption", "retention_d7", "repurchase_rate", "churn_rate",
    "gmv", "orders", "aov", "arpu", "private_gmv_share",
)  # fmt: skip


class MetricQuery(BaseModel):
    """What to compute: metrics over a period, by a grain, optionally broken down."""

    metrics: list[str] = Field(default_factory=lambda: list(OVERVIEW), min_length=1, max_length=40)
    start: date | None = None
    end: date | None = None
    grain: Grain = Grain.day
    dimension: str | None = Field(
        default=None,
        max_length=80,
        description="channel, source, utm_source, utm_campaign, scene, category, tier, "
        "lifecycle_stage, rfm_segment, city_tier, gender, age_band or segment:KEY",
    )
    channel: str | None = Field(
        default=None, max_length=32, description="Only events on this channel"
    )
    compare: bool = True


class MetricInfo(BaseModel):
    key: str
    label: str
    family: Family
    family_label: str
    unit: Unit
    higher_is_better: bool
    description: str


def catalog() -> list[MetricInfo]:
    """Every metric, labelled in the current language."""
    return [
        MetricInfo(
            key=m.key,
            label=gettext(m.label),
            family=m.family,
            family_label=gettext(FAMILY_LABELS[m.family]),
            unit=m.unit,
            higher_is_better=m.higher_is_better,
            description=gettext(m.description) if m.description else "",
        )
        for m in METRICS.values()
    ]


class Point(BaseModel):
    bucket: date
    value: float | None


class MetricValue(BaseModel):
    key: str
    label: str
    family: Family
    unit: Unit
    higher_is_better: bool
    value: float | None
    previous: float | None = None
    change: float | None = None
    year_ago: float | None = None
    year_change: float | None = None
    series: list[Point] = Field(default_factory=list)


class BreakdownRow(BaseModel):
    value: str
    metrics: dict[str, float | None]


class MetricResult(BaseModel):
    period: dict[str, str]
    previous: dict[str, str] | None
    year_ago: dict[str, str] | None
    grain: Grain
    metrics: list[MetricValue]
    dimension: str | None = None
    breakdown: list[BreakdownRow] = Field(default_factory=list)


@dataclass(frozen=True)
class _Plan:
    metrics: tuple[Metric, ...]
    measures: tuple[Measure, ...]
    special: tuple[str, ...]


def check_query(query: MetricQuery) -> _Plan:
    unknown = [key for key in query.metrics if key not in METRICS]
    if unknown:
        raise AnalysisError(
            N_("Unknown metric {names}; known metrics are: {known}"),
            field="metrics",
            names=", ".join(unknown),
            known=", ".join(METRICS),
        )
    dimension = query.dimension
    segment = dimension is not None and dimension.startswith("segment:") and dimension != "segment:"
    if dimension is not None and dimension not in DIMENSIONS and not segment:
        raise AnalysisError(
            N_("Unknown dimension {name}; use one of: {known}"),
            field="dimension",
            name=dimension,
            known=", ".join([*DIMENSIONS, "segment:KEY"]),
        )
    metrics = tuple(METRICS[key] for key in dict.fromkeys(query.metrics))
    refs = [r for m in metrics for r in (m.numerator, m.denominator, m.minus) if r is not None]
    measures = tuple(MEASURES[key] for key in dict.fromkeys(r.measure for r in refs))
    special = tuple(m.key for m in metrics if m.key in SPECIAL)
    return _Plan(metrics, measures, special)


# -- the fused pass ------------------------------------------------------------------------


def _dimension_column(events: EventStore, rows: ir.Table, dimension: str | None) -> ir.Table:
    """``rows`` (with ``person_id`` and the event columns) with a string column ``dim``."""
    if dimension is None:
        return rows.mutate(dim=ibis.literal("all"))
    if dimension in EVENT_DIMENSIONS:
        return rows.mutate(dim=rows[dimension].cast("string").fill_null(NO_VALUE))
    attributes = _person_attribute(events, dimension)
    joined = rows.left_join(attributes, rows.person_id == attributes.attr_person)
    return joined.mutate(dim=joined.attr_value.fill_null(NO_VALUE)).drop(
        "attr_person", "attr_value"
    )


def _person_attribute(events: EventStore, dimension: str) -> ir.Table:
    """``attr_person``, ``attr_value`` for a person-level dimension (the value now)."""
    if dimension == "tier":
        current = tiers.current_tiers(events)
        return current.select(attr_person="person_id", attr_value=current.tier.cast("string"))
    if dimension.startswith("segment:"):
        members = segments.current_members(events, dimension.removeprefix("segment:"))
        return members.select(attr_person="person_id", attr_value=ibis.literal("in"))
    values = tags.current_values(events, [dimension])
    if values is None:
        raise AnalysisError(
            N_("No tag values for {name} yet: refresh tags first (siyu tags refresh)"),
            field="dimension",
            name=dimension,
        )
    return values.select(attr_person="person_id", attr_value=values[dimension].cast("string"))


def _in(column: ir.Column, values: Sequence[str] | None) -> ir.BooleanValue:
    return column.isin(list(values)) if values is not None else ibis.literal(True)


def _per_person(rows: ir.Table, measures: Sequence[Measure], keys: list[str]) -> ir.Table:
    """One row per (keys…, person) with each measure's value for that person."""
    aggregates: dict[str, ir.Value] = {}
    for m in measures:
        where = _in(rows.name, m.names) & _in(rows.channel, m.channels)
        if m.how == "events":
            aggregates[m.key] = rows.count(where=where)
        elif m.how == "amount":
            aggregates[m.key] = rows.amount.sum(where=where).fill_null(0)
        else:
            unit = {"days": "D", "weeks": "W", "months": "M"}[m.how]
            day = rows.local_date if unit == "D" else rows.local_date.truncate(unit)
            aggregates[m.key] = day.nunique(where=where)
    return rows.group_by([*keys, "person_id"]).aggregate(**aggregates)


def _per_group(per_person: ir.Table, measures: Sequence[Measure], keys: list[str]) -> ir.Table:
    aggregates: dict[str, ir.Value] = {}
    for m in measures:
        column = per_person[m.key]
        aggregates[f"{m.key}__total"] = column.sum()
        aggregates[f"{m.key}__people"] = (column > 0).sum()
        aggregates[f"{m.key}__repeat"] = (column >= 2).sum()
    return per_person.group_by(keys).aggregate(**aggregates)


def _number(value: Any) -> float:
    return float(value) if value is not None else 0.0


def _value(metric: Metric, row: dict[str, Any] | None, span: dict[str, int]) -> float | None:
    """A metric's value from one aggregated row (None: undefined, e.g. nothing delivered)."""
    if metric.numerator is None:
        return None
    row = row or {}

    def get(ref: Ref) -> float:
        return _number(row.get(f"{ref.measure}__{ref.stat}"))

    value: float | None = get(metric.numerator)
    if metric.minus is not None:
        value = get(metric.numerator) - get(metric.minus)
    if metric.denominator is not None:
        value = ratio(get(metric.numerator), get(metric.denominator))
    if metric.per is not None and value is not None:
        value = ratio(value, span[metric.per])
    return value


def _span(period: Period) -> dict[str, int]:
    return {
        "days": period.days,
        "weeks": len(buckets(period, Grain.week)),
        "months": len(buckets(period, Grain.month)),
    }


def _bucket_period(first: date, grain: Grain, period: Period) -> Period:
    """The part of ``period`` a bucket starting on ``first`` covers."""
    if grain is Grain.day:
        last = first
    elif grain is Grain.week:
        last = first + timedelta(days=6)
    else:
        following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        last = following - timedelta(days=1)
    return Period(max(first, period.start), min(last, period.end), period.tz)


def _activity(rows: ir.Table, query: MetricQuery) -> ir.Table:
    """What people did (siyu's own events aside), on the asked channel only if one is set."""
    rows = rows.filter(done_by_people(rows))
    return rows if query.channel is None else rows.filter(rows.channel == query.channel)


def _scope(events: EventStore, period: Period, query: MetricQuery) -> ir.Table:
    rows = resolved_events(events, period.offset, start=period.start_utc, end=period.end_utc)
    return _activity(rows, query)


def _totals(
    events: EventStore, periods: dict[str, Period], query: MetricQuery, plan: _Plan
) -> dict[tuple[str, str], dict[str, Any]]:
    """Aggregated measures per (period label, dimension value), in one scan."""
    if not plan.measures:
        return {}
    offset = next(iter(periods.values())).offset
    spans = [(p.start_utc, p.end_utc) for p in periods.values()]
    rows = _activity(resolved_events(events, offset, spans=spans), query)
    label = ibis.cases(
        *[
            ((rows.ts >= p.start_utc) & (rows.ts < p.end_utc), ibis.literal(name))
            for name, p in periods.items()
        ],
        else_=ibis.null(str),
    )
    rows = rows.mutate(period=label).filter(ibis._.period.notnull())
    rows = _dimension_column(events, rows, query.dimension)
    per_person = _per_person(rows, plan.measures, ["period", "dim"])
    grouped = _per_group(per_person, plan.measures, ["period", "dim"])
    return {(r["period"], r["dim"]): r for r in grouped.to_pyarrow().to_pylist()}


def _series_rows(
    events: EventStore, period: Period, query: MetricQuery, plan: _Plan
) -> dict[date, dict[str, Any]]:
    if not plan.measures:
        return {}
    rows = _scope(events, period, query)
    rows = rows.mutate(bucket=bucket(rows.local_date, query.grain))
    per_person = _per_person(rows, plan.measures, ["bucket"])
    grouped = _per_group(per_person, plan.measures, ["bucket"])
    return {r["bucket"]: r for r in grouped.to_pyarrow().to_pylist()}


# -- metrics that need a person's history ----------------------------------------------------


class _History:
    """First-seen dates and active person-days, each computed once (engine temp tables) and
    read by every special metric of every compared period."""

    def __init__(
        self,
        events: EventStore,
        periods: Sequence[Period],
        query: MetricQuery,
        plan: _Plan,
        stack: ExitStack,
    ) -> None:
        self.events, self.query = events, query
        self.offset = periods[0].offset
        wanted = set(plan.special)
        end = max(p.end_utc for p in periods)
        self.first: ir.Table | None = None
        self.days: ir.Table | None = None
        if wanted & {"total_people", "new_people", *RETENTION_DAYS}:
            self.first = stack.enter_context(self._first_seen(end).cache())
        if wanted & {"churn_rate", *RETENTION_DAYS}:
            self.days = stack.enter_context(self._person_days(periods).cache())

    def _first_seen(self, end: Any) -> ir.Table:
        """Each person's first event ever (``first_date`` local, ``dim`` of that event).

        The events are first reduced to their first occurrence per raw identity (user id and
        anonymous id, no join), and only those rows are resolved to people: the identity
        map is joined to a few rows per person instead of the whole history."""
        raw = self.events.table()
        raw = _activity(raw.filter(raw.ts < end), self.query)
        dimension = self.query.dimension
        by_event = dimension in EVENT_DIMENSIONS
        firsts: dict[str, ir.Value] = {"ts": raw.ts.min()}
        if by_event:
            firsts["dim"] = raw[dimension].cast("string").fill_null(NO_VALUE).argmin(raw.ts)
        keys = raw.group_by("user_id", "anonymous_id").aggregate(**firsts)
        people = identity.person_events(self.events, keys)
        people = people.filter(people.person_id.notnull())
        local = local_time(people.ts, self.offset).date()
        if by_event:
            first = people.group_by("person_id").aggregate(
                first_date=local.min(), dim=people.dim.argmin(people.ts)
            )
            return first.mutate(dim=first.dim.fill_null(NO_VALUE))
        first = people.group_by("person_id").aggregate(first_date=local.min())
        if dimension is None:
            return first.mutate(dim=ibis.literal("all"))
        attributes = _person_attribute(self.events, dimension)
        joined = first.left_join(attributes, first.person_id == attributes.attr_person)
        return joined.mutate(dim=joined.attr_value.fill_null(NO_VALUE)).drop(
            "attr_person", "attr_value"
        )

    def _person_days(self, periods: Sequence[Period]) -> ir.Table:
        """Distinct (person, local day, dim) over every span churn and retention read: each
        period, the one before it, and the 30 days after it."""
        spans = [(p.previous().start_utc, p.end_utc + timedelta(days=30)) for p in periods]
        rows = resolved_events(self.events, self.offset, spans=spans)
        rows = _dimension_column(self.events, _activity(rows, self.query), self.query.dimension)
        return rows.select("person_id", "local_date", "dim").distinct()

    def people(self, period: Period) -> tuple[dict[str, float], dict[str, float]]:
        """Total people (first seen on or before the end) and new people, by dim."""
        assert self.first is not None
        first = self.first.filter(self.first.first_date <= period.end)
        counts = first.group_by("dim").aggregate(
            total=first.count(), new=first.count(where=first.first_date >= period.start)
        )
        rows = counts.to_pyarrow().to_pylist()
        return (
            {r["dim"]: float(r["total"]) for r in rows},
            {r["dim"]: float(r["new"]) for r in rows},
        )

    def retention(
        self, period: Period, days: int, last_day: date | None, *, by_bucket: Grain | None = None
    ) -> dict[str, float | None]:
        """Share of the period's new people active again exactly ``days`` local days after
        their first day, among those whose day ``days`` has been observed (to ``last_day``);
        by dim, or by the bucket of the first day when ``by_bucket`` is given."""
        assert self.first is not None and self.days is not None
        observable_until = min(period.end, last_day or period.end) - timedelta(days=days)
        first = self.first
        if by_bucket is not None:
            first = first.mutate(dim=bucket(first.first_date, by_bucket).cast("string"))
        cohort = first.filter(
            (first.first_date >= period.start) & (first.first_date <= observable_until)
        )
        active = self.days.select("person_id", "local_date").distinct()
        returned = cohort.join(
            active,
            (cohort.person_id == active.person_id)
            & (active.local_date == cohort.first_date + ibis.interval(days=days)),
        )
        counts = cohort.group_by("dim").aggregate(size=cohort.count())
        back = returned.group_by("dim").aggregate(back=returned.count())
        merged = counts.left_join(back, "dim").to_pyarrow().to_pylist()
        return {r["dim"]: ratio(_number(r["back"]), r["size"]) for r in merged}

    def _active(self, period: Period) -> ir.Table:
        assert self.days is not None
        inside = self.days.filter(
            (self.days.local_date >= period.start) & (self.days.local_date <= period.end)
        )
        return inside.select("person_id", "dim").distinct()

    def churn(self, period: Period) -> dict[str, float | None]:
        before = self._active(period.previous())
        now = self._active(period).select(now_person="person_id", now_dim="dim")
        joined = before.left_join(
            now, (before.person_id == now.now_person) & (before.dim == now.now_dim)
        )
        counts = joined.group_by("dim").aggregate(
            size=joined.count(), gone=joined.count(where=joined.now_person.isnull())
        )
        return {r["dim"]: ratio(r["gone"], r["size"]) for r in counts.to_pyarrow().to_pylist()}

    def ltv(self, period: Period) -> dict[str, float | None]:
        year = Period(period.end - timedelta(days=364), period.end, period.tz)
        rows = resolved_events(
            self.events, self.offset, start=year.start_utc, end=year.end_utc, names=[ORDER]
        )
        rows = _dimension_column(self.events, _activity(rows, self.query), self.query.dimension)
        counts = rows.group_by("dim").aggregate(
            amount=rows.amount.sum(), buyers=rows.person_id.nunique()
        )
        return {
            r["dim"]: ratio(_number(r["amount"]), r["buyers"])
            for r in counts.to_pyarrow().to_pylist()
        }

    def values(
        self, period: Period, plan: _Plan, last_day: date | None
    ) -> dict[str, dict[str, float | None]]:
        """Special metric → dim → value, for one period."""
        found: dict[str, dict[str, float | None]] = {}
        wanted = set(plan.special)
        if wanted & {"total_people", "new_people"}:
            total, new = self.people(period)
            found["total_people"], found["new_people"] = dict(total), dict(new)
        for key in wanted & set(RETENTION_DAYS):
            found[key] = self.retention(period, RETENTION_DAYS[key], last_day)
        if "churn_rate" in wanted:
            found["churn_rate"] = self.churn(period)
        if "ltv_365d" in wanted:
            found["ltv_365d"] = self.ltv(period)
        return found

    def series(
        self, period: Period, grain: Grain, plan: _Plan, last_day: date | None
    ) -> dict[str, dict[date, float | None]]:
        """Per-bucket new people, running total and retention (cohorts by the bucket of their
        first day). Churn and LTV are period figures: no series."""
        wanted = set(plan.special) & {"total_people", "new_people", *RETENTION_DAYS}
        if not wanted or self.first is None:
            return {}
        first = self.first.filter(self.first.first_date <= period.end)
        labelled = first.mutate(
            b=ibis.cases(
                (first.first_date < period.start, ibis.null("date")),
                else_=bucket(first.first_date, grain),
            )
        )
        counts = labelled.group_by("b").aggregate(n=labelled.count()).to_pyarrow().to_pylist()
        new = {r["b"]: float(r["n"]) for r in counts if r["b"] is not None}
        running = sum(float(r["n"]) for r in counts if r["b"] is None)
        series: dict[str, dict[date, float | None]] = {"new_people": {}, "total_people": {}}
        for first_day in buckets(period, grain):
            running += new.get(first_day, 0.0)
            series["new_people"][first_day] = new.get(first_day, 0.0)
            series["total_people"][first_day] = running
        for key in wanted & set(RETENTION_DAYS):
            rates = self.retention(period, RETENTION_DAYS[key], last_day, by_bucket=grain)
            series[key] = {date.fromisoformat(d): rate for d, rate in rates.items()}
        return series


# -- the analysis --------------------------------------------------------------------------


def compute(
    events: EventStore, period: Period, query: MetricQuery, *, last_day: date | None = None
) -> MetricResult:
    """Metrics over ``period``: values, comparisons, series per grain, optional breakdown."""
    plan = check_query(query)
    return cached(
        events,
        "metrics",
        {
            "query": query,
            "period": period.as_dict(),
            "last_day": str(last_day),
            "locale": current_locale(),
        },
        lambda: _compute(events, period, query, plan, last_day),
    )


def _compute(
    events: EventStore, period: Period, query: MetricQuery, plan: _Plan, last_day: date | None
) -> MetricResult:
    periods = {"current": period}
    if query.compare:
        periods |= {"previous": period.previous(), "year_ago": period.year_ago()}
    overall = query.model_copy(update={"dimension": None})
    totals = _totals(events, periods, overall, plan)
    series_rows = _series_rows(events, period, overall, plan)
    with ExitStack() as stack:
        history = _History(events, list(periods.values()), overall, plan, stack)
        specials = {name: history.values(p, plan, last_day) for name, p in periods.items()}
        special_series = history.series(period, query.grain, plan, last_day)
        breakdown = (
            _breakdown(events, period, query, plan, last_day) if query.dimension is not None else []
        )
    spans = {name: _span(p) for name, p in periods.items()}
    values: list[MetricValue] = []
    for metric in plan.metrics:

        def value_in(name: str, metric: Metric = metric) -> float | None:
            if metric.key in SPECIAL:
                nobody = 0.0 if metric.unit is Unit.number else None
                return specials[name].get(metric.key, {}).get("all", nobody)
            row = totals.get((name, "all"))
            return None if row is None and name != "current" else _value(metric, row, spans[name])

        current = value_in("current")
        previous = value_in("previous") if query.compare else None
        year_ago = value_in("year_ago") if query.compare else None
        points = []
        for first_day in buckets(period, query.grain):
            if metric.key in SPECIAL:
                point = special_series.get(metric.key, {}).get(first_day)
            else:
                part = _bucket_period(first_day, query.grain, period)
                point = _value(metric, series_rows.get(first_day), _span(part))
            points.append(Point(bucket=first_day, value=point))
        values.append(
            MetricValue(
                key=metric.key,
                label=gettext(metric.label),
                family=metric.family,
                unit=metric.unit,
                higher_is_better=metric.higher_is_better,
                value=current,
                previous=previous,
                change=change(current, previous),
                year_ago=year_ago,
                year_change=change(current, year_ago),
                series=points,
            )
        )
    return MetricResult(
        period=period.as_dict(),
        previous=period.previous().as_dict() if query.compare else None,
        year_ago=period.year_ago().as_dict() if query.compare else None,
        grain=query.grain,
        metrics=values,
        dimension=query.dimension,
        breakdown=breakdown,
    )


def _breakdown(
    events: EventStore, period: Period, query: MetricQuery, plan: _Plan, last_day: date | None
) -> list[BreakdownRow]:
    totals = _totals(events, {"current": period}, query, plan)
    with ExitStack() as stack:
        specials = _History(events, [period], query, plan, stack).values(period, plan, last_day)
    span = _span(period)
    dims = {dim for (_, dim) in totals} | {d for by in specials.values() for d in by}
    rows = []
    for dim in dims:
        row: dict[str, float | None] = {}
        for metric in plan.metrics:
            if metric.key in SPECIAL:
                row[metric.key] = specials.get(metric.key, {}).get(dim)
            else:
                row[metric.key] = _value(metric, totals.get(("current", dim)), span)
        rows.append(BreakdownRow(value=dim, metrics=row))
    lead = plan.metrics[0].key
    rows.sort(key=lambda r: (r.metrics.get(lead) is None, -(r.metrics.get(lead) or 0), r.value))
    return rows[:DIMENSION_VALUES_LIMIT]


def daily_series(
    events: EventStore, period: Period, keys: Sequence[str], *, channel: str | None = None
) -> dict[str, list[Point]]:
    """Each metric's value per local day of ``period`` (for anomaly detection)."""
    query = MetricQuery(
        metrics=list(keys), start=period.start, end=period.end, grain=Grain.day, compare=False,
        channel=channel,
    )  # fmt: skip
    result = compute(events, period, query)
    return {m.key: m.series for m in result.metrics}
