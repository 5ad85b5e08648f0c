"""The segment rule AST: immutable pydantic models whose JSON dump is the rule's JSON form.

Every node is one JSON object told apart by its key (``{"and": [...]}``, ``{"tag": ...}``,
``{"event": ...}`` …), so a rule stored as JSON reads like the text form. Nodes are frozen and
hold tuples, so a rule is hashable and two rules are equal exactly when their trees are.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from siyu.core.i18n import N_
from siyu.segments.rules.errors import RuleJsonError
from siyu.tags.definitions import EVENT_FIELDS as TAG_EVENT_FIELDS
from siyu.tags.definitions import PROPERTY_PREFIX as PROPERTY_PREFIX
from siyu.tags.definitions import ValueType

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
SEGMENT_KEY = r"^[a-z][a-z0-9_]*$"
# The event fields a rule may filter on: the tags' own list, less ``name`` (a rule names its
# event) and ``hour`` (not a stored column).
EVENT_STRING_FIELDS = tuple(
    k for k, t in TAG_EVENT_FIELDS.items() if t is ValueType.STRING and k != "name"
)
EVENT_NUMBER_FIELDS = tuple(
    k for k, t in TAG_EVENT_FIELDS.items() if t is ValueType.NUMBER and k != "hour"
)
EVENT_FIELDS = EVENT_STRING_FIELDS + EVENT_NUMBER_FIELDS
EVENT_FIELD = r"^(?:[A-Za-z_][A-Za-z0-9_]*|properties\.[A-Za-z_][A-Za-z0-9_]*)$"


class Op(StrEnum):
    """Comparison operators; which ones a leaf may use depends on its value type."""

    EQ = "="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    BETWEEN = "between"
    IN = "in"
    NOT_IN = "not in"
    CONTAINS = "contains"
    CONTAINS_ANY = "contains any"
    CONTAINS_ALL = "contains all"
    IS_NULL = "is null"
    IS_NOT_NULL = "is not null"


ORDER_OPS = frozenset({Op.EQ, Op.NE, Op.GT, Op.GE, Op.LT, Op.LE, Op.BETWEEN})
LIST_VALUE_OPS = frozenset({Op.IN, Op.NOT_IN, Op.CONTAINS_ANY, Op.CONTAINS_ALL})
NULL_OPS = frozenset({Op.IS_NULL, Op.IS_NOT_NULL})
CONTAINS_OPS = frozenset({Op.CONTAINS, Op.CONTAINS_ANY, Op.CONTAINS_ALL})
MEASURE_OPS = ORDER_OPS


class Measure(StrEnum):
    COUNT = "count"
    DAYS = "days"
    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"


FIELD_MEASURES = frozenset({Measure.SUM, Measure.AVG, Measure.MAX, Measure.MIN})

_CONFIG = ConfigDict(
    frozen=True,
    extra="forbid",
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
)


class Node(BaseModel):
    model_config = _CONFIG


class DateLiteral(Node):
    """A calendar date; ``{"date": "2026-01-31"}`` in JSON, ``date '2026-01-31'`` in text."""

    date: date


FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Scalar: TypeAlias = StrictBool | StrictInt | FiniteFloat | StrictStr | DateLiteral
Value: TypeAlias = Scalar | tuple[Scalar, ...] | None
Number: TypeAlias = StrictInt | FiniteFloat


def _check_value(op: Op, value: Value) -> None:
    """The literal's shape fits the operator (types are checked later against the catalogue)."""
    if op in NULL_OPS:
        if value is not None:
            raise ValueError(f"operator '{op}' takes no value")
        return
    if value is None:
        raise ValueError(f"operator '{op}' needs a value (use 'is null' to test for null)")
    if op is Op.BETWEEN:
        if not isinstance(value, tuple) or len(value) != 2:
            raise ValueError("'between' takes exactly two values [low, high]")
        return
    if op in LIST_VALUE_OPS:
        if not isinstance(value, tuple) or not value:
            raise ValueError(f"operator '{op}' takes a non-empty list of values")
        return
    if isinstance(value, tuple):
        raise ValueError(f"operator '{op}' takes a single value, not a list")


class And(Node):
    and_: tuple[Rule, ...] = Field(alias="and", min_length=2)


class Or(Node):
    or_: tuple[Rule, ...] = Field(alias="or", min_length=2)


class Not(Node):
    not_: Rule = Field(alias="not")


