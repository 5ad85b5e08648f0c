"""Tag definitions → one Ibis expression per stage, executed set-at-a-time by the engine.

Stage *person*: every tag whose value depends only on the person's own data. All event
aggregations are fused into one grouped scan with filtered aggregates (``count(where=…)``);
the most-frequent-value tags sharing a filter and field share one ranked query; traits come
from one scan over identify events; assigned values from one pivot; formulas are layered
``mutate`` calls in dependency order.

Stage *population*: tags that rank a person against everybody (``ntile``) and the tags built
on them. They run over the materialised stage-one table, so an incremental refresh of a few
people still scores them against the whole pool.
"""

from __future__ import annotations

import ast
import graphlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from siyu.core.errors import InvalidInputError
from siyu.core.i18n import N_
from siyu.tags.definitions import (
    PROPERTY_PREFIX,
    Aggregate,
    Assigned,
    EventFilter,
    Formula,
    Function,
    TagDefinition,
    Trait,
    ValueType,
)
from siyu.tags.formula import FormulaScope, compile_formula, references

POPULATION_FUNCTIONS = frozenset({"ntile"})

STORAGE_TYPES: dict[ValueType, str] = {
    ValueType.BOOL: "boolean",
    ValueType.ENUM: "string",
    ValueType.STRING: "string",
    ValueType.NUMBER: "float64",
    ValueType.DATE: "date",
    ValueType.LIST: "array<string>",
}


@dataclass(frozen=True)
class Clock:
    """The refresh instant and the time zone that decides where days begin."""

    as_of: datetime
    tz: ZoneInfo

    @property
    def local(self) -> datetime:
        return self.as_of.astimezone(self.tz)

    @property
    def today(self) -> date:
        return self.local.date()

    @property
    def offset(self) -> timedelta:
        return self.local.utcoffset() or timedelta(0)

    def window_start(self, days: int) -> datetime:
        """UTC instant of local midnight ``days - 1`` days before today (today counts)."""
        first = self.today - timedelta(days=days - 1)
        return datetime.combine(first, time(0), self.tz).astimezone(UTC)


@dataclass(frozen=True)
class Sources:
    """The relations tags read. ``events`` has ``person_id`` resolved (null = unknown)."""

    people: ir.Table
    events: ir.Table
    assignments: ir.Table | None = None  # person_id, tag_key, value (text)


@dataclass
class Plan:
    """Definitions checked, ordered and split into the two stages."""

    person: list[TagDefinition] = field(default_factory=list)
    population: list[TagDefinition] = field(default_factory=list)

    @property
    def all(self) -> list[TagDefinition]:
        return self.person + self.population


def plan(definitions: Sequence[TagDefinition], required: Iterable[str] | None = None) -> Plan:
    """Order definitions by dependency; refuse unknown references and cycles.

    With ``required``, keep only those tags and what they depend on.
    """
    by_key = {d.key: d for d in definitions}
    graph: dict[str, set[str]] = {}
    for definition in definitions:
        deps = _dependencies(definition)
        unknown = sorted(deps - by_key.keys())
        if unknown:
            raise InvalidInputError(
                N_("Tag {key} refers to unknown tags: {unknown}"),
                key=definition.key,
                unknown=", ".join(unknown),
            )
        graph[definition.key] = deps
    keep = _closure(graph, required) if required is not None else set(graph)
    try:
        order = list(graphlib.TopologicalSorter({k: graph[k] for k in keep}).static_order())
    except graphlib.CycleError as exc:
        cycle = " → ".join(exc.args[1])
        raise InvalidInputError(N_("Tag formulas form a cycle: {cycle}"), cycle=cycle) from None
    result = Plan()
    population: set[str] = set()
    for key in order:
        definition = by_key[key]
        if _ranks_population(definition) or graph[key] & population:
            population.add(key)
            result.population.append(definition)
        else:
            result.person.append(definition)
    return result


def _dependencies(definition: TagDefinition) -> set[str]:
    if isinstance(definition.compute, Formula):
        return references(definition.compute.expression)
    return set()


def _ranks_population(definition: TagDefinition) -> bool:
    if not isinstance(definition.compute, Formula):
        return False
    tree = ast.parse(definition.compute.expression.strip(), mode="eval")
    return any(
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Name)
        and n.func.id in POPULATION_FUNCTIONS
        for n in ast.walk(tree)
    )


