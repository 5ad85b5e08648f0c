"""Repurchase: how many buyers buy again, how long they take, and who is due to buy next.

An order is an ``order_paid`` event, counted once per ``order_id`` (events without one count
each); its time is its first event's and its category that event's. Intervals are whole local
days between a person's consecutive orders: per category, between consecutive orders *of that
category*; for all categories, between consecutive orders of any category. Refunds do not undo
orders here. See ``docs/analytics-retention.md`` (Repurchase).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field

from siyu.analytics.common import (
    AnalysisError,
    Day,
    Period,
    cached,
    last_event_date,
    ratio,
    resolve_period,
    resolved_events,
)
from siyu.core.i18n import N_
from siyu.events import EventStore

ORDER_EVENT = "order_paid"
# Histogram bins of intervals in days: [0, 1), [1, 7), … [365, ∞).
EDGES = (0, 1, 7, 14, 30, 60, 90, 180, 365)
MAX_PAGE = 500
Basis = Literal["own", "category", "overall"]


class RepurchaseQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: Day | None = Field(default=None, description="First local day")
    end: Day | None = Field(default=None, description="Last local day")
    category: str | None = Field(default=None, min_length=1, max_length=200)


class NextPurchaseQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: Day | None = Field(default=None, description="Local day; default: the latest event's")
    category: str | None = Field(default=None, min_length=1, max_length=200)
    overdue_only: bool = False
    offset: int = Field(default=0, ge=0, le=10_000_000)
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)


class HistogramBin(BaseModel):
    from_days: int = Field(description="Inclusive")
    to_days: int | None = Field(description="Exclusive; null: no upper bound")
    count: int


class IntervalStats(BaseModel):
    category: str | None = Field(description="null: consecutive orders of any category")
    intervals: int
    median: float | None
    p25: float | None
    p75: float | None
    mean: float | None
    histogram: list[HistogramBin]


class RepurchaseResult(BaseModel):
    period: dict[str, str]
    category: str | None
    orders: int
    buyers: int = Field(description="People with an order in the period")
    repeat_buyers: int = Field(description="Buyers with two orders or more in the period")
    repurchase_rate: float | None
    returning_buyers: int = Field(description="Buyers who had ordered before the period")
    returning_rate: float | None
    empty: bool
    intervals: list[IntervalStats]


class NextPurchaseRow(BaseModel):
    person_id: str
    last_order: date
    last_category: str | None
    orders: int
    intervals: int = Field(description="The person's own intervals")
    interval_days: float | None = Field(description="The median interval used")
    basis: Basis | None = Field(description="Whose median: own, category or overall")
    expected_next: date | None
    days_overdue: int | None = Field(description="As-of day minus expected day (< 0: not due)")


class NextPurchasePage(BaseModel):
    as_of: date
    category: str | None
    overdue_only: bool
    total: int
    offset: int
    limit: int
    items: list[NextPurchaseRow]


# -- orders and intervals ---------------------------------------------------------------------


def orders(events: EventStore, period: Period, *, category: str | None) -> ir.Table:
    """Every order up to the end of ``period``: ``person_id``, ``order_key``, ``ts``,
    ``local_date``, ``category``."""
    paid = resolved_events(events, period.offset, end=period.end_utc, names=[ORDER_EVENT])
    key = paid.order_id.coalesce(paid.event_id)
    first = ibis.struct({"ts": paid.ts, "id": paid.event_id})
    grouped = paid.mutate(order_key=key).group_by(["person_id", "order_key"])
    table = grouped.aggregate(
        ts=paid.ts.min(),
        local_date=paid.local_date.argmin(first),
        category=paid.category.argmin(first),
    )
    if category is not None:
        table = table.filter(table.category == category)
    return table


def intervals(table: ir.Table, *, by_category: bool) -> ir.Table:
    """Each order after a person's first (of the category, ``by_category``) with ``gap``, the
    local days since the one before."""
    keys = [table.person_id, table.category] if by_category else [table.person_id]
    window = ibis.window(group_by=keys, order_by=[table.ts, table.order_key])
    gap = table.local_date.delta(table.local_date.lag().over(window), unit="day")
    with_gap = table.mutate(gap=gap)
    return with_gap.filter(with_gap.gap.notnull())


def _bin(gap: ir.IntegerValue) -> ir.IntegerValue:
    cases = [(gap < edge, index - 1) for index, edge in enumerate(EDGES) if index]
    return ibis.cases(*cases, else_=len(EDGES) - 1)


def check_category(events: EventStore, category: str | None) -> None:
    """Refuse a category no order has: a typo would read as nobody buying again."""
    if category is None:
        return
    paid = events.table()
    paid = paid.filter(paid.name == ORDER_EVENT, paid.category.notnull())
    known = set(paid.select("category").distinct().to_pyarrow().column(0).to_pylist())
    if category not in known:
        raise AnalysisError(
            N_("No order has the category {category}; categories ordered: {known}"),
            field="category",
            category=category,
            known=", ".join(sorted(known)[:40]) or "-",
        )


# -- the rates and the distribution ------------------------------------------------------------


def _rates(table: ir.Table, period: Period) -> dict[str, int]:
    current = table.filter(table.ts >= period.start_utc)
    before = table.filter(table.ts < period.start_utc).select("person_id").distinct()
    per_buyer = current.group_by("person_id").aggregate(orders=current.count())
    per_buyer = per_buyer.mutate(returning=per_buyer.person_id.isin(before.person_id))
    totals = per_buyer.aggregate(
        orders=per_buyer.orders.sum(),
        buyers=per_buyer.count(),
        repeat=(per_buyer.orders >= 2).cast("int64").sum(),
        returning=per_buyer.returning.cast("int64").sum(),
    )
    row = totals.to_pyarrow().to_pylist()[0]
    return {name: int(value or 0) for name, value in row.items()}


def _distribution(table: ir.Table, period: Period, *, category: str | None) -> list[IntervalStats]:
    """Interval statistics over intervals ending in the period: all categories (unless one
    is asked for) and then each category."""
    within = intervals(table, by_category=True)
    within = within.filter(within.ts >= period.start_utc, within.category.notnull())
    parts = [within.select("category", "gap")]
    if category is None:
        across = intervals(table, by_category=False)
        across = across.filter(across.ts >= period.start_utc)
        parts.insert(0, across.select(category=ibis.null(str), gap=across.gap))
    gaps = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    stats = gaps.group_by("category").aggregate(
        intervals=gaps.count(),
        median=gaps.gap.quantile(0.5),
        p25=gaps.gap.quantile(0.25),
        p75=gaps.gap.quantile(0.75),
        mean=gaps.gap.mean(),
    )
    binned = gaps.mutate(bin=_bin(gaps.gap))
    counts = binned.group_by(["category", "bin"]).aggregate(n=binned.count())
    histogram: dict[str | None, dict[int, int]] = {}
    for row in counts.to_pyarrow().to_pylist():
        histogram.setdefault(row["category"], {})[int(row["bin"])] = int(row["n"])
    found = {row["category"]: row for row in stats.to_pyarrow().to_pylist()}
    names: list[str | None] = [category] if category is not None else [None]
    names += sorted(name for name in found if name is not None and name != category)
    result = []
    for name in names:
        row = found.get(name, {})
        bins = histogram.get(name, {})
        result.append(
            IntervalStats(
                category=name,
                intervals=int(row.get("intervals") or 0),
                median=_number(row.get("median")),
                p25=_number(row.get("p25")),
                p75=_number(row.get("p75")),
                mean=_number(row.get("mean")),
                histogram=[
                    HistogramBin(
                        from_days=edge,
                        to_days=EDGES[index + 1] if index + 1 < len(EDGES) else None,
                        count=bins.get(index, 0),
                    )
                    for index, edge in enumerate(EDGES)
                ],
            )
        )
    return result


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def repurchase(events: EventStore, query: RepurchaseQuery, *, tz: ZoneInfo) -> RepurchaseResult:
    """Repurchase and returning-buyer rates in the period, and the interval distribution."""
    check_category(events, query.category)
    period = resolve_period(events, tz, query.start, query.end)

    def compute() -> RepurchaseResult:
        table = orders(events, period, category=query.category)
        rates = _rates(table, period)
        return RepurchaseResult(
            period=period.as_dict(),
            category=query.category,
            orders=rates["orders"],
            buyers=rates["buyers"],
            repeat_buyers=rates["repeat"],
            repurchase_rate=ratio(rates["repeat"], rates["buyers"]),
            returning_buyers=rates["returning"],
            returning_rate=ratio(rates["returning"], rates["buyers"]),
            empty=rates["buyers"] == 0,
            intervals=_distribution(table, period, category=query.category),
        )

    definition = {**query.model_dump(mode="json"), "period": period.as_dict()}
    return cached(events, "repurchase", definition, compute)


# -- next purchase ----------------------------------------------------------------------------


def next_purchase_table(events: EventStore, period: Period, *, category: str | None) -> ir.Table:
    """One row per buyer up to the end of ``period`` (the as-of day) with their expected next
    order: last order + own median interval (two intervals or more), else the median interval
    of their last order's category, else the median of all intervals; rounded up to days."""
    table = orders(events, period, category=category)
    sequence = intervals(table, by_category=False)
    own = sequence.group_by("person_id").aggregate(
        intervals=sequence.count(), own_median=sequence.gap.quantile(0.5)
    )
    within = intervals(table, by_category=True)
    within = within.filter(within.category.notnull())
    by_category = within.group_by("category").aggregate(category_median=within.gap.quantile(0.5))
    overall = sequence.gap.quantile(0.5).as_scalar()
    last_order = ibis.struct({"ts": table.ts, "key": table.order_key})
    people = table.group_by("person_id").aggregate(
        orders=table.count(),
        last_order=table.local_date.argmax(last_order),
        last_category=table.category.argmax(last_order),
    )
    joined = people.left_join(own, "person_id").left_join(
        by_category, people.last_category == by_category.category
    )
    count = joined.intervals.fill_null(0)
    basis = ibis.cases(
        (count >= 2, "own"),
        (joined.category_median.notnull(), "category"),
        (overall.notnull(), "overall"),
        else_=ibis.null(str),
    )
    median = ibis.cases(
        (count >= 2, joined.own_median),
        else_=joined.category_median.coalesce(overall),
    )
    days = median.ceil().cast("int32")
    expected = joined.last_order + days.as_interval("D")
    as_of = ibis.literal(period.end)
    return joined.select(
        "person_id",
        "last_order",
        "last_category",
        "orders",
        intervals=count.cast("int64"),
        interval_days=median.cast("float64"),
        basis=basis,
        expected_next=expected,
        days_overdue=as_of.delta(expected, unit="day"),
    )


def next_purchase(
    events: EventStore, query: NextPurchaseQuery, *, tz: ZoneInfo
) -> NextPurchasePage:
    """Buyers with their expected next order, most overdue first (then by person id)."""
    check_category(events, query.category)
    as_of = query.as_of or last_event_date(events, tz) or datetime.now(tz).date()
    period = Period(as_of, as_of, tz)
    table = next_purchase_table(events, period, category=query.category)
    if query.overdue_only:
        table = table.filter(table.days_overdue > 0)
    total = int(table.count().to_pyarrow().as_py())
    ordered = table.order_by(
        [table.days_overdue.isnull(), table.days_overdue.desc(), table.person_id]
    )
    page = ordered.limit(query.limit, offset=query.offset).to_pyarrow().to_pylist()
    return NextPurchasePage(
        as_of=as_of,
        category=query.category,
        overdue_only=query.overdue_only,
        total=total,
        offset=query.offset,
        limit=query.limit,
        items=[NextPurchaseRow.model_validate(row) for row in page],
    )


__all__ = [
    "NextPurchasePage",
    "NextPurchaseQuery",
    "RepurchaseQuery",
    "RepurchaseResult",
    "next_purchase",
    "repurchase",
]
