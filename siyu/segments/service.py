"""Segments: saved rules and lists, live counts, samples, evaluations with diffs, exports.

Rules are checked and compiled by :mod:`siyu.segments.rules` against :class:`TagWorld`, the
tag store seen as a :class:`~siyu.segments.rules.RuleContext`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.errors import ConflictError, InvalidInputError, NotFoundError
from siyu.core.i18n import N_
from siyu.events import EventStore, system
from siyu.identity import service as identity
from siyu.identity.rules import is_valid_type
from siyu.segments.models import (
    EvaluationRead,
    Segment,
    SegmentCreate,
    SegmentEvaluation,
    SegmentRead,
)
from siyu.segments.rules import FieldInfo, Rule, compile_rule, parse, parse_json, to_json, to_text
from siyu.tags import service as tags
from siyu.tags.definitions import TagDefinition, Trait

MEMBERS_TABLE = "segment_members"
CHANGES_TABLE = "segment_changes"
STATIC_TABLE = "segment_static_members"
CONSENT_EVENTS = ("consent_granted", "consent_revoked", "unsubscribe")
EXPORT_LIMIT = 5_000_000


@dataclass
class TagWorld:
    """The rule context over the tag store: people, tag values, traits, events, segments."""

    db_session: Session
    events_store: EventStore
    now_utc: datetime
    tz: ZoneInfo

    def __post_init__(self) -> None:
        definitions = tags.active_definitions(self.db_session)
        self._tags = {d.key: d for d in definitions}
        self._traits = {d.compute.trait: d for d in definitions if isinstance(d.compute, Trait)}
        values = (
            self.events_store.table(tags.VALUES_TABLE)
            if self.events_store.has_table(tags.VALUES_TABLE)
            else self.people()
        )
        # A tag defined but not refreshed yet reads as null (no one matches it) until the
        # next refresh, so segments can be saved before their tags have values.
        missing = {
            d.key: ibis.null(tags.storage_type(d))
            for d in definitions
            if d.key not in values.columns
        }
        self._values = values.mutate(**missing) if missing else values

    @property
    def now(self) -> datetime:
        return self.now_utc

    @property
    def timezone(self) -> ZoneInfo:
        return self.tz

    def people(self) -> ir.Table:
        people: ir.Table = identity.people(self.events_store)
        return people

    def _info(self, definition: TagDefinition | None) -> FieldInfo | None:
        if definition is None:
            return None
        return FieldInfo(definition.key, definition.value_type, definition.values)

    def tag_info(self, key: str) -> FieldInfo | None:
        return self._info(self._tags.get(key))

    def tags(self) -> ir.Table:
        return self._values

    def trait_info(self, key: str) -> FieldInfo | None:
        info = self._info(self._traits.get(key))
        return None if info is None else FieldInfo(key, info.value_type, info.values)

    def traits(self) -> ir.Table:
        if self._values is None:
            return self.people()
        present = {k: d for k, d in self._traits.items() if d.key in self._values.columns}
        return self._values.select(
            "person_id", **{k: self._values[d.key] for k, d in present.items()}
        )

    def events(self) -> ir.Table:
        return identity.person_events(self.events_store)

    def consent(self) -> ir.Table | None:
        """Latest consent event per person and channel (granted unless revoked/unsubscribed).

        The consent ledger (privacy) will replace this reading of events."""
        events = self.events()
        chosen = events.filter(events.name.isin(CONSENT_EVENTS), events.person_id.notnull())
        latest = chosen.group_by(["person_id", "channel"]).aggregate(
            last=chosen.name.argmax(ibis.struct({"ts": chosen.ts, "id": chosen.event_id}))
        )
        return latest.select("person_id", "channel", granted=latest["last"] == "consent_granted")

    def segment(self, key: str) -> Rule | ir.Table | None:
        row = self.db_session.get(Segment, key)
        if row is None or row.status != "active":
            return None
        if row.kind == "static":
            return static_members(self.events_store, key)
        return parse_json(row.rule)


def world(
    db_session: Session, events: EventStore, *, tz: ZoneInfo, now: datetime | None = None
) -> TagWorld:
    return TagWorld(db_session, events, (now or utcnow()).astimezone(UTC), tz)


def read_rule(*, text: str | None = None, json_form: dict[str, Any] | None = None) -> Rule:
    if text is not None:
        return parse(text)
    if json_form is not None:
        return parse_json(json_form)
    raise InvalidInputError(N_("Give a rule as text or as JSON"))


# -- counting and sampling ------------------------------------------------------------------------


def count(context: TagWorld, rule: Rule) -> int:
    members = compile_rule(rule, context)
    return int(members.count().to_pyarrow().as_py())


def sample(
    context: TagWorld, rule: Rule, *, size: int = 20, columns: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """A deterministic sample of members (ordered by person id) with some tag values."""
    members = compile_rule(rule, context).order_by("person_id").limit(size)
    values = context.tags()
    wanted = [c for c in columns if c in values.columns and c != "person_id"]
    if wanted:
        members = members.left_join(values.select("person_id", *wanted), "person_id").select(
            "person_id", *wanted
        )
    rows: list[dict[str, Any]] = members.order_by("person_id").to_pyarrow().to_pylist()
    return rows


# -- saved segments -------------------------------------------------------------------------------


def _row(db_session: Session, key: str) -> Segment:
    row = db_session.get(Segment, key)
    if row is None:
        raise NotFoundError(N_("No segment {key}"), key=key)
    return row


def get_segment(db_session: Session, key: str) -> SegmentRead:
    return SegmentRead.model_validate(_row(db_session, key))


def list_segments(
    db_session: Session,
    *,
    status: str | None = "active",
    search: str | None = None,
    sort: str = "key",
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[SegmentRead], int]:
    """A page of segments and the total matching (``search``: part of the key or name)."""
    query = select(Segment)
    if status:
        query = query.where(Segment.status == status)
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(Segment.key.like(pattern, escape="\\"), Segment.name.like(pattern, escape="\\"))
        )
    order = {
        "key": Segment.key,
        "name": Segment.name,
        "members": Segment.members.desc().nulls_last(),
        "updated": Segment.updated_at.desc(),
    }
    if sort not in order:
        raise InvalidInputError(
            N_("Unknown sort {sort!r}; use one of {known}"), sort=sort, known=", ".join(order)
        )
    total = db_session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db_session.scalars(query.order_by(order[sort], Segment.key).offset(offset).limit(limit))
    return [SegmentRead.model_validate(r) for r in rows], total


def create_segment(db_session: Session, context: TagWorld, spec: SegmentCreate) -> SegmentRead:
    if db_session.get(Segment, spec.key) is not None:
        raise ConflictError(N_("Segment {key} already exists"), key=spec.key)
    row = Segment(key=spec.key, name=spec.name, description=spec.description, kind=spec.kind)
    row.schedule = spec.schedule
    if spec.kind == "dynamic":
        _set_rule(db_session, context, row, read_rule(text=spec.rule_text, json_form=spec.rule))
    db_session.add(row)
    db_session.flush()
    return SegmentRead.model_validate(row)


def update_rule(db_session: Session, context: TagWorld, key: str, rule: Rule) -> SegmentRead:
    row = _row(db_session, key)
    if row.kind != "dynamic":
        raise InvalidInputError(N_("Segment {key} is a static list; it has no rule"), key=key)
    _set_rule(db_session, context, row, rule)
    row.version += 1
    row.updated_at = utcnow()
    db_session.flush()
    return SegmentRead.model_validate(row)


def _set_rule(db_session: Session, context: TagWorld, row: Segment, rule: Rule) -> None:
    """Check the rule (names, types, no cycle through this very segment) before saving."""
    row.rule, row.rule_text = to_json(rule), to_text(rule)
    db_session.add(row)
    db_session.flush()  # so a reference back to this segment is seen as a cycle
    compile_rule(rule, context)


def archive_segment(db_session: Session, key: str) -> SegmentRead:
    row = _row(db_session, key)
    row.status, row.updated_at = "archived", utcnow()
    db_session.flush()
    return SegmentRead.model_validate(row)


def restore_segment(db_session: Session, key: str) -> SegmentRead:
    row = _row(db_session, key)
    row.status, row.updated_at = "active", utcnow()
    db_session.flush()
    return SegmentRead.model_validate(row)


# -- static lists ---------------------------------------------------------------------------------


def current_members(events: EventStore, key: str) -> ir.Table:
    """The people in segment ``key`` at its last evaluation (``person_id``)."""
    if not events.has_table(MEMBERS_TABLE):
        return ibis.memtable(pa.table({"person_id": pa.array([], pa.string())}))
    table = events.table(MEMBERS_TABLE)
    return table.filter(table.segment_key == key).select("person_id")


def static_members(events: EventStore, key: str) -> ir.Table:
    if not events.has_table(STATIC_TABLE):
        return ibis.memtable(pa.table({"person_id": pa.array([], pa.string())}))
    table = events.table(STATIC_TABLE)
    return table.filter(table.segment_key == key).select("person_id").distinct()


def upload_members(
    db_session: Session,
    events: EventStore,
    key: str,
    person_ids: Sequence[str],
    *,
    replace: bool = True,
) -> dict[str, int]:
    """Set a static segment's members (person ids; unknown ids are reported, not kept)."""
    row = _row(db_session, key)
    if row.kind != "static":
        raise InvalidInputError(N_("Segment {key} is dynamic; its rule decides members"), key=key)
    wanted = pa.table({"person_id": pa.array(sorted(set(person_ids)), pa.string())})
    known_people = identity.people(events)
    given = ibis.memtable(wanted)
    known = given.semi_join(known_people, "person_id")
    rows = known.mutate(segment_key=ibis.literal(key)).select("segment_key", "person_id")
    kept = events.table(STATIC_TABLE) if events.has_table(STATIC_TABLE) else None
    if kept is not None:
        others = kept.filter(kept.segment_key != key) if replace else kept
        rows = others.select("segment_key", "person_id").union(rows, distinct=True)
    events.materialize(f"{STATIC_TABLE}_staging", rows)
    events.publish(
        replace={STATIC_TABLE: events.table(f"{STATIC_TABLE}_staging")},
        drop=[f"{STATIC_TABLE}_staging"],
    )
    stored = int(static_members(events, key).count().to_pyarrow().as_py())
    return {
        "given": wanted.num_rows,
        "members": stored,
        "unknown": wanted.num_rows - int(known.count().to_pyarrow().as_py()),
    }


