"""What the rule checker and compiler need to know about the world: the catalogue of tags and
traits, and the tables to compile against. The tag store implements it; tests implement it over
a small DuckDB database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from siyu.tags.definitions import ValueType as ValueType  # the one list of value types

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from siyu.segments.rules.ast import Rule


@dataclass(frozen=True)
class FieldInfo:
    """A tag or trait: its key, value type and, for an enum, its allowed values if known."""

    key: str
    value_type: ValueType
    values: tuple[str, ...] | None = None


class RuleContext(Protocol):
    """The catalogue and tables a rule is checked and compiled against.

    ``now`` is an aware UTC datetime windows are relative to; ``timezone`` sets day boundaries
    (``last 30d`` starts at local midnight 29 days before today; ``days`` counts distinct
    local dates).
    """

    @property
    def now(self) -> datetime: ...

    @property
    def timezone(self) -> ZoneInfo: ...

    def people(self) -> ir.Table:
        """The universe: column ``person_id`` (string), one row per person."""
        ...

    def tag_info(self, key: str) -> FieldInfo | None: ...

    def tags(self) -> ir.Table:
        """``person_id`` and one column per tag key, at most one row per person (list tags are
        ``array<string>``, dates ``date``, numbers integer or float)."""
        ...

    def trait_info(self, key: str) -> FieldInfo | None: ...

    def traits(self) -> ir.Table:
        """``person_id`` and one column per trait, at most one row per person."""
        ...

    def events(self) -> ir.Table:
        """The events: ``person_id`` (null = unresolved, ignored), ``name``, ``ts`` (UTC
        timestamp), the promoted columns and ``properties`` (JSON text)."""
        ...

    def consent(self) -> ir.Table | None:
        """``person_id``, ``channel``, ``granted`` (bool): the latest state per person and
        channel; None when there is no consent data (every ``consent.X`` is then false)."""
        ...

    def segment(self, key: str) -> Rule | ir.Table | None:
        """A dynamic segment's rule, a static segment's members (``person_id``), or None."""
        ...
