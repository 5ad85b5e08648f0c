"""Funnels: how many people go through ordered steps within a conversion window.

Counting (``docs/analytics-funnels.md`` states it for operators):

* A person's events are taken in the order (time, funnel position, event id): events at the
  same instant come in funnel order (an event matching an earlier step first), so a step done
  in the same second as the previous one counts as after it.
* Every step-1 event inside the period is an attempt. From an attempt, each later step is the
  earliest event matching it after the previous step's event (``any`` mode), or must be the
  very next funnel-step event (``strict`` mode: an event matching any step). A step counts
  when its event is at most ``window`` after the attempt's step-1 event, even after the
  period's end.
* An exclusion event between an attempt's ``from_step`` and ``to_step`` events (both instants
  included) disqualifies the attempt; when the attempt never reaches ``to_step``, one after
  its ``from_step`` event and within the window does.
* A person counts once, with the attempt reaching the furthest step (the earliest such
  attempt on ties); breakdown values, trend buckets and times all come from that attempt.

The engine is set-at-a-time: the greedy chain of every attempt is computed with window
functions over each person's ordered events (one pass per step, walking back from the last
step), so there is no self-join per step and no per-person loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.orm import Session

from siyu.analytics.common import (
    AnalysisError,
    Grain,
    Period,
    bucket,
    buckets,
    cached,
    check_event_names,
    parse_window,
    ratio,
    resolve_period,
    resolved_events,
)
from siyu.core.i18n import N_
from siyu.events import EventStore
from siyu.segments import service as segments
from siyu.segments.models import SegmentCreate, SegmentRead
from siyu.tags.compiler import event_field
from siyu.tags.definitions import EventFilter, is_event_field

MIN_STEPS, MAX_STEPS = 2, 20
EVENT_NAME = r"^[A-Za-z_][A-Za-z0-9_.:-]{0,99}$"
BREAKDOWN_FIELDS = (
    "channel", "source", "scene", "utm_source", "utm_medium", "utm_campaign", "category", "sku",
)  # fmt: skip
OTHER = "$other"
# Time-to-convert histogram: upper bounds in seconds (the last bucket is open).
HISTOGRAM_BOUNDS: tuple[tuple[str, int], ...] = (
    ("< 1m", 60), ("1-5m", 300), ("5-30m", 1800), ("30m-1h", 3600), ("1-6h", 6 * 3600),
    ("6-24h", 86400), ("1-3d", 3 * 86400), ("3-7d", 7 * 86400), ("7-14d", 14 * 86400),
    ("14-30d", 30 * 86400),
)  # fmt: skip
LAST_BUCKET = ">= 30d"


# -- definition -----------------------------------------------------------------------------------


class FunnelStep(BaseModel):
    """One step: an event name and optional filters on that event (all must hold)."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(pattern=EVENT_NAME, examples=["product_view"])
    where: list[EventFilter] = Field(default_factory=list, max_length=10)
    label: str | None = Field(default=None, max_length=100)