class TagCondition(Node):
    """``tag.KEY OP value`` over the person's current tag value."""

    tag: str = Field(pattern=IDENTIFIER)
    op: Op
    value: Value = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> TagCondition:
        _check_value(self.op, self.value)
        return self


class TraitCondition(Node):
    """``trait.KEY OP value`` over the person's profile trait."""

    trait: str = Field(pattern=IDENTIFIER)
    op: Op
    value: Value = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> TraitCondition:
        _check_value(self.op, self.value)
        return self


class ConsentCondition(Node):
    """``consent.CHANNEL``: the person's latest consent on the channel is granted."""

    consent: str = Field(pattern=IDENTIFIER)


class SegmentCondition(Node):
    """``segment.KEY``: membership in another segment."""

    segment: str = Field(pattern=SEGMENT_KEY)


class Window(Node):
    """Exactly one of: the last N local calendar days (today included), since a date, between
    two dates (both included)."""

    last_days: int | None = Field(default=None, ge=1, strict=True)
    since: date | None = None
    between: tuple[date, date] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Window:
        given = [v for v in (self.last_days, self.since, self.between) if v is not None]
        if len(given) != 1:
            raise ValueError("a window has exactly one of 'last_days', 'since', 'between'")
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError("a window's 'between' dates must be in order")
        return self


class FieldCondition(Node):
    """``FIELD OP value`` over one event's promoted column or ``properties.KEY``."""

    field: str = Field(pattern=EVENT_FIELD)
    op: Op
    value: Value = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> FieldCondition:
        if self.op in CONTAINS_OPS:
            raise ValueError(f"operator '{self.op}' cannot compare an event field")
        _check_value(self.op, self.value)
        return self


class WhereAnd(Node):
    and_: tuple[Where, ...] = Field(alias="and", min_length=2)


class WhereOr(Node):
    or_: tuple[Where, ...] = Field(alias="or", min_length=2)


class WhereNot(Node):
    not_: Where = Field(alias="not")


class EventCondition(Node):
    """``event(NAME[, window][, where …]).MEASURE OP number``."""

    event: str = Field(pattern=IDENTIFIER)
    window: Window | None = None
    where: Where | None = None
    measure: Measure = Measure.COUNT
    of: str | None = Field(default=None, pattern=EVENT_FIELD)
    op: Op
    value: Number | tuple[Number, Number]

    @model_validator(mode="after")
    def _valid(self) -> EventCondition:
        if self.op not in MEASURE_OPS:
            raise ValueError(f"operator '{self.op}' cannot compare an event measure")
        _check_value(self.op, self.value)
        if (self.measure in FIELD_MEASURES) != (self.of is not None):
            raise ValueError(
                f"measure '{self.measure}' {'needs' if self.of is None else 'takes no'} 'of'"
            )
        return self


class DidCondition(Node):
    """``did event(…)`` (``did: true``) or ``did not event(…)`` (``did: false``)."""

    did: bool
    event: str = Field(pattern=IDENTIFIER)
    window: Window | None = None
    where: Where | None = None


class SequenceCondition(Node):
    """``sequence(A then B [then C …] within Nd[, window])``: the steps in order, the last one
    at most N days after the first, all inside the window."""

    sequence: tuple[Annotated[str, Field(pattern=IDENTIFIER)], ...] = Field(min_length=2)
    within_days: int = Field(ge=1, strict=True)
    window: Window | None = None


_RULE_KEYS = (
    ("and", "and"),
    ("or", "or"),
    ("not", "not"),
    ("tag", "tag"),
    ("trait", "trait"),
    ("consent", "consent"),
    ("segment", "segment"),
    ("sequence", "sequence"),
    ("did", "did"),
    ("event", "event"),
)


def _model_kind(keys: tuple[tuple[str, str], ...], models: dict[str, type[BaseModel]]) -> Any:
    by_model = {model: name for name, model in models.items()}

    def kind(value: Any) -> str | None:
        if isinstance(value, BaseModel):
            return by_model.get(type(value))
        if isinstance(value, dict):
            for key, name in keys:
                if key in value:
                    return name
        return None

    return kind