def _closure(graph: Mapping[str, set[str]], required: Iterable[str]) -> set[str]:
    wanted = list(required)
    unknown = sorted(set(wanted) - graph.keys())
    if unknown:
        raise InvalidInputError(N_("Unknown tags: {keys}"), keys=", ".join(unknown))
    seen: set[str] = set()
    while wanted:
        key = wanted.pop()
        if key not in seen:
            seen.add(key)
            wanted.extend(graph[key])
    return seen


# -- stage one: per person ---------------------------------------------------------------------


def compile_person_stage(
    definitions: Sequence[TagDefinition], sources: Sources, clock: Clock
) -> ir.Table:
    """person_id + one column per tag of the person stage (in ``definitions`` order)."""
    people = sources.people.select("person_id").distinct()
    events = sources.events
    if "local_date" not in events.columns:
        events = prepare_events(events, definitions, clock)
    aggregates = [d for d in definitions if isinstance(d.compute, Aggregate)]
    traits = [d for d in definitions if isinstance(d.compute, Trait)]
    assigned = [d for d in definitions if isinstance(d.compute, Assigned)]
    parts: list[ir.Table] = []
    simple = [d for d in aggregates if _is_simple(d.compute)]  # type: ignore[arg-type]
    parts.extend(_fused_aggregates(events, simple, clock))
    days = [d for d in aggregates if d.compute.function is Function.ACTIVE_DAYS]  # type: ignore[union-attr]
    parts.extend(_active_days(events, days, clock))
    tops = [d for d in aggregates if d not in simple and d not in days]
    parts.extend(_top_values(events, tops, clock))
    if traits:
        parts.append(_traits(events, traits))
    if assigned and sources.assignments is not None:
        parts.append(_assigned(sources.assignments, assigned))
    table = _join_all(people, parts)
    table = _finish_aggregates(table, aggregates, clock)
    for definition in assigned:
        if definition.key not in table.columns:
            table = table.mutate(
                **{definition.key: ibis.null(STORAGE_TYPES[definition.value_type])}
            )
    table = _formulas(table, [d for d in definitions if isinstance(d.compute, Formula)], clock)
    return table.select("person_id", *[_stored(table, d) for d in definitions])


def _join_all(people: ir.Table, parts: Sequence[ir.Table]) -> ir.Table:
    """Left-join every per-person part onto the people in one join chain (one node, not
    one nested select per part: this keeps expression building and SQL compiling fast)."""
    if not parts:
        return people
    keyed = [p.rename(**{f"__pid{i}": "person_id"}) for i, p in enumerate(parts)]
    chain = people
    for part in keyed:
        chain = chain.left_join(part, people.person_id == part[part.columns[0]])
    wanted = ["person_id"] + [c for p in parts for c in p.columns if c != "person_id"]
    return chain.select(*wanted)


def compile_population_stage(
    definitions: Sequence[TagDefinition], person_stage: ir.Table, clock: Clock
) -> ir.Table:
    """The person-stage table with the population-relative tags added.

    The ranking windows run over a narrow table (the columns they read), then join back:
    sorting a 200-column row for each window would cost far more than the join.
    """
    if not definitions:
        return person_stage
    own = {d.key for d in definitions}
    read = {r for d in definitions for r in references(d.compute.expression)}  # type: ignore[union-attr]
    narrow = person_stage.select("person_id", *sorted(read - own))
    scored = _formulas(narrow, list(definitions), clock)
    scored = scored.select(
        __pid=scored.person_id, **{d.key: _stored(scored, d) for d in definitions}
    )
    joined = person_stage.left_join(scored, person_stage.person_id == scored.__pid)
    return joined.select(*person_stage.columns, *[d.key for d in definitions])


def _stored(table: ir.Table, definition: TagDefinition) -> ir.Value:
    column = table[definition.key]
    kind = STORAGE_TYPES[definition.value_type]
    if definition.value_type is ValueType.BOOL:
        column = column.cast("boolean").fill_null(False)
    elif definition.value_type is ValueType.LIST or str(column.type()) != kind:
        column = column.cast(kind)
    return column.name(definition.key)


# -- events ----------------------------------------------------------------------------------------