def people_from_lines(db_session: Session, hash_key: bytes, lines: Sequence[str]) -> list[str]:
    """A list as operators upload it: person ids, or identifiers ``TYPE:VALUE`` (phone:138…).

    Identifiers are looked up through their blind index; those nobody has stay as given (and
    are then reported unknown)."""
    pairs = [_identifier(line) for line in lines]
    found = identity.people_by_identifiers(
        db_session=db_session, hash_key=hash_key, pairs=[p for p in pairs if p is not None]
    )
    return [
        found.get(pair, line) if pair is not None else line
        for line, pair in zip(lines, pairs, strict=True)
    ]


def _identifier(line: str) -> tuple[str, str] | None:
    kind, sep, value = line.partition(":")
    return (kind, value) if sep and value and is_valid_type(kind) else None


# -- evaluation: membership snapshots and diffs -------------------------------------------------


def members_of(context: TagWorld, key: str) -> ir.Table:
    row = _row(context.db_session, key)
    if row.kind == "static":
        return static_members(context.events_store, key)
    return compile_rule(parse_json(row.rule), context)


def evaluate(context: TagWorld, key: str) -> EvaluationRead:
    """Recompute members, record who entered and who exited, publish in one transaction.

    The changes are rows of ``segment_changes`` (journeys trigger on them)."""
    db_session, events = context.db_session, context.events_store
    row = _row(db_session, key)
    evaluation = SegmentEvaluation(segment_key=key, version=row.version, evaluated_at=context.now)
    db_session.add(evaluation)
    db_session.flush()
    staging = "segment_members_staging"
    events.materialize(staging, members_of(context, key).select("person_id").distinct())
    now = events.table(staging)
    before = (
        events.table(MEMBERS_TABLE).filter(ibis._.segment_key == key)
        if events.has_table(MEMBERS_TABLE)
        else ibis.memtable(
            pa.table(
                {
                    "segment_key": pa.array([], pa.string()),
                    "person_id": pa.array([], pa.string()),
                    "since": pa.array([], pa.timestamp("us", tz="UTC")),
                }
            )
        )
    )
    at = ibis.literal(context.now, "timestamp('UTC')")
    entered = now.anti_join(before, "person_id").select(
        segment_key=ibis.literal(key),
        person_id="person_id",
        change=ibis.literal("entered"),
        at=at,
        evaluation_id=ibis.literal(evaluation.id, "int64"),
    )
    exited = before.anti_join(now, "person_id").select(
        segment_key=ibis.literal(key),
        person_id="person_id",
        change=ibis.literal("exited"),
        at=at,
        evaluation_id=ibis.literal(evaluation.id, "int64"),
    )
    stayed = before.semi_join(now, "person_id").select(
        "segment_key", "person_id", since=before.since.cast("timestamp('UTC')")
    )
    joined = now.anti_join(before, "person_id").select(
        segment_key=ibis.literal(key), person_id="person_id", since=at
    )
    new_members = stayed.union(joined)
    if events.has_table(MEMBERS_TABLE):
        table = events.table(MEMBERS_TABLE)
        others = table.filter(table.segment_key != key)
        new_members = others.mutate(since=others.since.cast("timestamp('UTC')")).union(new_members)
    events.materialize("segment_members_next", new_members)
    events.materialize("segment_changes_staging", entered.union(exited))
    events.publish(
        append={CHANGES_TABLE: events.table("segment_changes_staging")},
        replace={MEMBERS_TABLE: events.table("segment_members_next")},
        drop=[staging, "segment_members_next", "segment_changes_staging"],
    )
    changes = events.table(CHANGES_TABLE)
    mine = changes.filter(changes.evaluation_id == evaluation.id)
    summary = mine.group_by("change").aggregate(n=mine.count()).to_pyarrow().to_pylist()
    by_change = {r["change"]: int(r["n"]) for r in summary}
    _emit_changes(events, mine, key, evaluation.id, context.now)
    evaluation.entered = by_change.get("entered", 0)
    evaluation.exited = by_change.get("exited", 0)
    table = events.table(MEMBERS_TABLE)
    evaluation.members = int(table.filter(table.segment_key == key).count().to_pyarrow().as_py())
    row.members, row.evaluated_at = evaluation.members, context.now
    db_session.flush()
    return EvaluationRead.model_validate(evaluation)