_RULE_MODELS: dict[str, type[BaseModel]] = {
    "and": And,
    "or": Or,
    "not": Not,
    "tag": TagCondition,
    "trait": TraitCondition,
    "consent": ConsentCondition,
    "segment": SegmentCondition,
    "sequence": SequenceCondition,
    "did": DidCondition,
    "event": EventCondition,
}
_WHERE_KEYS = (("and", "and"), ("or", "or"), ("not", "not"), ("field", "field"))
_WHERE_MODELS: dict[str, type[BaseModel]] = {
    "and": WhereAnd,
    "or": WhereOr,
    "not": WhereNot,
    "field": FieldCondition,
}

Rule: TypeAlias = Annotated[
    Annotated[And, Tag("and")]
    | Annotated[Or, Tag("or")]
    | Annotated[Not, Tag("not")]
    | Annotated[TagCondition, Tag("tag")]
    | Annotated[TraitCondition, Tag("trait")]
    | Annotated[ConsentCondition, Tag("consent")]
    | Annotated[SegmentCondition, Tag("segment")]
    | Annotated[SequenceCondition, Tag("sequence")]
    | Annotated[DidCondition, Tag("did")]
    | Annotated[EventCondition, Tag("event")],
    Discriminator(
        _model_kind(_RULE_KEYS, _RULE_MODELS),
        custom_error_type="unknown_condition",
        custom_error_message=(
            "expected an object with one of the keys "
            "and, or, not, tag, trait, consent, segment, sequence, did, event"
        ),
    ),
]

Where: TypeAlias = Annotated[
    Annotated[WhereAnd, Tag("and")]
    | Annotated[WhereOr, Tag("or")]
    | Annotated[WhereNot, Tag("not")]
    | Annotated[FieldCondition, Tag("field")],
    Discriminator(
        _model_kind(_WHERE_KEYS, _WHERE_MODELS),
        custom_error_type="unknown_filter",
        custom_error_message="expected an object with one of the keys and, or, not, field",
    ),
]

for _model in (And, Or, Not, EventCondition, DidCondition, WhereAnd, WhereOr, WhereNot):
    _model.model_rebuild()

RULE_NODE_TYPES = (
    And,
    Or,
    Not,
    TagCondition,
    TraitCondition,
    ConsentCondition,
    SegmentCondition,
    SequenceCondition,
    DidCondition,
    EventCondition,
)

Leaf: TypeAlias = (
    TagCondition
    | TraitCondition
    | ConsentCondition
    | SegmentCondition
    | SequenceCondition
    | DidCondition
    | EventCondition
)

_RULE_ADAPTER: TypeAdapter[Rule] = TypeAdapter(Rule)


def parse_json(obj: Any) -> Rule:
    """Validate a rule's JSON form (a parsed JSON value) into its AST.

    Raises :class:`RuleJsonError` naming the path of every problem (unknown key, unknown
    operator, a value that does not fit its operator …).
    """
    try:
        return _RULE_ADAPTER.validate_python(obj)
    except ValidationError as exc:
        errors = exc.errors()
        # A list with a bad item also reports being too short; the bad item is the news.
        if any(error["type"] != "too_short" for error in errors):
            errors = [error for error in errors if error["type"] != "too_short"]
        problems: list[dict[str, str]] = []
        for error in errors:
            path = _path(error["loc"])
            if all(problem["path"] != path for problem in problems):
                problems.append({"path": path, "message": error["msg"]})
        first = problems[0]
        raise RuleJsonError(
            N_("Invalid segment rule at {path}: {problem}"),
            errors=problems,
            path=first["path"],
            problem=first["message"],
        ) from None


def to_json(rule: Rule) -> Any:
    """The rule's JSON form (absent optional parts left out)."""
    return _RULE_ADAPTER.dump_python(rule, mode="json", by_alias=True, exclude_none=True)


_UNION_MEMBER = re.compile(r"^(?:int|float|str|bool|date|DateLiteral|\w+\[.*\])$")


def _path(location: tuple[int | str, ...]) -> str:
    return ".".join(_drop_tags(location)) or "$"


def _drop_tags(location: tuple[int | str, ...]) -> list[str]:
    shown: list[str] = []
    previous_was_container = True
    for part in location:
        if (
            isinstance(part, str)
            and previous_was_container
            and (part in _RULE_MODELS or part in _WHERE_MODELS)
        ):
            previous_was_container = False
            continue
        if isinstance(part, str) and _UNION_MEMBER.match(part):
            continue  # which member of a value union pydantic tried
        shown.append(str(part))
        previous_was_container = isinstance(part, int) or part in ("and", "or", "not", "where")
    return shown