def prepare_events(
    events: ir.Table, definitions: Sequence[TagDefinition], clock: Clock
) -> ir.Table:
    """The compact relation every aggregation reads: only the events and columns tags use,
    JSON properties extracted once into ``prop__KEY`` columns, times in local days.

    Materialise it once per refresh; the per-name-set scans then read it instead of the
    events joined with the identity map.
    """
    specs = [d.compute for d in definitions if isinstance(d.compute, Aggregate)]
    traits = [d.compute for d in definitions if isinstance(d.compute, Trait)]
    names = sorted({n for s in specs for n in s.events} | ({"identify"} if traits else set()))
    fields = {f for s in specs for f in _fields_of(s)}
    scope = events.filter(
        events.person_id.notnull(), events.ts <= clock.as_of, events.name.isin(names)
    )
    windows = [s.window_days for s in specs]
    if not traits and specs and None not in windows:
        scope = scope.filter(scope.ts >= clock.window_start(max(w for w in windows if w)))
    keys = _json_keys(specs, traits)
    if keys:
        # One parse of the properties per event (each ``->`` would parse them again), and
        # only on events some tag reads properties of.
        readers = scope.name.isin(sorted({n for users in keys.values() for n in users}))
        paths = [f'$."{k}"' for k in keys]
        scope = scope.mutate(
            __types=ibis.ifelse(
                readers, _json_types(scope.properties, paths), ibis.null("array<string>")
            ),
            __texts=ibis.ifelse(
                readers, _json_texts(scope.properties, paths), ibis.null("array<string>")
            ),
        )
    local = scope.ts + ibis.interval(seconds=int(clock.offset.total_seconds()))
    columns: dict[str, ir.Value] = {
        "person_id": scope.person_id,
        "event_id": scope.event_id,
        "name": scope.name,
        "ts": scope.ts,
        "local_date": local.date(),
    }
    position = {k: i for i, k in enumerate(keys)}
    for name in sorted(fields):
        if name.startswith(PROPERTY_PREFIX):
            key = name.removeprefix(PROPERTY_PREFIX)
            users = sorted({n for s in specs if name in _fields_of(s) for n in s.events})
            raw = _scalar_text(scope, position[key])
            columns[_prop_column(key)] = ibis.ifelse(scope.name.isin(users), raw, ibis.null(str))
        elif name == "hour":
            columns["hour"] = local.hour().cast("string")
        elif name != "name":
            columns[name] = scope[name]
    for spec in traits:
        raw = _scalar_text(scope, position[spec.trait])
        columns[_trait_column(spec.trait)] = ibis.ifelse(
            scope.name == "identify", raw.nullif(""), ibis.null(str)
        )
    return scope.select(**columns)


def _json_keys(specs: Sequence[Aggregate], traits: Sequence[Trait]) -> dict[str, set[str]]:
    """Property keys tags read → the event names they are read on."""
    keys: dict[str, set[str]] = defaultdict(set)
    for spec in specs:
        for name in _fields_of(spec):
            if name.startswith(PROPERTY_PREFIX):
                keys[name.removeprefix(PROPERTY_PREFIX)].update(spec.events)
    for trait in traits:
        keys[trait.trait].add("identify")
    return dict(sorted(keys.items()))


_SCALAR_TYPES = ["VARCHAR", "BIGINT", "UBIGINT", "DOUBLE", "BOOLEAN"]


def _scalar_text(scope: ir.Table, position: int) -> ir.StringValue:
    """The property at ``position`` as :func:`json_text` reads it: a scalar as text, null
    when absent, null, an object or an array."""
    scalar = scope.__types[position].isin(_SCALAR_TYPES)
    return ibis.ifelse(scalar, scope.__texts[position], ibis.null(str))


# DuckDB's list forms read several paths out of one JSON document with a single parse.
def _json_type_list(value: dt.JSON, paths: _TEXTS) -> _TEXTS:  # type: ignore[valid-type]
    """The JSON type of the value at each path (null when absent)."""


def _json_text_list(value: dt.JSON, paths: _TEXTS) -> _TEXTS:  # type: ignore[valid-type]
    """The value at each path as text (strings unquoted; null when absent or null)."""


_TEXTS = dt.Array(dt.string)
_json_types = ibis.udf.scalar.builtin(_json_type_list, name="json_type")
_json_texts = ibis.udf.scalar.builtin(_json_text_list, name="json_extract_string")


def _fields_of(spec: Aggregate) -> set[str]:
    fields = {f.field for f in spec.where}
    if spec.field:
        fields.add(spec.field)
    return fields


def _prop_column(key: str) -> str:
    return f"prop__{key}"


def _trait_column(key: str) -> str:
    return f"trait__{key}"


