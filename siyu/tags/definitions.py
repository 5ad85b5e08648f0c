"""Tag definitions as data: what a tag means, its type, and how it is computed.

A definition is a pydantic model. It is stored in the operational database (versioned), loaded
from and written to YAML, and compiled to an Ibis expression by ``siyu.tags.compiler``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from siyu.core.errors import InvalidInputError
from siyu.core.i18n import N_

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
_KEY = re.compile(KEY_PATTERN)


class ValueType(StrEnum):
    BOOL = "bool"
    ENUM = "enum"
    NUMBER = "number"
    DATE = "date"
    LIST = "list"
    STRING = "string"


class Category(StrEnum):
    BASIC = "basic"
    BEHAVIOUR = "behaviour"
    VALUE = "value"
    LIFECYCLE = "lifecycle"
    PREFERENCE = "preference"
    RISK = "risk"


class Cadence(StrEnum):
    REALTIME = "realtime"
    DAILY = "daily"
    WEEKLY = "weekly"


class Status(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"


class Function(StrEnum):
    """What an aggregation computes over the matching events of a person."""

    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    COUNT_DISTINCT = "count_distinct"
    ACTIVE_DAYS = "active_days"  # distinct local dates
    FIRST_TS = "first_ts"  # local date of the first matching event
    LAST_TS = "last_ts"
    DAYS_SINCE_FIRST = "days_since_first"
    DAYS_SINCE_LAST = "days_since_last"
    FIRST_VALUE = "first_value"  # the field's value on the first matching event
    LAST_VALUE = "last_value"
    TOP = "top"  # most frequent value(s); ties by value; ``top`` > 1 gives a list
    EXISTS = "exists"


# Promoted event columns a filter or an aggregation may name; others go through properties.
EVENT_FIELDS: dict[str, ValueType] = {
    "name": ValueType.STRING,
    "channel": ValueType.STRING,
    "source": ValueType.STRING,
    "scene": ValueType.STRING,
    "utm_source": ValueType.STRING,
    "utm_medium": ValueType.STRING,
    "utm_campaign": ValueType.STRING,
    "order_id": ValueType.STRING,
    "amount": ValueType.NUMBER,
    "currency": ValueType.STRING,
    "sku": ValueType.STRING,
    "category": ValueType.STRING,
    "quantity": ValueType.NUMBER,
    "hour": ValueType.NUMBER,  # local hour of day, 0-23
}
PROPERTY_PREFIX = "properties."


def is_event_field(name: str) -> bool:
    return name in EVENT_FIELDS or (
        name.startswith(PROPERTY_PREFIX) and bool(_KEY.match(name.removeprefix(PROPERTY_PREFIX)))
    )


class EventFilter(BaseModel):
    """``field op value`` on an event; ``properties.KEY`` reads the JSON properties."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    op: Literal["=", "!=", "in", "not in", ">", ">=", "<", "<=", "is null", "is not null"] = "="
    value: str | float | int | bool | list[str] | None = None

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        if not is_event_field(value):
            raise ValueError(f"unknown event field {value!r}")
        return value


def _kind_required(schema: dict[str, Any]) -> None:
    """The discriminator has a default in Python but is required on the wire (OpenAPI)."""
    required = schema.setdefault("required", [])
    if "kind" not in required:
        required.insert(0, "kind")


COMPUTATION_CONFIG = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_kind_required)


class Aggregate(BaseModel):
    """An aggregation over a person's events (of some names, in a window)."""

    model_config = COMPUTATION_CONFIG

    kind: Literal["aggregate"] = "aggregate"
    events: tuple[str, ...] = Field(min_length=1)
    function: Function
    field: str | None = None
    window_days: int | None = Field(default=None, ge=1, le=3650)
    # Only events before the window of this many days (e.g. "the last order before the
    # last 30 days").
    before_days: int | None = Field(default=None, ge=1, le=3650)
    where: tuple[EventFilter, ...] = ()
    top: int = Field(default=1, ge=1, le=10)

    @model_validator(mode="after")
    def _field_when_needed(self) -> Aggregate:
        needs = {
            Function.SUM,
            Function.AVG,
            Function.MIN,
            Function.MAX,
            Function.COUNT_DISTINCT,
            Function.FIRST_VALUE,
            Function.LAST_VALUE,
            Function.TOP,
        }
        if self.function in needs and not self.field:
            raise ValueError(f"function {self.function} needs a field")
        if self.field is not None and not is_event_field(self.field):
            raise ValueError(f"unknown event field {self.field!r}")
        return self