class Exclusion(BaseModel):
    """An event that disqualifies an attempt when it happens between two of its steps."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(pattern=EVENT_NAME, examples=["refund"])
    where: list[EventFilter] = Field(default_factory=list, max_length=10)
    from_step: int = Field(default=1, ge=1, le=MAX_STEPS, description="1-based step")
    to_step: int | None = Field(
        default=None, ge=2, le=MAX_STEPS, description="1-based step; default the last"
    )


class FunnelDefinition(BaseModel):
    """Ordered steps, a window, the order mode, exclusions, a breakdown and a trend grain."""

    model_config = ConfigDict(extra="forbid")

    steps: list[FunnelStep] = Field(min_length=MIN_STEPS, max_length=MAX_STEPS)
    window: str = Field(default="7d", max_length=20, examples=["7d"])
    mode: Literal["any", "strict"] = "any"
    exclusions: list[Exclusion] = Field(default_factory=list, max_length=10)
    breakdown: str | None = Field(
        default=None,
        max_length=120,
        description="channel, source, scene, utm_source, utm_medium, utm_campaign, category, "
        "sku or properties.KEY, read on the entry (step-1) event",
    )
    breakdown_limit: int = Field(default=10, ge=1, le=100)
    grain: Grain = Grain.day
    start: date | None = None
    end: date | None = None

    @field_validator("breakdown")
    @classmethod
    def _known_breakdown(cls, value: str | None) -> str | None:
        if value is None or value in BREAKDOWN_FIELDS:
            return value
        if value.startswith("properties.") and is_event_field(value):
            return value
        raise ValueError(f"cannot break down by {value!r}")

    @model_validator(mode="after")
    def _exclusions_inside(self) -> FunnelDefinition:
        for item in self.exclusions:
            last = item.to_step or len(self.steps)
            if item.from_step >= last or last > len(self.steps):
                raise ValueError("an exclusion needs 1 <= from_step < to_step <= steps")
        return self


# -- result ---------------------------------------------------------------------------------------


class StepResult(BaseModel):
    step: int
    event: str
    label: str
    count: int
    conversion_from_start: float | None
    conversion_from_previous: float | None
    dropped: int = Field(description="People who reached the previous step but not this one")
    median_seconds_from_previous: float | None
    p90_seconds_from_previous: float | None


class HistogramBucket(BaseModel):
    label: str
    min_seconds: int
    max_seconds: int | None
    count: int


class TimeToConvert(BaseModel):
    """From step 1 to the last step, over the people who reached the last step."""

    people: int
    median_seconds: float | None
    p90_seconds: float | None
    histogram: list[HistogramBucket]


class BreakdownRow(BaseModel):
    value: str | None = Field(description="None: not set; '$other': the values beyond the limit")
    counts: list[int]
    conversion: float | None


class TrendPoint(BaseModel):
    bucket: date
    entered: int
    converted: int
    conversion: float | None


class FunnelResult(BaseModel):
    period: dict[str, str]
    window_seconds: int
    mode: str
    steps: list[StepResult]
    conversion: float | None = Field(description="Last step over first step")
    time_to_convert: TimeToConvert
    breakdown: str | None = None
    breakdown_rows: list[BreakdownRow] = Field(default_factory=list)
    grain: Grain
    trend: list[TrendPoint]


# -- engine ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    definition: FunnelDefinition
    period: Period
    window: timedelta

    @property
    def n(self) -> int:
        return len(self.definition.steps)


def _matches(rows: ir.Table, event: str, where: list[EventFilter]) -> ir.BooleanValue:
    condition: ir.BooleanValue = rows.name == event
    for item in where:
        condition &= _filter(rows, item)
    return condition.fill_null(False)


def _filter(rows: ir.Table, item: EventFilter) -> ir.BooleanValue:
    numeric = isinstance(item.value, int | float) and not isinstance(item.value, bool)
    value: Any = event_field(rows, item.field, numeric=numeric)
    match item.op:
        case "=":
            return value == item.value
        case "!=":
            return value != item.value
        case "in":
            return value.isin(_listed(item.value))
        case "not in":
            return value.notin(_listed(item.value))
        case ">":
            return value > item.value
        case ">=":
            return value >= item.value
        case "<":
            return value < item.value
        case "<=":
            return value <= item.value
        case "is null":
            return value.isnull()
        case "is not null":
            return value.notnull()
    raise AssertionError(item.op)


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _step_rows(events: EventStore, plan: _Plan) -> ir.Table:
    """The events that match a step or an exclusion, with flags ``s0..``, ``x0..``, the
    funnel position ``prio`` and, per exclusion, ``e{i}``: the first exclusion instant at or
    after the event's."""
    steps, exclusions = plan.definition.steps, plan.definition.exclusions
    names = sorted({s.event for s in steps} | {x.event for x in exclusions})
    rows = resolved_events(
        events,
        plan.period.offset,
        start=plan.period.start_utc,
        end=plan.period.end_utc + plan.window,
        names=names,
    )
    filters = [f for s in steps for f in s.where] + [f for x in exclusions for f in x.where]
    if any(f.field == "hour" for f in filters):
        rows = rows.mutate(hour=rows.local_ts.hour())
    flags = {f"s{j}": _matches(rows, s.event, s.where) for j, s in enumerate(steps)}
    flags |= {f"x{i}": _matches(rows, x.event, x.where) for i, x in enumerate(exclusions)}
    breakdown = plan.definition.breakdown
    label: Any = event_field(rows, breakdown).cast("string") if breakdown else ibis.null(str)
    rows = rows.filter(ibis.or_(*flags.values())).select(
        "person_id", "event_id", "ts", "local_date", bd=label, **flags
    )
    prio = ibis.cases(*((rows[f"s{j}"], j) for j in range(plan.n)), else_=plan.n)
    rows = rows.mutate(prio=prio)
    if exclusions:
        by_time = ibis.window(group_by=rows.person_id, order_by=rows.ts, range=(0, None))
        rows = rows.mutate(
            **{
                f"e{i}": ibis.ifelse(rows[f"x{i}"], rows.ts, ibis.null("timestamp"))
                .min()
                .over(by_time)
                for i in range(len(exclusions))
            }
        )
    return rows.filter(ibis.or_(*(rows[f"s{j}"] for j in range(plan.n))))