def json_text(value: ir.JSONValue) -> ir.StringValue:
    """A JSON scalar as text whatever its JSON type (``5`` → "5", ``true`` → "true"); null
    when absent, null, an object or an array. ``unwrap_as("string")`` alone reads only JSON
    strings, so a numeric ``coupon_id`` or ``streak`` would silently read as null."""
    scalar = value.unwrap_as("float64").notnull() | value.unwrap_as("bool").notnull()
    return value.unwrap_as("string").coalesce(
        ibis.ifelse(scalar, value.cast("string"), ibis.null(str))
    )


def event_field(events: ir.Table, name: str, *, numeric: bool = False) -> ir.Value:
    """A promoted column, the local hour, or ``properties.KEY`` (prepared or from JSON)."""
    if name.startswith(PROPERTY_PREFIX):
        key = name.removeprefix(PROPERTY_PREFIX)
        if _prop_column(key) in events.columns:
            value = events[_prop_column(key)]
        else:
            value = json_text(events.properties.cast("json")[key])
        return value.try_cast("float64") if numeric else value
    column = events[name]
    # Money stays decimal: sums are exact, so equal amounts tie exactly in quintiles and a
    # half-cent average rounds the same way whatever the summation order.
    if numeric and not column.type().is_numeric():
        return column.try_cast("float64")
    return column


def _filter(events: ir.Table, condition: EventFilter) -> ir.BooleanValue:
    numeric = isinstance(condition.value, int | float) and not isinstance(condition.value, bool)
    value = event_field(events, condition.field, numeric=numeric)
    match condition.op:
        case "=":
            return value == condition.value
        case "!=":
            return value != condition.value
        case "in":
            return value.isin(list(condition.value or []))  # type: ignore[arg-type]
        case "not in":
            return value.notin(list(condition.value or []))  # type: ignore[arg-type]
        case ">":
            return value > condition.value
        case ">=":
            return value >= condition.value
        case "<":
            return value < condition.value
        case "<=":
            return value <= condition.value
        case "is null":
            return value.isnull()
        case "is not null":
            return value.notnull()
    raise AssertionError(condition.op)


def _condition(events: ir.Table, spec: Aggregate, clock: Clock) -> ir.BooleanValue:
    condition = events.name.isin(list(spec.events))
    return condition & _window_and_where(events, spec, clock)


def _window_and_where(events: ir.Table, spec: Aggregate, clock: Clock) -> ir.BooleanValue:
    condition: ir.BooleanValue = ibis.literal(True)
    if spec.window_days is not None:
        condition &= events.ts >= clock.window_start(spec.window_days)
    if spec.before_days is not None:
        condition &= events.ts < clock.window_start(spec.before_days)
    for item in spec.where:
        condition &= _filter(events, item)
    return condition


_SIMPLE = {
    Function.COUNT,
    Function.SUM,
    Function.AVG,
    Function.MIN,
    Function.MAX,
    Function.COUNT_DISTINCT,
    Function.FIRST_TS,
    Function.LAST_TS,
    Function.DAYS_SINCE_FIRST,
    Function.DAYS_SINCE_LAST,
    Function.FIRST_VALUE,
    Function.LAST_VALUE,
    Function.EXISTS,
}


def _is_simple(spec: Aggregate) -> bool:
    return spec.function in _SIMPLE


def _fused_aggregates(
    events: ir.Table, definitions: Sequence[TagDefinition], clock: Clock
) -> list[ir.Table]:
    """One grouped scan per set of event names, over only those events.

    Inside a scan, each distinct window and filter is computed once as a flag column, and
    every aggregation is a filtered aggregate over flags, so the engine evaluates cheap
    boolean ANDs rather than string comparisons per aggregation.
    """
    groups: dict[tuple[str, ...], list[TagDefinition]] = defaultdict(list)
    for definition in definitions:
        groups[definition.compute.events].append(definition)  # type: ignore[union-attr]
    return [_fused_group(events, names, members, clock) for names, members in groups.items()]


def _fused_group(
    events: ir.Table, names: tuple[str, ...], members: Sequence[TagDefinition], clock: Clock
) -> ir.Table:
    specs = [m.compute for m in members]
    scope = events.filter(events.name.isin(list(names)))
    windows = [s.window_days for s in specs]  # type: ignore[union-attr]
    if None not in windows:
        scope = scope.filter(scope.ts >= clock.window_start(max(w for w in windows if w)))
    flags: dict[Any, str] = {}
    flag_values: dict[str, ir.BooleanValue] = {}
    for spec in specs:
        key = _flag_key(spec)  # type: ignore[arg-type]
        if key not in flags:
            flags[key] = f"__flag{len(flags)}"
            flag_values[flags[key]] = _window_and_where(scope, spec, clock)  # type: ignore[arg-type]
    flagged = scope.mutate(**flag_values)
    metrics = {
        m.key: _metric(
            flagged,
            m.compute,  # type: ignore[arg-type]
            flagged[flags[_flag_key(m.compute)]],  # type: ignore[arg-type]
            numeric=m.value_type is ValueType.NUMBER,
        )
        for m in members
    }
    return flagged.group_by("person_id").aggregate(**metrics)


