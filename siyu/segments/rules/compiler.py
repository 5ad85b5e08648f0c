"""Rule → Ibis: one wide per-person table, one boolean expression over it.

The universe is joined (left) with the tag and trait columns the rule uses and with ONE
per-person aggregate over the events computing every event leaf's measure as a filtered
aggregate in a single scan over the smallest window covering them all. Consent, static segments
and sequences are membership tests (``person_id IN (subquery)``), each sequence one self-join
query. Every leaf is made two-valued (null → false), so ``not X`` is the universe minus X and
De Morgan and distributivity hold on member sets. Dynamic segments referenced by the rule are
compiled inline.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import reduce
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from siyu.segments.rules.ast import (
    PROPERTY_PREFIX,
    RULE_NODE_TYPES,
    And,
    ConsentCondition,
    DateLiteral,
    DidCondition,
    EventCondition,
    FieldCondition,
    Measure,
    Not,
    Op,
    Or,
    Rule,
    Scalar,
    SegmentCondition,
    SequenceCondition,
    TagCondition,
    TraitCondition,
    Value,
    Where,
    WhereAnd,
    WhereNot,
    WhereOr,
    Window,
)
from siyu.segments.rules.check import check, leaves
from siyu.segments.rules.context import RuleContext

_DAY_SECONDS = 86_400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def compile_rule(rule: Rule, ctx: RuleContext) -> ir.Table:
    """The members of ``rule``: a table with one column ``person_id``, one row per member.

    The rule is checked first (:func:`check`), so unknown names, type mismatches and cyclic
    segment references raise before any query is built.
    """
    check(rule, ctx)
    return _Compiler(ctx).members(rule)


def count_rule(rule: Rule, ctx: RuleContext) -> int:
    """How many people ``rule`` selects (the live preview)."""
    return int(compile_rule(rule, ctx).count().execute())


# A measure is computed once however many leaves use it: the key is everything but the
# comparison.
_MeasureKey = tuple[str, Window | None, Where | None, Measure, str | None]


@dataclass
class _Plan:
    tags: dict[str, str] = field(default_factory=dict)
    traits: dict[str, str] = field(default_factory=dict)
    measures: dict[_MeasureKey, str] = field(default_factory=dict)


class _Compiler:
    def __init__(self, ctx: RuleContext) -> None:
        self.ctx = ctx
        self.plan = _Plan()
        self.segments: dict[str, Rule | ir.Table] = {}
        self.expanded: set[str] = set()
        self.today = ctx.now.astimezone(ctx.timezone).date()

    def members(self, rule: Rule) -> ir.Table:
        self.collect(rule)
        wide = self.wide_table()
        return wide.filter(self.predicate(rule, wide)).select("person_id")

    # -- what the rule needs -------------------------------------------------------------

    def segment(self, key: str) -> Rule | ir.Table:
        if key not in self.segments:
            found = self.ctx.segment(key)
            assert found is not None  # check() refused unknown segments
            self.segments[key] = found
        return self.segments[key]

    def collect(self, rule: Rule) -> None:
        plan = self.plan
        for leaf in leaves(rule):
            if isinstance(leaf, TagCondition):
                plan.tags.setdefault(leaf.tag, f"tag__{leaf.tag}")
            elif isinstance(leaf, TraitCondition):
                plan.traits.setdefault(leaf.trait, f"trait__{leaf.trait}")
            elif isinstance(leaf, EventCondition | DidCondition):
                key = _measure_key(leaf)
                plan.measures.setdefault(key, f"measure__{len(plan.measures)}")
            elif isinstance(leaf, SegmentCondition):
                found = self.segment(leaf.segment)
                if isinstance(found, RULE_NODE_TYPES) and leaf.segment not in self.expanded:
                    self.expanded.add(leaf.segment)
                    self.collect(found)

    # -- the wide table ------------------------------------------------------------------

    def wide_table(self) -> ir.Table:
        ctx, plan = self.ctx, self.plan
        wide = ctx.people().select("person_id")
        if plan.tags:
            tags = ctx.tags()
            wide = _attach(wide, tags, {alias: tags[key] for key, alias in plan.tags.items()})
        if plan.traits:
            traits = ctx.traits()
            columns = {alias: traits[key] for key, alias in plan.traits.items()}
            wide = _attach(wide, traits, columns)
        if plan.measures:
            wide = _attach_all(wide, self.event_measures())
        return wide

    def bounds(self, window: Window | None) -> tuple[datetime | None, datetime | None]:
        """The UTC instants [low, high) of a window (None = unbounded)."""
        if window is None:
            return None, None
        after_now = self.ctx.now + timedelta(microseconds=1)
        if window.last_days is not None:
            first = self.today - timedelta(days=window.last_days - 1)
            return _midnight(first, self.ctx.timezone), after_now
        if window.since is not None:
            return _midnight(window.since, self.ctx.timezone), after_now
        assert window.between is not None
        low, high = window.between
        return (
            _midnight(low, self.ctx.timezone),
            _midnight(high + timedelta(days=1), self.ctx.timezone),
        )

    def in_window(self, ts: ir.TimestampValue, window: Window | None) -> ir.BooleanValue:
        low, high = self.bounds(window)
        conditions = [ts >= ibis.literal(low)] if low is not None else []
        if high is not None:
            conditions.append(ts < ibis.literal(high))
        if not conditions:
            return ibis.literal(True)
        return reduce(lambda a, b: a & b, conditions)

    def covering(self, windows: list[Window | None]) -> tuple[datetime | None, datetime | None]:
        spans = [self.bounds(window) for window in windows]
        lows = [low for low, _ in spans]
        highs = [high for _, high in spans]
        low = None if any(v is None for v in lows) else min(v for v in lows if v is not None)
        high = None if any(v is None for v in highs) else max(v for v in highs if v is not None)
        return low, high

    def scoped_events(self, scopes: list[tuple[str, Window | None]]) -> ir.Table:
        """The resolved events any of the (name, window) scopes needs, in one filter: the
        covering time range first (so an engine can skip whole row groups of an event store
        appended in time order), then each name in its own window."""
        events = self.ctx.events()
        condition = events.person_id.notnull()
        low, high = self.covering([window for _, window in scopes])
        if low is not None:
            condition = condition & (events.ts >= ibis.literal(low))
        if high is not None:
            condition = condition & (events.ts < ibis.literal(high))
        windows_by_name: dict[str, set[Window | None]] = {}
        for name, window in scopes:
            windows_by_name.setdefault(name, set()).add(window)
        alternatives = []
        for name in sorted(windows_by_name):
            windows = windows_by_name[name]
            in_any = (
                self.in_window(events.ts, None)
                if None in windows
                else _any([self.in_window(events.ts, w) for w in _sorted_windows(windows)])
            )
            alternatives.append((events.name == name) & in_any)
        return events.filter(condition & _any(alternatives))

    def event_measures(self) -> ir.Table:
        keys = list(self.plan.measures)
        events = self.scoped_events([(key[0], key[1]) for key in keys])
        local_day: ir.IntegerValue | None = None
        aggregates: dict[str, Any] = {}
        for key, alias in self.plan.measures.items():
            name, window, where, measure, of = key
            condition = (events.name == name) & self.in_window(events.ts, window)
            if where is not None:
                condition = condition & _where(where, events)
            if measure is Measure.COUNT:
                aggregates[alias] = events.count(where=condition)
            elif measure is Measure.DAYS:
                if local_day is None:
                    local_day = self.local_day(events.ts, [key[1] for key in keys])
                aggregates[alias] = local_day.nunique(where=condition)
            else:
                assert of is not None
                value = _number_field(events, of)
                reducer = {
                    Measure.SUM: value.sum,
                    Measure.AVG: value.mean,
                    Measure.MAX: value.max,
                    Measure.MIN: value.min,
                }[measure]
                aggregates[alias] = reducer(where=condition)
        return events.group_by("person_id").aggregate(**aggregates)

    def local_day(self, ts: ir.TimestampValue, windows: list[Window | None]) -> ir.IntegerValue:
        """The local calendar day of ``ts`` (days since 1970-01-01 in the context's zone)."""
        low, high = self.covering(windows)
        offsets = _offsets(self.ctx.timezone, low or _EPOCH, high or self.ctx.now)
        first_offset = offsets[0][1]
        offset: ir.IntegerValue = ibis.literal(first_offset)
        if len(offsets) > 1:
            branches = [
                (ts < ibis.literal(start), previous[1])
                for previous, (start, _) in itertools.pairwise(offsets)
            ]
            offset = ibis.cases(*branches, else_=offsets[-1][1])
        seconds = _epoch_seconds(ts) + offset
        return (seconds // _DAY_SECONDS).cast("int64")

    def consent_members(self, channel: str) -> ir.Table | None:
        consent = self.ctx.consent()
        if consent is None:
            return None
        return consent.filter(
            (consent.channel == channel)
            & (consent.granted == ibis.literal(True))
            & consent.person_id.notnull()
        )

    def sequence_members(self, sequence: SequenceCondition) -> ir.Table:
        """The people who did the steps in order (``p0``: one row per matching chain)."""
        steps = sequence.sequence
        events = self.scoped_events([(step, sequence.window) for step in steps])
        repeated = len(set(steps)) < len(steps)
        if repeated:
            events = events.mutate(seq_rn=ibis.row_number().over(order_by=[events.ts]))
        parts: list[ir.Table] = []
        for index, step in enumerate(steps):
            step_events = events.filter(events.name == step)
            columns = {f"p{index}": step_events.person_id, f"ts{index}": step_events.ts}
            if repeated:
                columns[f"rn{index}"] = step_events.seq_rn
            parts.append(step_events.select(**columns))
        joined = parts[0]
        limit = joined.ts0 + ibis.interval(days=sequence.within_days)
        for index in range(1, len(steps)):
            part = parts[index]
            predicates = [
                joined.p0 == part[f"p{index}"],
                part[f"ts{index}"] >= joined[f"ts{index - 1}"],
                part[f"ts{index}"] <= limit,
            ]
            predicates += [
                part[f"rn{index}"] > joined[f"rn{earlier}"]
                for earlier in range(index)
                if steps[earlier] == steps[index]
            ]
            joined = joined.inner_join(part, predicates)
            limit = joined.ts0 + ibis.interval(days=sequence.within_days)
        return joined.select(person_id=joined.p0)

    # -- the predicate -------------------------------------------------------------------

    def predicate(self, rule: Rule, wide: ir.Table) -> ir.BooleanValue:
        if isinstance(rule, And):
            return reduce(lambda a, b: a & b, (self.predicate(r, wide) for r in rule.and_))
        if isinstance(rule, Or):
            return reduce(lambda a, b: a | b, (self.predicate(r, wide) for r in rule.or_))
        if isinstance(rule, Not):
            return ~self.predicate(rule.not_, wide)
        return _definite(self.leaf(rule, wide))

    def leaf(self, rule: Rule, wide: ir.Table) -> ir.BooleanValue:
        plan = self.plan
        if isinstance(rule, TagCondition):
            return _compare(wide[plan.tags[rule.tag]], rule.op, rule.value)
        if isinstance(rule, TraitCondition):
            return _compare(wide[plan.traits[rule.trait]], rule.op, rule.value)
        if isinstance(rule, ConsentCondition):
            granted = self.consent_members(rule.consent)
            if granted is None:
                return ibis.literal(False)
            return wide.person_id.isin(granted.person_id)
        if isinstance(rule, EventCondition):
            value = wide[plan.measures[_measure_key(rule)]]
            if rule.measure in (Measure.COUNT, Measure.DAYS, Measure.SUM):
                value = value.fill_null(0)
            return _compare(value, rule.op, rule.value)
        if isinstance(rule, DidCondition):
            count = wide[plan.measures[_measure_key(rule)]].fill_null(0)
            return count > 0 if rule.did else count == 0
        if isinstance(rule, SequenceCondition):
            return wide.person_id.isin(self.sequence_members(rule).person_id)
        assert isinstance(rule, SegmentCondition)
        found = self.segment(rule.segment)
        if isinstance(found, RULE_NODE_TYPES):
            return self.predicate(found, wide)
        assert isinstance(found, ir.Table)
        return wide.person_id.isin(found.filter(found.person_id.notnull()).person_id)


def _any(conditions: list[ir.BooleanValue]) -> ir.BooleanValue:
    return reduce(lambda a, b: a | b, conditions)


def _sorted_windows(windows: set[Window | None]) -> list[Window]:
    """Windows in a stable order, so the same rule always compiles to the same SQL."""
    return sorted((w for w in windows if w is not None), key=lambda w: w.model_dump_json())


def _measure_key(leaf: EventCondition | DidCondition) -> _MeasureKey:
    if isinstance(leaf, DidCondition):
        return (leaf.event, leaf.window, leaf.where, Measure.COUNT, None)
    return (leaf.event, leaf.window, leaf.where, leaf.measure, leaf.of)


def _attach(wide: ir.Table, right: ir.Table, columns: dict[str, Any]) -> ir.Table:
    """Left-join ``columns`` of ``right`` (one row per person) onto ``wide``."""
    return _attach_all(wide, right.select(person_id=right.person_id, **columns))


def _attach_all(wide: ir.Table, right: ir.Table) -> ir.Table:
    keyed = right.rename(join_person_id="person_id")
    joined = wide.left_join(keyed, wide.person_id == keyed.join_person_id)
    return joined.drop("join_person_id")


def _definite(value: ir.BooleanValue) -> ir.BooleanValue:
    return value.fill_null(False)


def _literal(value: Scalar) -> Any:
    return value.date if isinstance(value, DateLiteral) else value


def _compare(column: Any, op: Op, value: Value) -> ir.BooleanValue:
    items = [_literal(v) for v in value] if isinstance(value, tuple) else []
    single = _literal(value) if value is not None and not isinstance(value, tuple) else None
    if op is Op.IS_NULL:
        return column.isnull()
    if op is Op.IS_NOT_NULL:
        return column.notnull()
    if op is Op.CONTAINS:
        return column.contains(single)
    if op is Op.CONTAINS_ANY:
        return reduce(lambda a, b: a | b, (column.contains(v) for v in items))
    if op is Op.CONTAINS_ALL:
        return reduce(lambda a, b: a & b, (column.contains(v) for v in items))
    if op is Op.BETWEEN:
        return column.between(items[0], items[1])
    if op is Op.IN:
        return column.isin(items)
    if op is Op.NOT_IN:
        return ~column.isin(items)
    comparisons = {
        Op.EQ: column.__eq__,
        Op.NE: column.__ne__,
        Op.GT: column.__gt__,
        Op.GE: column.__ge__,
        Op.LT: column.__lt__,
        Op.LE: column.__le__,
    }
    return comparisons[op](single)


def _property(events: ir.Table, key: str) -> Any:
    return events.properties.cast("json")[key]


def _number_field(events: ir.Table, name: str) -> Any:
    """A numeric event field: a promoted column, or a property (a JSON number or a string
    holding one)."""
    if name.startswith(PROPERTY_PREFIX):
        value = _property(events, name.removeprefix(PROPERTY_PREFIX))
        return ibis.coalesce(value.float, value.str.try_cast("float64"))
    return events[name]


def _where(where: Where, events: ir.Table) -> ir.BooleanValue:
    if isinstance(where, WhereAnd):
        return reduce(lambda a, b: a & b, (_where(w, events) for w in where.and_))
    if isinstance(where, WhereOr):
        return reduce(lambda a, b: a | b, (_where(w, events) for w in where.or_))
    if isinstance(where, WhereNot):
        return ~_where(where.not_, events)
    return _definite(_field_condition(where, events))


def _field_condition(condition: FieldCondition, events: ir.Table) -> ir.BooleanValue:
    name = condition.field
    if name.startswith(PROPERTY_PREFIX):
        raw = _property(events, name.removeprefix(PROPERTY_PREFIX))
        values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
        numeric = any(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if condition.op in (Op.IS_NULL, Op.IS_NOT_NULL):
            column = ibis.coalesce(raw.str, raw.float.cast("string"))
        else:
            column = _number_field(events, name) if numeric else raw.str
        return _compare(column, condition.op, condition.value)
    return _compare(events[name], condition.op, condition.value)


def _midnight(day: Any, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _offsets(zone: ZoneInfo, low: datetime, high: datetime) -> list[tuple[datetime, int]]:
    """The zone's UTC offsets (seconds) between ``low`` and ``high``: the first entry is the
    offset at ``low``; each later one starts at the instant the offset changes."""

    def offset(at: datetime) -> int:
        delta = at.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    changes = [(low, offset(low))]
    step = timedelta(days=1)
    cursor = low
    while cursor < high:
        following = min(cursor + step, high)
        if offset(following) != changes[-1][1]:
            start, end = cursor, following  # bisect to the second the offset changes
            while end - start > timedelta(seconds=1):
                middle = start + (end - start) / 2
                if offset(middle) == changes[-1][1]:
                    start = middle
                else:
                    end = middle
            changes.append((end, offset(end)))
        cursor = following
    return changes


def _epoch(ts: dt.Timestamp(timezone="UTC")) -> dt.float64:  # type: ignore[valid-type]
    """DuckDB's ``epoch(timestamptz)``: seconds since 1970 without a time-zone conversion."""


_duckdb_epoch = ibis.udf.scalar.builtin(_epoch, name="epoch")


def _epoch_seconds(ts: ir.TimestampValue) -> ir.NumericValue:
    # Ibis compiles epoch_seconds() as epoch(CAST(ts AS TIMESTAMP)) on DuckDB, and that cast
    # of a timestamptz goes through ICU, several times slower than the distinct count itself.
    try:
        backend = ibis.get_backend(ts).name
    except Exception:  # an unbound expression: stay portable
        backend = None
    if backend == "duckdb":
        return _duckdb_epoch(ts)
    return ts.epoch_seconds()
