"""Name and type checking of a rule against the catalogue, before it is compiled.

Names must exist (tags, traits, segments, event fields), operators and literals must fit the
type of what they compare, and segment references must not form a cycle.
"""

from __future__ import annotations

from collections.abc import Iterator

from siyu.core.i18n import N_
from siyu.segments.rules.ast import (
    EVENT_NUMBER_FIELDS,
    EVENT_STRING_FIELDS,
    NULL_OPS,
    PROPERTY_PREFIX,
    RULE_NODE_TYPES,
    And,
    DateLiteral,
    DidCondition,
    EventCondition,
    FieldCondition,
    Not,
    Op,
    Or,
    Rule,
    Scalar,
    SegmentCondition,
    TagCondition,
    TraitCondition,
    Value,
    Where,
    WhereAnd,
    WhereNot,
    WhereOr,
)
from siyu.segments.rules.context import FieldInfo, RuleContext, ValueType
from siyu.segments.rules.errors import SegmentCycleError, TypeMismatchError, UnknownNameError
from siyu.segments.rules.printer import literal_text

_EQUALITY = frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN})
_ORDERING = frozenset({Op.EQ, Op.NE, Op.GT, Op.GE, Op.LT, Op.LE, Op.BETWEEN, Op.IN, Op.NOT_IN})
_CONTAINS = frozenset({Op.CONTAINS, Op.CONTAINS_ANY, Op.CONTAINS_ALL})

# What each value type accepts: its operators (besides is null / is not null) and the Python
# type of its literals.
_ACCEPTS: dict[ValueType, tuple[frozenset[Op], tuple[type, ...], str]] = {
    ValueType.BOOL: (frozenset({Op.EQ, Op.NE}), (bool,), "true or false"),
    ValueType.NUMBER: (_ORDERING, (int, float), "a number"),
    ValueType.DATE: (_ORDERING, (DateLiteral,), "a date"),
    ValueType.ENUM: (_EQUALITY, (str,), "a string"),
    ValueType.STRING: (_EQUALITY, (str,), "a string"),
    ValueType.LIST: (_CONTAINS, (str,), "a string"),
}


def check(rule: Rule, ctx: RuleContext) -> None:
    """Raise :class:`UnknownNameError`, :class:`TypeMismatchError` or
    :class:`SegmentCycleError` when ``rule`` does not fit the catalogue of ``ctx``."""
    _Checker(ctx).rule(rule, path=())


def leaves(rule: Rule) -> Iterator[Rule]:
    """The leaves of ``rule`` (segment references not expanded)."""
    if isinstance(rule, And | Or):
        for item in rule.and_ if isinstance(rule, And) else rule.or_:
            yield from leaves(item)
    elif isinstance(rule, Not):
        yield from leaves(rule.not_)
    else:
        yield rule


def where_fields(where: Where) -> Iterator[FieldCondition]:
    if isinstance(where, WhereAnd | WhereOr):
        for item in where.and_ if isinstance(where, WhereAnd) else where.or_:
            yield from where_fields(item)
    elif isinstance(where, WhereNot):
        yield from where_fields(where.not_)
    else:
        yield where


