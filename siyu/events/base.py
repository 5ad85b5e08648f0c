"""The event-store interface. One base class; each engine is a small subclass."""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from siyu.core.clock import utcnow
from siyu.core.errors import InvalidEventsError
from siyu.core.i18n import N_
from siyu.events.schema import EVENTS_SCHEMA, REQUIRED_COLUMNS

_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class AppendResult:
    """What an append did: rows stored, and rows skipped because their event_id was known."""

    received: int
    inserted: int
    duplicates: int
    # The event ids skipped because they were stored before this append (not repeats inside
    # the batch), as an Arrow array; None when there were none or the engine does not say.
    skipped_ids: Any = dataclass_field(default=None, compare=False, repr=False)


class EventStore(abc.ABC):
    """Append-only event storage, read as Ibis tables.

    Guarantees every engine keeps: an append is atomic (readers see all of it or none),
    a row whose ``event_id`` is already stored is skipped (also across restarts), and one
    writer at a time appends inside a process.
    """

    DIALECT: ClassVar[str]

    def __init__(self, url: str) -> None:
        self.url = url
        # Bumped by every replace/publish in this process; with the event count it names the
        # data a cached analysis was computed from (one process writes a store at a time).
        self.generation = 0

    def data_version(self) -> str:
        """Changes whenever events are appended or a derived table is replaced."""
        return f"{self.count()}.{self.generation}"

    @abc.abstractmethod
    def append(self, events: pa.Table) -> AppendResult:
        """Store ``events`` (conformed to :data:`EVENTS_SCHEMA`), skipping known event ids."""

    @abc.abstractmethod
    def table(self, name: str = "events") -> Any:
        """An Ibis table expression over ``name`` (``events`` or a dimension table)."""

    @abc.abstractmethod
    def replace_table(self, name: str, data: pa.Table) -> None:
        """Create or atomically replace a dimension table (catalogue, reference data)."""

    @abc.abstractmethod
    def has_table(self, name: str) -> bool: ...

    @abc.abstractmethod
    def materialize(self, name: str, expr: Any) -> int:
        """Create or replace table ``name`` from an Ibis expression computed by the engine;
        return its row count. For staging: readers of ``name`` may see it half-way."""

    @abc.abstractmethod
    def publish(
        self,
        *,
        append: Mapping[str, Any] | None = None,
        replace: Mapping[str, Any] | None = None,
        drop: Sequence[str] = (),
    ) -> dict[str, int]:
        """In one transaction: append the rows of Ibis expressions to tables (created on
        first use), replace tables by expressions, drop tables. Readers see all or nothing.
        Returns the number of rows appended per table."""

    @abc.abstractmethod
    def count(self) -> int:
        """Number of stored events."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Prove the store answers; raise :class:`~siyu.core.errors.EventStoreError` if not."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_table_name(name: str) -> str:
    if not _TABLE_NAME.match(name):
        raise InvalidEventsError(N_("Invalid table name {name!r}"), name=name)
    return name


def conform(events: pa.Table) -> pa.Table:
    """Cast ``events`` to :data:`EVENTS_SCHEMA`: fill absent optional columns with nulls,
    default ``received_at`` to now, and reject unknown columns, bad types and missing
    required values with one error listing every problem."""
    problems: list[dict[str, Any]] = []
    unknown = [name for name in events.column_names if EVENTS_SCHEMA.get_field_index(name) < 0]
    for name in unknown:
        problems.append({"field": name, "reason": "unknown column"})
    rows = events.num_rows
    columns: list[pa.Array | pa.ChunkedArray] = []
    for field in EVENTS_SCHEMA:
        if field.name in events.column_names:
            column = events.column(field.name)
            try:
                column = column.cast(field.type) if column.type != field.type else column
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                problems.append(
                    {"field": field.name, "reason": f"cannot be read as {field.type}: {exc}"}
                )
                column = pa.nulls(rows, field.type)
        elif field.name == "received_at":
            column = (
                pa.array([utcnow()] * rows, type=field.type) if rows else pa.nulls(0, field.type)
            )
        else:
            column = pa.nulls(rows, field.type)
        if field.name in REQUIRED_COLUMNS:
            missing = column.null_count
            if missing:
                problems.append(
                    {"field": field.name, "reason": f"required, missing in {missing} rows"}
                )
        columns.append(column)
    if problems:
        raise InvalidEventsError(
            N_("The events do not fit the event schema ({count} problems)"),
            errors=problems,
            count=len(problems),
        )
    received_at = columns[EVENTS_SCHEMA.get_field_index("received_at")]
    if received_at.null_count:
        fill = pa.scalar(utcnow(), type=EVENTS_SCHEMA.field("received_at").type)
        columns[EVENTS_SCHEMA.get_field_index("received_at")] = pc.fill_null(received_at, fill)
    return pa.Table.from_arrays(columns, schema=EVENTS_SCHEMA)


def first_of_each_id(events: pa.Table) -> pa.Table:
    """Keep the first row of each ``event_id`` (duplicates inside one batch)."""
    ids = events.column("event_id")
    if pc.count_distinct(ids).as_py() == events.num_rows:
        return events
    indexed = events.select(["event_id"]).append_column("__row", pa.array(range(events.num_rows)))
    firsts = indexed.group_by("event_id", use_threads=False).aggregate([("__row", "min")])
    keep = pc.sort_indices(firsts.column("__row_min"))
    return events.take(pc.take(firsts.column("__row_min"), keep))
