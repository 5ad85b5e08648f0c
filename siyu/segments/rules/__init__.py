"""The segment rule language: text ⇄ AST (the JSON form) → check → Ibis.

``parse`` reads the text form, ``parse_json`` the JSON form, ``to_text`` / ``to_json`` write
them; ``check`` resolves names and types against a :class:`RuleContext`; ``compile_rule``
gives the members as an Ibis table and ``count_rule`` their number. See ``docs/segments.md``.
"""

from siyu.segments.rules.ast import (
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
    Where,
    WhereAnd,
    WhereNot,
    WhereOr,
    Window,
    parse_json,
    to_json,
)
from siyu.segments.rules.check import check
from siyu.segments.rules.compiler import compile_rule, count_rule
from siyu.segments.rules.context import FieldInfo, RuleContext, ValueType
from siyu.segments.rules.errors import (
    RuleError,
    RuleJsonError,
    RuleSemanticError,
    RuleSyntaxError,
    SegmentCycleError,
    TypeMismatchError,
    UnknownNameError,
)
from siyu.segments.rules.parser import parse
from siyu.segments.rules.printer import to_text

__all__ = [
    "And",
    "ConsentCondition",
    "DateLiteral",
    "DidCondition",
    "EventCondition",
    "FieldCondition",
    "FieldInfo",
    "Measure",
    "Not",
    "Op",
    "Or",
    "Rule",
    "RuleContext",
    "RuleError",
    "RuleJsonError",
    "RuleSemanticError",
    "RuleSyntaxError",
    "SegmentCondition",
    "SegmentCycleError",
    "SequenceCondition",
    "TagCondition",
    "TraitCondition",
    "TypeMismatchError",
    "UnknownNameError",
    "ValueType",
    "Where",
    "WhereAnd",
    "WhereNot",
    "WhereOr",
    "Window",
    "check",
    "compile_rule",
    "count_rule",
    "parse",
    "parse_json",
    "to_json",
    "to_text",
]