class _Checker:
    def __init__(self, ctx: RuleContext) -> None:
        self.ctx = ctx
        self.done: set[str] = set()

    def rule(self, rule: Rule, *, path: tuple[str, ...]) -> None:
        for leaf in leaves(rule):
            if isinstance(leaf, TagCondition):
                info = self.ctx.tag_info(leaf.tag)
                if info is None:
                    raise UnknownNameError(
                        N_("Unknown tag '{name}' in segment rule"), kind="tag", name=leaf.tag
                    )
                _check_literal("tag", info, leaf.op, leaf.value)
            elif isinstance(leaf, TraitCondition):
                info = self.ctx.trait_info(leaf.trait)
                if info is None:
                    raise UnknownNameError(
                        N_("Unknown trait '{name}' in segment rule"),
                        kind="trait",
                        name=leaf.trait,
                    )
                _check_literal("trait", info, leaf.op, leaf.value)
            elif isinstance(leaf, EventCondition | DidCondition):
                if leaf.where is not None:
                    for condition in where_fields(leaf.where):
                        _check_field(condition)
                if isinstance(leaf, EventCondition) and leaf.of is not None:
                    _check_measure_field(leaf.of)
            elif isinstance(leaf, SegmentCondition):
                self.segment(leaf.segment, path=path)

    def segment(self, key: str, *, path: tuple[str, ...]) -> None:
        if key in path:
            cycle = [*path[path.index(key) :], key]
            raise SegmentCycleError(
                N_("Segment references form a cycle: {cycle_text}"),
                errors=[{"cycle": cycle}],
                cycle=cycle,
                cycle_text=" → ".join(cycle),
            )
        if key in self.done:
            return
        found = self.ctx.segment(key)
        if found is None:
            raise UnknownNameError(
                N_("Unknown segment '{name}' in segment rule"), kind="segment", name=key
            )
        if isinstance(found, RULE_NODE_TYPES):
            self.rule(found, path=(*path, key))
        self.done.add(key)


def _values(value: Value) -> tuple[Scalar, ...]:
    if value is None:
        return ()
    return value if isinstance(value, tuple) else (value,)


def _mismatch(kind: str, name: str, value_type: str, op: Op, value: Value) -> TypeMismatchError:
    shown = ", ".join(literal_text(v) for v in _values(value))
    return TypeMismatchError(
        N_(
            "Type mismatch in segment rule: {kind} '{name}' is {value_type}, '{op}' {literal} "
            "does not fit it"
        ),
        errors=[
            {"kind": kind, "name": name, "value_type": value_type, "op": op.value, "literal": shown}
        ],
        kind=kind,
        name=name,
        value_type=value_type,
        op=op.value,
        literal=shown,
    )


def _check_literal(kind: str, info: FieldInfo, op: Op, value: Value) -> None:
    if op in NULL_OPS:
        return
    ops, types, _ = _ACCEPTS[info.value_type]
    items = _values(value)
    if op not in ops or not all(_is_type(item, types) for item in items):
        raise _mismatch(kind, info.key, info.value_type.value, op, value)
    if info.value_type is ValueType.ENUM and info.values is not None:
        for item in items:
            if item not in info.values:
                raise TypeMismatchError(
                    N_("'{value}' is not a value of {kind} '{name}' (one of: {allowed})"),
                    errors=[{"kind": kind, "name": info.key, "value": item}],
                    kind=kind,
                    name=info.key,
                    value=item,
                    allowed=", ".join(info.values),
                )


def _is_type(item: Scalar, types: tuple[type, ...]) -> bool:
    if isinstance(item, bool):
        return bool in types
    return isinstance(item, types)


def _check_field(condition: FieldCondition) -> None:
    field, op, value = condition.field, condition.op, condition.value
    if field.startswith(PROPERTY_PREFIX):
        if op in NULL_OPS:
            return
        items = _values(value)
        if all(_is_type(item, (str,)) for item in items):
            if op not in _EQUALITY:
                raise _mismatch("event field", field, "string", op, value)
            return
        if not all(_is_type(item, (int, float)) for item in items):
            raise _mismatch("event field", field, "string or number", op, value)
        return
    if field in EVENT_STRING_FIELDS:
        _check_literal("event field", FieldInfo(field, ValueType.STRING), op, value)
    elif field in EVENT_NUMBER_FIELDS:
        _check_literal("event field", FieldInfo(field, ValueType.NUMBER), op, value)
    else:
        raise UnknownNameError(
            N_("Unknown event field '{name}' in segment rule"), kind="event field", name=field
        )


def _check_measure_field(field: str) -> None:
    if field in EVENT_NUMBER_FIELDS or field.startswith(PROPERTY_PREFIX):
        return
    raise UnknownNameError(
        N_(
            "Event field '{name}' cannot be summed or averaged (use amount, quantity or "
            "properties.KEY)"
        ),
        kind="measure field",
        name=field,
    )
