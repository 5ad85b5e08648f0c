"""Hypothesis strategies: any well-formed AST (for round-trips) and type-correct rules over the
test world (for laws and the brute-force comparison)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st

from siyu.segments.rules import (
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
    SegmentCondition,
    SequenceCondition,
    TagCondition,
    TraitCondition,
    WhereAnd,
    WhereNot,
    WhereOr,
    Window,
)
from siyu.segments.rules.ast import CONTAINS_OPS, EVENT_FIELDS, MEASURE_OPS, NULL_OPS
from tests.segments.rules import world as w

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
segment_keys = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),
    max_size=12,
) | st.sampled_from(["重要价值客户", "it's", "a\\", "\\'", "''", "'; drop table x; --", ""])
dates = st.dates(min_value=date(1970, 1, 1), max_value=date(2100, 12, 31))
numbers = st.integers(-(10**12), 10**12) | st.floats(allow_nan=False, allow_infinity=False)
scalars = st.one_of(st.booleans(), numbers, texts, dates.map(lambda d: DateLiteral(date=d)))


@st.composite
def values_for(draw: st.DrawFn, op: Op, scalar: st.SearchStrategy[Any] = scalars) -> Any:
    if op in NULL_OPS:
        return None
    if op is Op.BETWEEN:
        return (draw(scalar), draw(scalar))
    if op in (Op.IN, Op.NOT_IN, Op.CONTAINS_ANY, Op.CONTAINS_ALL):
        return tuple(draw(st.lists(scalar, min_size=1, max_size=3)))
    return draw(scalar)


@st.composite
def windows(draw: st.DrawFn) -> Window:
    kind = draw(st.sampled_from(["last", "since", "between"]))
    if kind == "last":
        return Window(last_days=draw(st.integers(1, 400)))
    if kind == "since":
        return Window(since=draw(dates))
    low, high = sorted([draw(dates), draw(dates)])
    return Window(between=(low, high))


event_fields = st.sampled_from(EVENT_FIELDS) | identifiers.map(lambda k: f"properties.{k}")


@st.composite
def field_conditions(draw: st.DrawFn) -> FieldCondition:
    op = draw(st.sampled_from([op for op in Op if op not in CONTAINS_OPS]))
    return FieldCondition(field=draw(event_fields), op=op, value=draw(values_for(op)))


wheres = st.recursive(
    field_conditions(),
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda xs: WhereAnd(and_=tuple(xs))),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: WhereOr(or_=tuple(xs))),
        children.map(lambda x: WhereNot(not_=x)),
    ),
    max_leaves=4,
)


@st.composite
def any_leaf(draw: st.DrawFn) -> Rule:
    kind = draw(st.sampled_from(["tag", "trait", "consent", "segment", "event", "did", "sequence"]))
    if kind in ("tag", "trait"):
        op = draw(st.sampled_from(list(Op)))
        value = draw(values_for(op))
        if kind == "tag":
            return TagCondition(tag=draw(identifiers), op=op, value=value)
        return TraitCondition(trait=draw(identifiers), op=op, value=value)
    if kind == "consent":
        return ConsentCondition(consent=draw(identifiers))
    if kind == "segment":
        return SegmentCondition(segment=draw(segment_keys))
    window = draw(st.none() | windows())
    if kind == "sequence":
        steps = draw(st.lists(identifiers, min_size=2, max_size=4))
        return SequenceCondition(
            sequence=tuple(steps), within_days=draw(st.integers(1, 90)), window=window
        )
    where = draw(st.none() | wheres)
    if kind == "did":
        return DidCondition(
            did=draw(st.booleans()), event=draw(identifiers), window=window, where=where
        )
    measure = draw(st.sampled_from(list(Measure)))
    of = draw(event_fields) if measure not in (Measure.COUNT, Measure.DAYS) else None
    op = draw(st.sampled_from(sorted(MEASURE_OPS)))
    value = draw(values_for(op, numbers))
    return EventCondition(
        event=draw(identifiers),
        window=window,
        where=where,
        measure=measure,
        of=of,
        op=op,
        value=value,
    )


def trees(leaves: st.SearchStrategy[Rule], max_leaves: int) -> st.SearchStrategy[Rule]:
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, min_size=2, max_size=3).map(lambda xs: And(and_=tuple(xs))),
            st.lists(children, min_size=2, max_size=3).map(lambda xs: Or(or_=tuple(xs))),
            children.map(lambda x: Not(not_=x)),
        ),
        max_leaves=max_leaves,
    )


any_rule = trees(any_leaf(), 10)

# -- type-correct rules over the test world ------------------------------------------------

_TAG_LITERALS: dict[str, st.SearchStrategy[Any]] = {
    "rfm_segment": st.sampled_from(w.RFM),
    "is_member": st.booleans(),
    "order_count": st.sampled_from([0, 1, 2, 3, 5, 2.5, -1]),
    "ltv": st.sampled_from([0, 99.5, 200, 1234.25, 100.0]),
    "last_order_date": st.sampled_from(
        [date(2026, 1, 31), date(2026, 3, 1), date(2026, 3, 15), date(2026, 2, 1)]
    ).map(lambda d: DateLiteral(date=d)),
    "interests": st.sampled_from(w.INTERESTS),
    "nickname": st.sampled_from(["小王", "O'Brien", "'; drop table tags; --", "x"]),
    "city": st.sampled_from(w.CITIES),
    "age": st.sampled_from([18, 25, 31, 45, 30]),
    "vip": st.booleans(),
}
_OPS_BY_TYPE = {
    "bool": [Op.EQ, Op.NE, Op.IS_NULL, Op.IS_NOT_NULL],
    "enum": [Op.EQ, Op.NE, Op.IN, Op.NOT_IN, Op.IS_NULL],
    "string": [Op.EQ, Op.NE, Op.IN, Op.NOT_IN, Op.IS_NOT_NULL],
    "number": [Op.EQ, Op.NE, Op.GT, Op.GE, Op.LT, Op.LE, Op.BETWEEN, Op.IN, Op.IS_NULL],
    "date": [Op.EQ, Op.GT, Op.GE, Op.LT, Op.LE, Op.BETWEEN, Op.IS_NULL],
    "list": [Op.CONTAINS, Op.CONTAINS_ANY, Op.CONTAINS_ALL, Op.IS_NULL],
}


@st.composite
def _typed_condition(draw: st.DrawFn, kind: str) -> Rule:
    infos = w.TAG_INFO if kind == "tag" else w.TRAIT_INFO
    key = draw(st.sampled_from(sorted(infos)))
    op = draw(st.sampled_from(_OPS_BY_TYPE[infos[key].value_type.value]))
    value = draw(values_for(op, _TAG_LITERALS[key]))
    if kind == "tag":
        return TagCondition(tag=key, op=op, value=value)
    return TraitCondition(trait=key, op=op, value=value)


world_windows = st.none() | st.sampled_from(
    [
        Window(last_days=1),
        Window(last_days=7),
        Window(last_days=30),
        Window(since=w.TODAY - timedelta(days=10)),
        Window(between=(date(2026, 2, 1), date(2026, 2, 14))),
        Window(between=(w.TODAY - timedelta(days=3), w.TODAY - timedelta(days=3))),
    ]
)
world_fields = st.sampled_from(
    [
        FieldCondition(field="channel", op=Op.EQ, value="wecom"),
        FieldCondition(field="channel", op=Op.IN, value=("store", "miniprogram")),
        FieldCondition(field="channel", op=Op.IS_NULL),
        FieldCondition(field="amount", op=Op.GE, value=100),
        FieldCondition(field="amount", op=Op.BETWEEN, value=(9.9, 128)),
        FieldCondition(field="category", op=Op.NE, value="美妆"),
        FieldCondition(field="quantity", op=Op.GT, value=1),
        FieldCondition(field="properties.coupon", op=Op.EQ, value="spring"),
        FieldCondition(field="properties.coupon", op=Op.IS_NOT_NULL),
        FieldCondition(field="properties.price", op=Op.GT, value=20),
        FieldCondition(field="properties.price", op=Op.LE, value=12.5),
    ]
)
world_wheres = st.recursive(
    world_fields,
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=2).map(lambda xs: WhereAnd(and_=tuple(xs))),
        st.lists(children, min_size=2, max_size=2).map(lambda xs: WhereOr(or_=tuple(xs))),
        children.map(lambda x: WhereNot(not_=x)),
    ),
    max_leaves=3,
)
_MEASURE_VALUES = {
    Measure.COUNT: [0, 1, 2, 3],
    Measure.DAYS: [0, 1, 2, 4],
    Measure.SUM: [0, 100, 299.5, 500],
    Measure.AVG: [50, 128, 20.25],
    Measure.MAX: [50, 128, 299.5],
    Measure.MIN: [9.9, 50, 128],
}


@st.composite
def _world_event(draw: st.DrawFn) -> Rule:
    name = draw(st.sampled_from(w.EVENT_NAMES))
    window = draw(world_windows)
    where = draw(st.none() | world_wheres)
    if draw(st.booleans()):
        return DidCondition(did=draw(st.booleans()), event=name, window=window, where=where)
    measure = draw(st.sampled_from(list(Measure)))
    of = None
    if measure not in (Measure.COUNT, Measure.DAYS):
        of = draw(st.sampled_from(["amount", "quantity", "properties.price"]))
    op = draw(st.sampled_from(sorted(MEASURE_OPS)))
    value = draw(values_for(op, st.sampled_from(_MEASURE_VALUES[measure])))
    return EventCondition(
        event=name, window=window, where=where, measure=measure, of=of, op=op, value=value
    )


@st.composite
def _world_sequence(draw: st.DrawFn) -> Rule:
    steps = draw(st.lists(st.sampled_from(w.EVENT_NAMES), min_size=2, max_size=3))
    return SequenceCondition(
        sequence=tuple(steps),
        within_days=draw(st.sampled_from([1, 3, 10])),
        window=draw(world_windows),
    )


world_leaves = st.one_of(
    _typed_condition("tag"),
    _typed_condition("trait"),
    st.sampled_from(["sms", "wecom", "email"]).map(lambda c: ConsentCondition(consent=c)),
    st.sampled_from(["big_spenders", "loyal", "imported_vips", "loyal_or_imported"]).map(
        lambda k: SegmentCondition(segment=k)
    ),
    _world_event(),
    _world_sequence(),
)
world_rules = trees(world_leaves, 5)
