"""Campaign costs and the return on them.

Costs are kept per (local date, channel, campaign) in the event store's ``campaign_costs``
table; a row for a key already stored replaces it. An import or a batch is checked whole and
stored only when every row is valid (all or nothing), so a half-loaded month never shows as a
cheap month. ROI reads the costs beside one attribution model's credit: cost, attributed
revenue, ROI, ROAS, CAC, LTV/CAC and payback per channel and campaign; days without a cost
row are reported as gaps, never read as zero.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from siyu.analytics import attribution
from siyu.analytics.attribution import DIRECT, AttributionQuery, RuleModel
from siyu.analytics.common import cached, ratio
from siyu.core.clock import utcnow
from siyu.core.errors import InvalidInputError
from siyu.core.i18n import N_
from siyu.events import EventStore

COSTS_TABLE = "campaign_costs"
COSTS_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32()),
        pa.field("channel", pa.string()),
        pa.field("campaign", pa.string()),  # "" for a channel-wide cost
        pa.field("cost", pa.decimal128(18, 2)),
        pa.field("currency", pa.string()),
        pa.field("updated_at", pa.timestamp("us", tz="UTC")),
    ]
)
REQUIRED_CSV_COLUMNS = ("date", "channel", "cost")
MAX_COST = Decimal("9999999999999999.99")
_WRITE = threading.Lock()


class CostItem(BaseModel):
    """One day's spend on a channel (and campaign; empty for the whole channel)."""

    date: date
    channel: str = Field(min_length=1, max_length=64)
    campaign: str = Field("", max_length=128)
    cost: Decimal = Field(ge=0, le=MAX_COST, decimal_places=2)
    currency: str = Field("CNY", pattern=r"^[A-Z]{3}$")

    @field_validator("channel", "campaign")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @property
    def key(self) -> tuple[dt.date, str, str]:
        return (self.date, self.channel, self.campaign)


class CostBatch(BaseModel):
    items: list[CostItem] = Field(min_length=1, max_length=10_000)


class CostStored(BaseModel):
    received: int
    inserted: int
    replaced: int


class CostRead(BaseModel):
    date: date
    channel: str
    campaign: str
    cost: Decimal
    currency: str
    updated_at: datetime | None = None


class CostPage(BaseModel):
    items: list[CostRead]
    total: int
    limit: int
    offset: int


class CostImport(BaseModel):
    """What reading a cost file found: the valid items and every problem, by line."""

    rows: int
    items: list[CostItem]
    errors: list[dict[str, Any]]


# -- checking and storing ------------------------------------------------------------------


def duplicate_errors(
    items: list[CostItem], *, lines: list[int] | None = None
) -> list[dict[str, Any]]:
    """A problem for each item whose key an earlier item already has."""
    seen: dict[tuple[date, str, str], int] = {}
    problems = []
    for index, item in enumerate(items):
        where = lines[index] if lines else index
        if item.key in seen:
            problems.append(
                {
                    "line" if lines else "item": where,
                    "column": "date,channel,campaign",
                    "reason": f"duplicate of {'line' if lines else 'item'} {seen[item.key]}",
                }
            )
        else:
            seen[item.key] = where
    return problems


