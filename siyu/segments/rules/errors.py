"""Errors of the segment rule language: all are invalid input (HTTP 422).

Each carries its context as fields (the position and what was expected for a syntax error, the
tag and its type for a type mismatch, the cycle for a cyclic segment reference) and repeats it
in ``errors`` so the API's problem+json shows it.
"""

from __future__ import annotations

from typing import ClassVar

from siyu.core.errors import InvalidInputError
from siyu.core.i18n import N_


class RuleError(InvalidInputError):
    """A segment rule cannot be used."""

    code: ClassVar[str] = "segment_rule_invalid"
    title: ClassVar[str] = N_("Invalid segment rule")


class RuleSyntaxError(RuleError):
    """The rule's text does not follow the grammar.

    ``position`` is the 0-based offset of the offending token, ``line`` and ``column`` are
    1-based, ``expected`` lists what would have been accepted there and ``excerpt`` shows the
    line with a caret under the position.
    """

    code: ClassVar[str] = "segment_rule_syntax"
    title: ClassVar[str] = N_("Segment rule syntax error")

    def __init__(self, *, text: str, position: int, expected: list[str], found: str) -> None:
        line = text.count("\n", 0, position) + 1
        line_start = text.rfind("\n", 0, position) + 1
        line_end = text.find("\n", position)
        line_text = text[line_start : line_end if line_end != -1 else len(text)]
        column = position - line_start + 1
        excerpt = f"{line_text}\n{' ' * (column - 1)}^"
        self.position = position
        self.line = line
        self.column = column
        self.expected = expected
        self.found = found
        self.excerpt = excerpt
        super().__init__(
            N_(
                "Syntax error in segment rule at line {line}, column {column}: "
                "expected {expected_text}, found {found}"
            ),
            hint=N_("{excerpt}"),
            errors=[
                {
                    "position": position,
                    "line": line,
                    "column": column,
                    "expected": expected,
                    "found": found,
                    "excerpt": excerpt,
                }
            ],
            position=position,
            line=line,
            column=column,
            expected=expected,
            expected_text=_one_of(expected),
            found=found,
            excerpt=excerpt,
        )


class RuleJsonError(RuleError):
    """The rule's JSON form does not validate; ``errors`` holds each problem with its path."""

    code: ClassVar[str] = "segment_rule_json"


class RuleSemanticError(RuleError):
    """The rule parses but does not fit the catalogue of tags, traits, events and segments."""

    code: ClassVar[str] = "segment_rule_semantic"


class UnknownNameError(RuleSemanticError):
    """The rule names a tag, trait, segment, event field or measure that does not exist."""

    code: ClassVar[str] = "segment_rule_unknown_name"


class TypeMismatchError(RuleSemanticError):
    """An operator or literal does not fit the type of what it compares."""

    code: ClassVar[str] = "segment_rule_type_mismatch"


class SegmentCycleError(RuleSemanticError):
    """Segments refer to each other in a cycle; ``cycle`` lists it, first key repeated last."""

    code: ClassVar[str] = "segment_rule_cycle"


def _one_of(expected: list[str]) -> str:
    if len(expected) <= 1:
        return "".join(expected)
    return ", ".join(expected[:-1]) + " or " + expected[-1]