def _order(rows: ir.Table) -> list[Any]:
    return [rows.ts, rows.prio, rows.event_id]


def _chains_any(rows: ir.Table, plan: _Plan) -> ir.Table:
    """Per row, as if it were step 1: ``t{m}`` the instant of step m on the greedy chain from
    it, and ``y{i}`` the exclusion instant seen from the chain's from-step event.

    Walking back from the last step: the chain from a row taken as step k continues at the
    first later row matching step k+1, and since chains from later rows never end earlier,
    that row's values are the minimum over all later rows matching step k+1."""
    n = plan.n
    froms = [x.from_step - 1 for x in plan.definition.exclusions]
    following = ibis.window(group_by=rows.person_id, order_by=_order(rows), rows=(1, None))
    # Level k: c{m} (m > k) = the chain's instants from the row taken as step k; z{i} = the
    # exclusion instant seen from the chain's from-step event (when it is after step k).
    for k in range(n - 2, -1, -1):
        nxt = rows[f"s{k + 1}"]
        values: dict[str, Any] = {f"n{k + 1}": ibis.ifelse(nxt, rows.ts, ibis.null("timestamp"))}
        for m in range(k + 2, n):
            values[f"n{m}"] = ibis.ifelse(nxt, rows[f"c{m}"], ibis.null("timestamp"))
        for i, start in enumerate(froms):
            if start == k + 1:
                values[f"w{i}"] = ibis.ifelse(nxt, rows[f"e{i}"], ibis.null("timestamp"))
            elif start > k + 1:
                values[f"w{i}"] = ibis.ifelse(nxt, rows[f"z{i}"], ibis.null("timestamp"))
        mins = {
            ("c" + key[1:] if key.startswith("n") else "z" + key[1:]): value.min().over(following)
            for key, value in values.items()
        }
        rows = rows.mutate(**mins)
    renamed = {f"t{m}": rows[f"c{m}"] for m in range(1, n)}
    for i, start in enumerate(froms):
        renamed[f"y{i}"] = rows[f"e{i}"] if start == 0 else rows[f"z{i}"]
    return rows.mutate(**renamed)


def _chains_strict(rows: ir.Table, plan: _Plan) -> ir.Table:
    """Per row, as if it were step 1: the instants of the next funnel-step events while each
    matches the next step (``t{m}``), and the exclusion instants seen from the from-step."""
    n = plan.n
    ordered = ibis.window(group_by=rows.person_id, order_by=_order(rows))
    ok: ir.BooleanValue = ibis.literal(True)
    values: dict[str, Any] = {}
    for m in range(1, n):
        ok = ok & rows[f"s{m}"].lead(m).over(ordered).fill_null(False)
        values[f"t{m}"] = ibis.ifelse(ok, rows.ts.lead(m).over(ordered), ibis.null("timestamp"))
    for i, item in enumerate(plan.definition.exclusions):
        start = item.from_step - 1
        values[f"y{i}"] = rows[f"e{i}"] if start == 0 else rows[f"e{i}"].lead(start).over(ordered)
    return rows.mutate(**values)


def attempts(events: EventStore, plan: _Plan) -> ir.Table:
    """Every attempt (a step-1 event in the period) with ``reached`` (1..n), the instants
    ``t0..`` of its steps (null beyond ``reached``) and ``excluded``."""
    rows = _step_rows(events, plan)
    chains = (
        _chains_any(rows, plan) if plan.definition.mode == "any" else _chains_strict(rows, plan)
    )
    return _attempts_from(chains, plan)