def _flag_key(spec: Aggregate) -> tuple[Any, ...]:
    return (spec.window_days, spec.before_days, spec.where)


def _metric(
    events: ir.Table, spec: Aggregate, where: ir.BooleanValue, *, numeric: bool
) -> ir.Value:
    # Read the field as a number to compute on it, or when a number tag takes its value;
    # never to count distinct values (a number tag counting categories).
    numeric = spec.function in (Function.SUM, Function.AVG, Function.MIN, Function.MAX) or (
        numeric and spec.function in (Function.FIRST_VALUE, Function.LAST_VALUE)
    )
    value = event_field(events, spec.field, numeric=numeric) if spec.field else None
    order_key = ibis.struct({"ts": events.ts, "id": events.event_id})
    match spec.function:
        case Function.COUNT:
            return events.count(where=where)
        case Function.EXISTS:
            return events.count(where=where) > 0
        case Function.SUM:
            return value.sum(where=where)  # type: ignore[union-attr]
        case Function.AVG:
            return value.mean(where=where)  # type: ignore[union-attr]
        case Function.MIN:
            return value.min(where=where)  # type: ignore[union-attr]
        case Function.MAX:
            return value.max(where=where)  # type: ignore[union-attr]
        case Function.COUNT_DISTINCT:
            return value.nunique(where=where)  # type: ignore[union-attr]
        case Function.FIRST_TS | Function.DAYS_SINCE_FIRST:
            return events.local_date.min(where=where)
        case Function.LAST_TS | Function.DAYS_SINCE_LAST:
            return events.local_date.max(where=where)
        case Function.FIRST_VALUE:
            return value.argmin(order_key, where=where & value.notnull())  # type: ignore[union-attr]
        case Function.LAST_VALUE:
            return value.argmax(order_key, where=where & value.notnull())  # type: ignore[union-attr]
    raise AssertionError(spec.function)


def _active_days(
    events: ir.Table, definitions: Sequence[TagDefinition], clock: Clock
) -> list[ir.Table]:
    """Distinct local days: one (person, day) set per event-name set and filter, then
    filtered counts per window (cheaper than one COUNT DISTINCT per window)."""
    groups: dict[Any, list[TagDefinition]] = defaultdict(list)
    for definition in definitions:
        spec = definition.compute
        assert isinstance(spec, Aggregate)
        groups[(spec.events, spec.before_days, spec.where)].append(definition)
    parts = []
    for members in groups.values():
        spec = members[0].compute
        assert isinstance(spec, Aggregate)
        unwindowed = spec.model_copy(update={"window_days": None})
        days = (
            events.filter(_condition(events, unwindowed, clock))
            .select("person_id", "local_date")
            .distinct()
        )
        metrics = {}
        for member in members:
            window = member.compute.window_days  # type: ignore[union-attr]
            first = clock.today - timedelta(days=window - 1) if window else None
            metrics[member.key] = (
                days.count(where=days.local_date >= first) if first else days.count()
            )
        parts.append(days.group_by("person_id").aggregate(**metrics))
    return parts


_ZERO_WHEN_NONE = {Function.COUNT, Function.SUM, Function.COUNT_DISTINCT, Function.ACTIVE_DAYS}


def _finish_aggregates(
    table: ir.Table, definitions: Sequence[TagDefinition], clock: Clock
) -> ir.Table:
    """Counts and sums of people with no matching events are 0; days-since from dates."""
    today = ibis.literal(clock.today)
    changes: dict[str, ir.Value] = {}
    for definition in definitions:
        spec = definition.compute
        assert isinstance(spec, Aggregate)
        column = table[definition.key]
        if spec.function in _ZERO_WHEN_NONE:
            changes[definition.key] = column.fill_null(0)
        elif spec.function in (Function.DAYS_SINCE_FIRST, Function.DAYS_SINCE_LAST):
            changes[definition.key] = today.delta(column, unit="day")
    return table.mutate(**changes) if changes else table