def read_csv(text: str) -> CostImport:
    """Cost rows from CSV text (header ``date,channel,campaign,cost[,currency]``; campaign
    and currency optional). Every bad row is reported with its line number and column."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED_CSV_COLUMNS if name not in header]
    if missing:
        return CostImport(
            rows=0,
            items=[],
            errors=[{"line": 1, "column": name, "reason": "missing column"} for name in missing],
        )
    reader.fieldnames = header
    items: list[CostItem] = []
    lines: list[int] = []
    errors: list[dict[str, Any]] = []
    rows = 0
    for row in reader:
        rows += 1
        line = reader.line_num
        item, problems = _read_row(row, line)
        errors.extend(problems)
        if item is not None:
            items.append(item)
            lines.append(line)
    errors.extend(duplicate_errors(items, lines=lines))
    errors.sort(key=lambda problem: problem["line"])
    return CostImport(rows=rows, items=items, errors=errors)


def _read_row(row: dict[str, Any], line: int) -> tuple[CostItem | None, list[dict[str, Any]]]:
    def text(name: str) -> str:
        value = row.get(name)
        return value.strip() if isinstance(value, str) else ""

    problems: list[dict[str, Any]] = []

    def problem(column: str, reason: str) -> None:
        problems.append({"line": line, "column": column, "reason": reason})

    day: date | None = None
    try:
        day = date.fromisoformat(text("date").replace("/", "-"))
    except ValueError:
        problem("date", f"{text('date')!r} is not a date (YYYY-MM-DD)")
    if not text("channel"):
        problem("channel", "empty")
    elif len(text("channel")) > 64:
        problem("channel", "longer than 64 characters")
    if len(text("campaign")) > 128:
        problem("campaign", "longer than 128 characters")
    cost: Decimal | None = None
    try:
        cost = Decimal(text("cost").replace(",", ""))
        if not cost.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        problem("cost", f"{text('cost')!r} is not a number")
        cost = None
    if cost is not None:
        if cost < 0:
            problem("cost", f"negative ({cost})")
        elif cost > MAX_COST:
            problem("cost", "too large")
        elif cost != cost.quantize(Decimal("0.01")):
            problem("cost", f"more than 2 decimals ({cost})")
    currency = text("currency").upper() or "CNY"
    if len(currency) != 3 or not currency.isalpha():
        problem("currency", f"{currency!r} is not a 3-letter currency code")
    if problems or day is None or cost is None:
        return None, problems
    item = CostItem(
        date=day, channel=text("channel"), campaign=text("campaign"), cost=cost, currency=currency
    )
    return item, []


def store(events: EventStore, items: list[CostItem]) -> CostStored:
    """Store the items (all valid, keys unique), replacing rows with the same key."""
    problems = duplicate_errors(items)
    if problems:
        raise InvalidInputError(
            N_("{count} cost items repeat an earlier item's date, channel and campaign"),
            errors=problems,
            count=len(problems),
            field="items",
        )
    with _WRITE:
        existing = _stored(events)
        keys = {item.key for item in items}
        replaced = sum(1 for row in existing if _key(row) in keys)
        now = utcnow()
        kept = [row for row in existing if _key(row) not in keys]
        fresh = [
            {**item.model_dump(), "cost": item.cost.quantize(Decimal("0.01")), "updated_at": now}
            for item in items
        ]
        rows = sorted([*kept, *fresh], key=_key)
        events.replace_table(COSTS_TABLE, pa.Table.from_pylist(rows, schema=COSTS_SCHEMA))
    return CostStored(received=len(items), inserted=len(items) - replaced, replaced=replaced)


def _key(row: dict[str, Any]) -> tuple[date, str, str]:
    return (row["date"], row["channel"], row["campaign"])


def _stored(events: EventStore) -> list[dict[str, Any]]:
    if not events.has_table(COSTS_TABLE):
        return []
    rows: list[dict[str, Any]] = events.table(COSTS_TABLE).to_pyarrow().to_pylist()
    return rows


def _costs(events: EventStore) -> Any:
    """The costs table (an empty one when nothing was stored yet)."""
    if events.has_table(COSTS_TABLE):
        return events.table(COSTS_TABLE)
    return ibis.memtable(COSTS_SCHEMA.empty_table())


def list_costs(
    events: EventStore,
    *,
    start: date | None = None,
    end: date | None = None,
    channel: str | None = None,
    campaign: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> CostPage:
    """Stored costs by date, channel and campaign, filtered, a page at a time."""
    if not events.has_table(COSTS_TABLE):
        return CostPage(items=[], total=0, limit=limit, offset=offset)
    table = events.table(COSTS_TABLE)
    conditions = []
    if start is not None:
        conditions.append(table.date >= start)
    if end is not None:
        conditions.append(table.date <= end)
    if channel is not None:
        conditions.append(table.channel == channel)
    if campaign is not None:
        conditions.append(table.campaign == campaign)
    chosen = table.filter(*conditions) if conditions else table
    total = int(chosen.count().execute())
    page = (
        chosen.order_by(["date", "channel", "campaign"])
        .limit(limit, offset=offset)
        .to_pyarrow()
        .to_pylist()
    )
    return CostPage(
        items=[CostRead(**row) for row in page], total=total, limit=limit, offset=offset
    )


# -- return on the costs -----------------------------------------------------------------


class RoiQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    start: date | None = Field(None, alias="from")
    end: date | None = Field(None, alias="to")
    model: RuleModel = RuleModel.linear
    window: str = Field("30d", min_length=2, max_length=12)
    half_life: str = Field("7d", min_length=2, max_length=12)
    conversion: str = Field("order_paid", min_length=1, max_length=64)
    subtract_refunds: bool = False
    ltv_days: int = Field(365, ge=1, le=730, description="Days of revenue counted in LTV")


class RoiRow(BaseModel):
    channel: str
    campaign: str | None = None
    cost: float | None
    cost_days: int
    missing_cost_days: int
    conversions: float
    revenue: float
    roi: float | None
    roas: float | None
    new_customers: float
    cac: float | None
    ltv: float | None
    ltv_cac: float | None
    payback_days: int | None


class CostGap(BaseModel):
    channel: str
    dates: list[date]


class RoiResult(BaseModel):
    period: dict[str, str]
    model: RuleModel
    ltv_days: int
    channels: list[RoiRow]
    campaigns: list[RoiRow]
    gaps: list[CostGap]
    uncosted: list[str]


@dataclass
class _Key:
    conversions: float = 0.0
    revenue: float = 0.0
    new_customers: float = 0.0
    ltv_revenue: float = 0.0
    cost: float | None = None
    cost_days: int = 0
    by_day: dict[int, float] | None = None


def roi(events: EventStore, query: RoiQuery, *, tz: ZoneInfo) -> RoiResult:
    """Costs beside the model's credit per channel and campaign (cached per data version)."""
    setup = attribution.prepare(
        events,
        AttributionQuery(
            start=query.start,
            end=query.end,
            models=[attribution.Model(query.model.value)],
            window=query.window,
            half_life=query.half_life,
            conversion=query.conversion,
            subtract_refunds=query.subtract_refunds,
        ),
        tz=tz,
    )
    definition = {"query": query.model_dump(mode="json"), "period": setup.period.as_dict()}
    return cached(events, "roi", definition, lambda: _roi(events, setup, query))