def _attempts_from(chains: ir.Table, plan: _Plan) -> ir.Table:
    """The attempts, given each step-1 row's chain instants ``t1..`` (see :func:`attempts`)."""
    entries = chains.filter(
        chains.s0, chains.ts >= plan.period.start_utc, chains.ts < plan.period.end_utc
    )
    deadline = entries.ts + ibis.interval(seconds=int(plan.window.total_seconds()))
    inside = {
        m: entries[f"t{m}"].notnull() & (entries[f"t{m}"] <= deadline) for m in range(1, plan.n)
    }
    reached = sum((inside[m].cast("int32") for m in range(1, plan.n)), ibis.literal(1))
    entries = entries.mutate(t0=entries.ts, reached=reached)
    excluded: ir.BooleanValue = ibis.literal(False)
    for i, item in enumerate(plan.definition.exclusions):
        start, end = item.from_step - 1, (item.to_step or plan.n) - 1
        seen = entries[f"y{i}"]
        hit = ibis.cases(
            (entries.reached > end, seen <= entries[f"t{end}"]),
            (entries.reached > start, seen <= deadline),
            else_=False,
        )
        excluded = excluded | hit.fill_null(False)
    steps = {
        f"t{m}": ibis.ifelse(entries.reached > m, entries[f"t{m}"], ibis.null("timestamp"))
        for m in range(1, plan.n)
    }
    return entries.mutate(excluded=excluded, **steps).select(
        "person_id", "event_id", "prio", "local_date", "bd", "reached", "excluded", "t0",
        *steps,
    )  # fmt: skip


def people(events: EventStore, plan: _Plan) -> ir.Table:
    """One row per person who entered: the best clean attempt (furthest step, then earliest)."""
    return _best(attempts(events, plan))


def _best(rows: ir.Table) -> ir.Table:
    rows = rows.filter(~rows.excluded)
    best = ibis.window(
        group_by=rows.person_id, order_by=[rows.reached.desc(), rows.t0, rows.prio, rows.event_id]
    )
    rows = rows.mutate(rank=ibis.row_number().over(best))
    return rows.filter(rows["rank"] == 0).drop("rank", "excluded", "prio", "event_id")


def people_table(events: EventStore, plan: _Plan) -> pa.Table:
    """:func:`people`, computed. Funnels whose chain ASOF joins can find (see
    :func:`_asof_applies`) read their step events once into an engine temp table and join
    it once per step; the others sort each person's events once per step."""
    if not _asof_applies(plan):
        return people(events, plan).to_pyarrow()
    with _step_rows(events, plan).cache() as rows:
        result: pa.Table = _best(_attempts_from(_chains_asof(rows, plan), plan)).to_pyarrow()
    return result


def _asof_applies(plan: _Plan) -> bool:
    """Whether ASOF joins give the same greedy chain: any order, no exclusions and a different
    event for every step (so no event serves two steps, and a next-step event at the same
    instant counts as after, as in the window form)."""
    definition = plan.definition
    names = [step.event for step in definition.steps]
    return definition.mode == "any" and not definition.exclusions and len(set(names)) == len(names)


def _chains_asof(rows: ir.Table, plan: _Plan) -> ir.Table:
    """The entries with ``t1..``: step m is the earliest event of step m at or after step m-1
    (nothing once a step is missing)."""
    chain = rows.filter(rows.s0, rows.ts >= plan.period.start_utc, rows.ts < plan.period.end_utc)
    previous = "ts"
    for m in range(1, plan.n):
        step = rows.filter(rows[f"s{m}"]).select(step_person="person_id", **{f"t{m}": rows.ts})
        chain = chain.asof_join(
            step,
            on=chain[previous] <= step[f"t{m}"],
            predicates=[chain.person_id == step.step_person],
        ).drop("step_person")
        found = chain[f"t{m}"]
        chain = chain.mutate(
            **{
                f"t{m}": ibis.cases(
                    (chain[previous].notnull(), found), else_=ibis.null(found.type())
                )
            }
        )
        previous = f"t{m}"
    return chain