def _top_values(
    events: ir.Table, definitions: Sequence[TagDefinition], clock: Clock
) -> list[ir.Table]:
    """Most frequent values (ties: the more recent, then the smaller value), grouped so tags
    sharing a filter and a field share one ranked query."""
    groups: dict[Any, list[TagDefinition]] = defaultdict(list)
    for definition in definitions:
        spec = definition.compute
        assert isinstance(spec, Aggregate)
        groups[(spec.events, spec.window_days, spec.before_days, spec.where, spec.field)].append(
            definition
        )
    parts = []
    for members in groups.values():
        spec = members[0].compute
        assert isinstance(spec, Aggregate) and spec.field
        value = event_field(events, spec.field)
        matching = events.filter(_condition(events, spec, clock), value.notnull())
        counted = matching.group_by(["person_id", value.name("value")]).aggregate(
            n=matching.event_id.count(), last_ts=matching.ts.max()
        )
        ranked = counted.mutate(
            rank=ibis.row_number().over(
                group_by="person_id",
                order_by=[counted.n.desc(), counted.last_ts.desc(), counted.value],
            )
        )
        deepest = max(m.compute.top for m in members)  # type: ignore[union-attr]
        kept = ranked.filter(ranked.rank < deepest)
        metrics: dict[str, ir.Value] = {}
        for member in members:
            depth = member.compute.top  # type: ignore[union-attr]
            if member.value_type is ValueType.LIST:
                metrics[member.key] = kept.value.collect(
                    where=kept.rank < depth, order_by=kept.rank
                )
            else:
                metrics[member.key] = kept.value.argmin(kept.rank, where=kept.rank == 0)
        parts.append(kept.group_by("person_id").aggregate(**metrics))
    return parts


# -- traits and assigned values --------------------------------------------------------------


def _traits(events: ir.Table, definitions: Sequence[TagDefinition]) -> ir.Table:
    """The latest (or first) non-empty value of each trait over identify calls, one scan."""
    identify = events.filter(events.name == "identify")
    order_key = ibis.struct({"ts": identify.ts, "id": identify.event_id})
    metrics: dict[str, ir.Value] = {}
    for definition in definitions:
        spec = definition.compute
        assert isinstance(spec, Trait)
        raw = identify[_trait_column(spec.trait)]
        value = (
            raw.argmin(order_key, where=raw.notnull())
            if spec.rule == "first"
            else (raw.argmax(order_key, where=raw.notnull()))
        )
        if spec.cast == "date":
            value = value.try_cast("date")
        elif spec.cast == "number":
            value = value.try_cast("float64")
        metrics[definition.key] = value
    return identify.group_by("person_id").aggregate(**metrics)


def _assigned(assignments: ir.Table, definitions: Sequence[TagDefinition]) -> ir.Table:
    """Imported and manual values (text) pivoted to one column per tag, typed."""
    keys = [d.key for d in definitions]
    rows = assignments.filter(assignments.tag_key.isin(keys))
    metrics: dict[str, ir.Value] = {}
    for definition in definitions:
        text = rows.value.argmax(rows.tag_key, where=rows.tag_key == definition.key)
        metrics[definition.key] = typed_text(text, definition.value_type)
    return rows.group_by("person_id").aggregate(**metrics)


def typed_text(text: ir.StringValue, value_type: ValueType) -> ir.Value:
    """A value kept as text (assigned, or in history) back to its tag's type."""
    match value_type:
        case ValueType.BOOL:
            return text.lower().isin(["true", "1", "yes", "是"])
        case ValueType.NUMBER:
            return text.try_cast("float64")
        case ValueType.DATE:
            return text.try_cast("date")
        case ValueType.LIST:
            return text.cast("json").unwrap_as("array<string>")
    return text


# -- formulas ----------------------------------------------------------------------------------


def _formulas(table: ir.Table, definitions: Sequence[TagDefinition], clock: Clock) -> ir.Table:
    """Add formula tags layer by layer (a layer only reads columns that already exist)."""
    pending = list(definitions)
    while pending:
        ready = [
            d
            for d in pending
            if references(d.compute.expression) <= set(table.columns)  # type: ignore[union-attr]
        ]
        if not ready:
            missing = sorted({d.key for d in pending})
            raise InvalidInputError(N_("Tags cannot be computed: {keys}"), keys=", ".join(missing))
        scope = FormulaScope(
            columns={c: table[c] for c in table.columns},
            person_id=table.person_id,
            today=clock.today,
        )
        table = table.mutate(
            **{d.key: compile_formula(d.compute.expression, scope) for d in ready}  # type: ignore[union-attr]
        )
        pending = [d for d in pending if d not in ready]
    return table