def _roi(events: EventStore, setup: attribution.Setup, query: RoiQuery) -> RoiResult:
    period = setup.period
    weight_column = f"w_{query.model.value}"
    convs = attribution.conversions(events, setup)
    weights = attribution.credited(events, setup, convs)
    weights = weights.mutate(weight=weights[weight_column])
    keys: dict[tuple[str, str | None], _Key] = {}

    def at(channel: str, campaign: str | None) -> _Key:
        return keys.setdefault((channel, campaign or None), _Key())

    credit = weights.group_by("channel", "campaign").aggregate(
        conversions=weights.weight.sum(), revenue=(weights.weight * weights.revenue).sum()
    )
    for row in credit.to_pyarrow().to_pylist():
        key = at(row["channel"], row["campaign"])
        key.conversions, key.revenue = float(row["conversions"]), float(row["revenue"])

    # New customers: people whose first conversion ever is in the period, credited as the
    # model credits that first conversion; their revenue over ltv_days from it.
    everything = attribution.conversions(events, setup, whole_history=True)
    first_order = ibis.window(
        group_by=everything.person_id, order_by=[everything.conv_ts, everything.conversion_id]
    )
    firsts = everything.mutate(rank=ibis.row_number().over(first_order))
    firsts = firsts.filter(
        firsts.rank == 0, firsts.conv_ts >= period.start_utc, firsts.conv_ts < period.end_utc
    ).select(first_id=firsts.conversion_id, first_person=firsts.person_id, first_ts=firsts.conv_ts)
    acquired = weights.join(firsts, weights.conversion_id == firsts.first_id).select(
        "channel", "campaign", "weight", person=firsts.first_person, first_ts=firsts.first_ts
    )
    horizon = ibis.interval(days=query.ltv_days)
    later = everything.join(
        firsts,
        [
            everything.person_id == firsts.first_person,
            everything.conv_ts >= firsts.first_ts,
            everything.conv_ts < firsts.first_ts + horizon,
        ],
    )
    elapsed = later.conv_ts.epoch_seconds() - later.first_ts.epoch_seconds()
    daily = later.group_by(
        person=later.first_person, day=(elapsed / 86400).floor().cast("int64")
    ).aggregate(revenue=later.revenue.sum())
    spread = acquired.join(daily, acquired.person == daily.person)
    per_day = spread.group_by(spread.channel, spread.campaign, spread.day).aggregate(
        revenue=(spread.weight * spread.revenue).sum()
    )
    customers = acquired.group_by("channel", "campaign").aggregate(
        new_customers=acquired.weight.sum()
    )
    for row in customers.to_pyarrow().to_pylist():
        at(row["channel"], row["campaign"]).new_customers = float(row["new_customers"])
    for row in per_day.to_pyarrow().to_pylist():
        key = at(row["channel"], row["campaign"])
        key.by_day = key.by_day or {}
        key.by_day[int(row["day"])] = float(row["revenue"])
        key.ltv_revenue += float(row["revenue"])

    # Costs in the period; days without a row are gaps for every channel that has costs.
    costs = _costs(events)
    in_period = costs.filter(costs.date >= period.start, costs.date <= period.end)
    cost_rows = (
        in_period.group_by("channel", "campaign")
        .aggregate(cost=in_period.cost.cast("float64").sum(), days=in_period.date.nunique())
        .to_pyarrow()
        .to_pylist()
    )
    for row in cost_rows:
        key = at(row["channel"], row["campaign"])
        key.cost, key.cost_days = float(row["cost"]), int(row["days"])
    costed = costs.select("channel").distinct().to_pyarrow().column("channel").to_pylist()
    days_by_channel: dict[str, set[date]] = {channel: set() for channel in costed}
    present = in_period.select("channel", "date").distinct().to_pyarrow().to_pylist()
    for row in present:
        days_by_channel[row["channel"]].add(row["date"])
    every_day = [period.start + timedelta(days=i) for i in range(period.days)]
    gaps = [
        CostGap(channel=channel, dates=[d for d in every_day if d not in seen])
        for channel, seen in sorted(days_by_channel.items())
        if len(seen) < len(every_day)
    ]

    channels: dict[str, _Key] = {}
    for (channel, _campaign), key in keys.items():
        into = channels.setdefault(channel, _Key())
        into.conversions += key.conversions
        into.revenue += key.revenue
        into.new_customers += key.new_customers
        into.ltv_revenue += key.ltv_revenue
        if key.cost is not None:
            into.cost = (into.cost or 0.0) + key.cost
        for day, revenue in (key.by_day or {}).items():
            into.by_day = into.by_day or {}
            into.by_day[day] = into.by_day.get(day, 0.0) + revenue
    for channel, key in channels.items():
        key.cost_days = len(days_by_channel.get(channel, ()))
    uncosted = sorted(c for c, k in channels.items() if k.cost is None and c != DIRECT)
    return RoiResult(
        period=period.as_dict(),
        model=query.model,
        ltv_days=query.ltv_days,
        channels=_sorted(
            [
                _row(c, None, k, period.days - len(days_by_channel.get(c, ())))
                for c, k in channels.items()
            ]
        ),
        campaigns=_sorted(
            [
                _row(c, p, k, period.days - k.cost_days if k.cost is not None else period.days)
                for (c, p), k in keys.items()
            ]
        ),
        gaps=gaps,
        uncosted=uncosted,
    )