def _emit_changes(
    events: EventStore, mine: ir.Table, key: str, evaluation_id: int, at: datetime
) -> None:
    """``segment_entered`` / ``segment_exited`` events, for journeys to trigger on."""
    rows = mine.select("person_id", "change").to_pyarrow().to_pylist()
    for change in ("entered", "exited"):
        people = [r["person_id"] for r in rows if r["change"] == change]
        system.record(
            events,
            name=f"segment_{change}",
            source="siyu.segments",
            at=at,
            person_ids=people,
            properties=[{"segment": key}] * len(people),
            id_parts=[f"{key}:{p}:{evaluation_id}" for p in people],
        )


def changes(
    events: EventStore, key: str, *, change: str | None = None, offset: int = 0, limit: int = 100
) -> list[dict[str, Any]]:
    if not events.has_table(CHANGES_TABLE):
        return []
    table = events.table(CHANGES_TABLE)
    table = table.filter(table.segment_key == key)
    if change:
        table = table.filter(table.change == change)
    rows: list[dict[str, Any]] = (
        table.order_by([ibis.desc("at"), "person_id"])
        .limit(limit, offset=offset)
        .to_pyarrow()
        .to_pylist()
    )
    return rows


def evaluations(db_session: Session, key: str, *, limit: int = 20) -> list[EvaluationRead]:
    _row(db_session, key)
    rows = db_session.scalars(
        select(SegmentEvaluation)
        .where(SegmentEvaluation.segment_key == key)
        .order_by(SegmentEvaluation.id.desc())
        .limit(limit)
    )
    return [EvaluationRead.model_validate(r) for r in rows]