def plan_of(events: EventStore, definition: FunnelDefinition, tz: Any) -> _Plan:
    """Check the definition against the store and resolve its period and window."""
    window = parse_window(definition.window)
    period = resolve_period(events, tz, definition.start, definition.end)
    names = [s.event for s in definition.steps] + [x.event for x in definition.exclusions]
    check_event_names(events, list(dict.fromkeys(names)), field="steps")
    return _Plan(definition, period, window)


def compute(events: EventStore, definition: FunnelDefinition, *, tz: Any) -> FunnelResult:
    """The funnel (cached by definition and data version)."""
    plan = plan_of(events, definition, tz)
    key = definition.model_dump(mode="json") | {"period": plan.period.as_dict()}
    return cached(events, "funnel", key, lambda: _compute(events, plan))


def _compute(events: EventStore, plan: _Plan) -> FunnelResult:
    backend = events.table().get_backend()
    table = people_table(events, plan)
    persons = ibis.memtable(table)
    n = plan.n
    micros = {
        m: persons[f"t{m}"].delta(persons[f"t{m - 1}"], unit="microsecond").cast("float64") / 1e6
        for m in range(1, n)
    }
    total = persons[f"t{n - 1}"].delta(persons.t0, unit="microsecond").cast("float64") / 1e6
    measures: dict[str, Any] = {f"c{m}": (persons.reached > m).sum() for m in range(n)}
    for m in range(1, n):
        measures[f"med{m}"] = micros[m].quantile(0.5)
        measures[f"p90{m}"] = micros[m].quantile(0.9)
    measures["tmed"] = total.quantile(0.5)
    measures["tp90"] = total.quantile(0.9)
    lower = 0
    for index, (_label, upper) in enumerate(HISTOGRAM_BOUNDS):
        measures[f"h{index}"] = ((total >= lower) & (total < upper)).sum()
        lower = upper
    measures[f"h{len(HISTOGRAM_BOUNDS)}"] = (total >= lower).sum()
    summary = backend.to_pyarrow(persons.aggregate(**measures)).to_pylist()[0]
    counts = [int(summary[f"c{m}"] or 0) for m in range(n)]
    steps = []
    for m, spec in enumerate(plan.definition.steps):
        previous = counts[m - 1] if m else counts[0]
        steps.append(
            StepResult(
                step=m + 1,
                event=spec.event,
                label=spec.label or spec.event,
                count=counts[m],
                conversion_from_start=ratio(counts[m], counts[0]),
                conversion_from_previous=ratio(counts[m], previous),
                dropped=previous - counts[m],
                median_seconds_from_previous=summary.get(f"med{m}"),
                p90_seconds_from_previous=summary.get(f"p90{m}"),
            )
        )
    histogram: list[HistogramBucket] = []
    lower = 0
    bounds: list[tuple[str, int | None]] = [*HISTOGRAM_BOUNDS, (LAST_BUCKET, None)]
    for index, (label, top) in enumerate(bounds):
        histogram.append(
            HistogramBucket(
                label=label,
                min_seconds=lower,
                max_seconds=top,
                count=int(summary[f"h{index}"] or 0),
            )
        )
        if top is not None:
            lower = top
    return FunnelResult(
        period=plan.period.as_dict(),
        window_seconds=int(plan.window.total_seconds()),
        mode=plan.definition.mode,
        steps=steps,
        conversion=ratio(counts[-1], counts[0]),
        time_to_convert=TimeToConvert(
            people=counts[-1],
            median_seconds=summary["tmed"],
            p90_seconds=summary["tp90"],
            histogram=histogram,
        ),
        breakdown=plan.definition.breakdown,
        breakdown_rows=_breakdown(backend, persons, plan),
        grain=plan.definition.grain,
        trend=_trend(backend, persons, plan),
    )