def _row(channel: str, campaign: str | None, key: _Key, missing_days: int) -> RoiRow:
    cost = key.cost
    cac = ratio(cost, key.new_customers) if cost is not None else None
    ltv = ratio(key.ltv_revenue, key.new_customers)
    return RoiRow(
        channel=channel,
        campaign=campaign,
        cost=round(cost, 2) if cost is not None else None,
        cost_days=key.cost_days,
        missing_cost_days=missing_days,
        conversions=round(key.conversions, 6),
        revenue=round(key.revenue, 2),
        roi=ratio(key.revenue - cost, cost) if cost is not None else None,
        roas=ratio(key.revenue, cost) if cost is not None else None,
        new_customers=round(key.new_customers, 6),
        cac=cac,
        ltv=ltv,
        ltv_cac=ratio(ltv, cac) if ltv is not None and cac is not None else None,
        payback_days=_payback(cost, key.by_day or {}),
    )


def _payback(cost: float | None, by_day: dict[int, float]) -> int | None:
    """The first day (0 = the day of the first order) by which the acquired customers'
    cumulative revenue reaches the cost; None when it never does (or the cost is unknown)."""
    if cost is None:
        return None
    if cost <= 0:
        return 0
    total = 0.0
    for day in sorted(by_day):
        total += by_day[day]
        if total >= cost - 1e-9:
            return day
    return None


def _sorted(rows: list[RoiRow]) -> list[RoiRow]:
    return sorted(
        rows, key=lambda r: (r.channel == DIRECT, -r.revenue, r.channel, r.campaign or "")
    )
