"""AST → canonical text: lower-case keywords, single spaces, the fewest parentheses that keep
the tree (a nested ``and`` inside an ``and`` keeps its parentheses, so the text parses back
to the very same AST)."""

from __future__ import annotations

from siyu.segments.rules.ast import (
    And,
    ConsentCondition,
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
from siyu.segments.rules.lexer import quote


def to_text(rule: Rule) -> str:
    """The canonical text form of ``rule``; ``parse(to_text(rule)) == rule``."""
    if isinstance(rule, Or):
        return " or ".join(_wrap(item, isinstance(item, Or)) for item in rule.or_)
    if isinstance(rule, And):
        return " and ".join(_wrap(item, isinstance(item, And | Or)) for item in rule.and_)
    if isinstance(rule, Not):
        return "not " + _wrap(rule.not_, isinstance(rule.not_, And | Or))
    if isinstance(rule, TagCondition):
        return _comparison(f"tag.{rule.tag}", rule.op, rule.value, bare_true=True)
    if isinstance(rule, TraitCondition):
        return _comparison(f"trait.{rule.trait}", rule.op, rule.value, bare_true=True)
    if isinstance(rule, ConsentCondition):
        return f"consent.{rule.consent}"
    if isinstance(rule, SegmentCondition):
        return f"segment.{rule.segment}"
    if isinstance(rule, DidCondition):
        call = _event_call(rule.event, rule.window, rule.where)
        return f"did {call}" if rule.did else f"did not {call}"
    if isinstance(rule, EventCondition):
        call = _event_call(rule.event, rule.window, rule.where)
        measure = rule.measure.value if rule.of is None else f"{rule.measure.value}({rule.of})"
        return _comparison(f"{call}.{measure}", rule.op, rule.value, bare_true=False)
    if isinstance(rule, SequenceCondition):
        steps = " then ".join(rule.sequence)
        window = f", {_window(rule.window)}" if rule.window is not None else ""
        return f"sequence({steps} within {rule.within_days}d{window})"
    raise TypeError(f"not a rule node: {rule!r}")  # pragma: no cover


def where_text(where: Where) -> str:
    """The text of an event filter (the part after ``where``)."""
    if isinstance(where, WhereOr):
        return " or ".join(_wrap(where_text(i), isinstance(i, WhereOr)) for i in where.or_)
    if isinstance(where, WhereAnd):
        return " and ".join(
            _wrap(where_text(i), isinstance(i, WhereAnd | WhereOr)) for i in where.and_
        )
    if isinstance(where, WhereNot):
        inner = where.not_
        return "not " + _wrap(where_text(inner), isinstance(inner, WhereAnd | WhereOr))
    assert isinstance(where, FieldCondition)
    return _comparison(where.field, where.op, where.value, bare_true=False)


def literal_text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, DateLiteral):
        return f"date '{value.date.isoformat()}'"
    return quote(value)


def _wrap(item: Rule | str, parenthesise: bool) -> str:
    text = item if isinstance(item, str) else to_text(item)
    return f"({text})" if parenthesise else text


def _comparison(subject: str, op: Op, value: Value, *, bare_true: bool) -> str:
    if op is Op.EQ and value is True and bare_true:
        return subject
    if op in (Op.IS_NULL, Op.IS_NOT_NULL):
        return f"{subject} {op.value}"
    if op is Op.BETWEEN:
        assert isinstance(value, tuple)
        return f"{subject} between {literal_text(value[0])} and {literal_text(value[1])}"
    if isinstance(value, tuple):
        return f"{subject} {op.value} ({', '.join(literal_text(v) for v in value)})"
    assert value is not None
    return f"{subject} {op.value} {literal_text(value)}"


def _window(window: Window) -> str:
    if window.last_days is not None:
        return f"last {window.last_days}d"
    if window.since is not None:
        return f"since date '{window.since.isoformat()}'"
    assert window.between is not None
    low, high = window.between
    return f"between date '{low.isoformat()}' and date '{high.isoformat()}'"


def _event_call(name: str, window: Window | None, where: Where | None) -> str:
    parts = [name]
    if window is not None:
        parts.append(_window(window))
    if where is not None:
        parts.append("where " + where_text(where))
    return f"event({', '.join(parts)})"