def _breakdown(backend: Any, persons: ir.Table, plan: _Plan) -> list[BreakdownRow]:
    if plan.definition.breakdown is None:
        return []
    measures = {f"c{m}": (persons.reached > m).sum() for m in range(plan.n)}
    grouped = backend.to_pyarrow(persons.group_by("bd").aggregate(**measures)).to_pylist()
    grouped.sort(key=lambda r: (-r["c0"], r["bd"] is None, r["bd"] or ""))
    limit = plan.definition.breakdown_limit
    kept, rest = grouped[:limit], grouped[limit:]
    rows = [(r["bd"], [int(r[f"c{m}"]) for m in range(plan.n)]) for r in kept]
    if rest:
        rows.append((OTHER, [sum(int(r[f"c{m}"]) for r in rest) for m in range(plan.n)]))
    return [BreakdownRow(value=v, counts=c, conversion=ratio(c[-1], c[0])) for v, c in rows]


def _trend(backend: Any, persons: ir.Table, plan: _Plan) -> list[TrendPoint]:
    grain = plan.definition.grain
    grouped = persons.group_by(day=bucket(persons.local_date, grain)).aggregate(
        entered=persons.count(), converted=(persons.reached >= plan.n).sum()
    )
    found = {r["day"]: r for r in backend.to_pyarrow(grouped).to_pylist()}
    points = []
    for day in buckets(plan.period, grain):
        row = found.get(day, {"entered": 0, "converted": 0})
        entered, converted = int(row["entered"]), int(row["converted"] or 0)
        points.append(
            TrendPoint(
                bucket=day,
                entered=entered,
                converted=converted,
                conversion=ratio(converted, entered),
            )
        )
    return points


# -- drop-off segment -----------------------------------------------------------------------------


def dropped_people(
    events: EventStore, definition: FunnelDefinition, step: int, *, tz: Any
) -> ir.Table:
    """People who reached step ``step - 1`` but not step ``step`` (1-based, 2..n)."""
    plan = plan_of(events, definition, tz)
    if not 2 <= step <= plan.n:
        raise AnalysisError(
            N_("Step {step} is not a step people can drop off at: choose 2 to {last}"),
            field="step",
            step=step,
            last=plan.n,
        )
    persons = ibis.memtable(people_table(events, plan))
    return persons.filter(persons.reached == step - 1).select("person_id")


def save_dropoff_segment(
    db_session: Session,
    events: EventStore,
    definition: FunnelDefinition,
    *,
    step: int,
    key: str,
    name: str,
    tz: Any,
) -> tuple[SegmentRead, dict[str, int]]:
    """A static segment of the people who dropped off before ``step``."""
    ids = dropped_people(events, definition, step, tz=tz).to_pyarrow().column("person_id")
    world = segments.world(db_session, events, tz=tz)
    spec = SegmentCreate(
        key=key,
        name=name,
        kind="static",
        schedule="manual",
        description=f"Funnel drop-off before step {step}",
    )
    created = segments.create_segment(db_session, world, spec)
    result = segments.upload_members(db_session, events, key, ids.to_pylist())
    return segments.get_segment(db_session, created.key), result


# -- text forms (CLI) -----------------------------------------------------------------------------

_CONDITION = re.compile(
    r"^\s*(?P<field>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>!=|>=|<=|=|>|<|\bnot in\b|\bin\b)\s*"
    r"(?P<value>.+?)\s*$"
)


def parse_condition(text: str, *, field: str = "where") -> EventFilter:
    """``properties.category = '美妆'``, ``amount >= 100``, ``channel in ('wecom', 'web')``."""
    match = _CONDITION.match(text)
    if match is None:
        raise AnalysisError(
            N_("{value!r} is not a condition: write FIELD OP VALUE, like amount >= 100"),
            field=field,
            value=text,
        )
    raw = match.group("value")
    value: Any
    if raw.startswith("(") and raw.endswith(")"):
        value = [_literal(part) for part in raw[1:-1].split(",") if part.strip()]
        value = [str(v) for v in value]
    else:
        value = _literal(raw)
    try:
        return EventFilter.model_validate(
            {"field": match.group("field"), "op": match.group("op"), "value": value}
        )
    except ValueError as exc:
        raise AnalysisError(
            N_("{value!r} is not a condition: {reason}"), field=field, value=text, reason=str(exc)
        ) from None


def _literal(raw: str) -> str | float | int:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


__all__ = [
    "BreakdownRow",
    "Exclusion",
    "FunnelDefinition",
    "FunnelResult",
    "FunnelStep",
    "StepResult",
    "compute",
    "dropped_people",
    "parse_condition",
    "save_dropoff_segment",
]