class Trait(BaseModel):
    """A profile trait from identify calls (latest non-empty value, or the first one)."""

    model_config = COMPUTATION_CONFIG

    kind: Literal["trait"] = "trait"
    trait: str = Field(pattern=KEY_PATTERN)
    rule: Literal["latest", "first"] = "latest"
    cast: Literal["string", "date", "number"] = "string"


class Formula(BaseModel):
    """An expression over other tags (see ``siyu.tags.formula`` for the language)."""

    model_config = COMPUTATION_CONFIG

    kind: Literal["formula"] = "formula"
    expression: str = Field(min_length=1, max_length=4000)


class Assigned(BaseModel):
    """Values set by people: imported from a file or assigned by hand (``siyu tags assign``)."""

    model_config = COMPUTATION_CONFIG

    kind: Literal["import", "manual"] = "manual"


Computation = Annotated[Aggregate | Trait | Formula | Assigned, Field(discriminator="kind")]


class TagDefinition(BaseModel):
    """One tag: its meaning for operators and the way it is computed."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=KEY_PATTERN)
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=200)
    category: Category
    value_type: ValueType
    compute: Computation
    values: tuple[str, ...] | None = None  # the allowed values of an enum, in display order
    unit: str | None = None
    cadence: Cadence = Cadence.DAILY
    owner: str = "siyu"
    description: str = ""
    usage_notes: str = ""
    track_history: bool | None = None  # default: for bool, enum and list tags

    @model_validator(mode="after")
    def _enum_values(self) -> TagDefinition:
        if self.values is not None and self.value_type is not ValueType.ENUM:
            raise ValueError("only enum tags list their values")
        return self

    @property
    def tracks_history(self) -> bool:
        if self.track_history is not None:
            return self.track_history
        return self.value_type in (ValueType.BOOL, ValueType.ENUM, ValueType.LIST)

    def same_content(self, other: TagDefinition) -> bool:
        return self.model_dump(mode="json") == other.model_dump(mode="json")


def definitions_to_yaml(definitions: list[TagDefinition]) -> str:
    documents = [d.model_dump(mode="json", exclude_defaults=True) for d in definitions]
    for document, definition in zip(documents, definitions, strict=True):
        document["compute"] = definition.compute.model_dump(mode="json", exclude_defaults=True)
        document["compute"]["kind"] = definition.compute.kind
    return yaml.safe_dump({"tags": documents}, allow_unicode=True, sort_keys=False, width=100)


def definitions_from_yaml(text: str) -> list[TagDefinition]:
    """Parse YAML (``tags: [...]`` or a bare list); errors name the tag and the field."""
    try:
        document: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(
            N_("The YAML could not be read: {reason}"), reason=str(exc)
        ) from None
    items = document.get("tags") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise InvalidInputError(N_("The YAML must hold a list of tags under 'tags:'"))
    definitions: list[TagDefinition] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            definitions.append(TagDefinition.model_validate(item))
        except ValueError as exc:
            key = item.get("key") if isinstance(item, dict) else None
            errors.append({"index": index, "key": key, "reason": str(exc)})
    if errors:
        raise InvalidInputError(
            N_("{count} tag definitions are not valid"), count=len(errors), errors=errors
        )
    keys = [d.key for d in definitions]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise InvalidInputError(
            N_("Tag keys appear more than once: {keys}"), keys=", ".join(duplicates)
        )
    return definitions