# -- export ---------------------------------------------------------------------------------------


def export_rows(
    context: TagWorld, key: str, *, columns: Sequence[str] = (), show_pii: bool = False
) -> pa.Table:
    """Members with chosen tag columns and their identifiers, masked (138****5678) unless the
    caller may see PII (then still only what the operational store holds: masked values; raw
    values never leave the event store through an export)."""
    members = members_of(context, key)
    values = context.tags()
    wanted = [c for c in columns if c in values.columns and c != "person_id"]
    unknown = sorted(set(columns) - set(wanted) - {"person_id"})
    if unknown:
        raise InvalidInputError(N_("Unknown tags to export: {keys}"), keys=", ".join(unknown))
    table = (
        members.left_join(values.select("person_id", *wanted), "person_id")
        .select("person_id", *wanted)
        .order_by("person_id")
        .limit(EXPORT_LIMIT)
    )
    data = table.to_pyarrow()
    ids = data.column("person_id").to_pylist()
    found = identity.masked_identifiers(db_session=context.db_session, person_ids=ids)
    masked = [";".join(found.get(p, [])) for p in ids]
    del show_pii  # identifiers are stored masked only (see identity); nothing more to reveal
    return data.append_column("identifiers", pa.array(masked, pa.string()))


def write_export(data: pa.Table, out: Path, fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(data, out)
        return
    with out.open("w", encoding="utf-8-sig", newline="") as handle:
        for chunk in csv_chunks(data):
            handle.write(chunk)


def csv_chunks(data: pa.Table, size: int = 10_000) -> Iterator[str]:
    """CSV text in pieces (header first), for files and streamed HTTP answers."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(data.column_names)
    yield buffer.getvalue()
    for batch in data.to_batches(max_chunksize=size):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in batch.to_pylist():
            writer.writerow(["" if v is None else _cell(v) for v in row.values()])
        yield buffer.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    text = str(value)
    # A cell starting with = + - @ would run as a formula in a spreadsheet: quote it.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
