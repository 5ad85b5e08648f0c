"""Tag definitions (CRUD, versions, YAML), assignments, refresh, and reading values back.

A refresh computes values in the engine and publishes them in one transaction: the new
``tag_values`` table, the ``tag_history`` rows of what changed and the ``tag_stats``. Readers
see the old values or the new ones, never a mix.
"""

from __future__ import annotations

import json
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.errors import ConflictError, InvalidInputError, NotFoundError
from siyu.core.i18n import N_
from siyu.events import EventStore, system
from siyu.identity import service as identity
from siyu.tags.compiler import (
    STORAGE_TYPES,
    Clock,
    Plan,
    Sources,
    compile_person_stage,
    compile_population_stage,
    plan,
    prepare_events,
)
from siyu.tags.definitions import (
    Assigned,
    Status,
    TagDefinition,
    ValueType,
    definitions_from_yaml,
    definitions_to_yaml,
)
from siyu.tags.library import builtin_tags
from siyu.tags.models import (
    TagAssignment,
    TagDefinitionRow,
    TagDefinitionVersion,
    TagRefresh,
    TagRefreshRead,
)

VALUES_TABLE = "tag_values"
HISTORY_TABLE = "tag_history"
STATS_TABLE = "tag_stats"
_STAGE_EVENTS = "tag_values_stage_events"
_STAGE_PERSON = "tag_values_stage_person"
_STAGE_ALL = "tag_values_stage_all"
_STAGE_CHANGES = "tag_values_stage_changes"
_STAGING = [_STAGE_EVENTS, _STAGE_PERSON, _STAGE_ALL, _STAGE_CHANGES]

Progress = Callable[[str, int, int], None]


class TagRead(BaseModel):
    key: str
    version: int
    status: str
    builtin: bool
    definition: TagDefinition
    refreshed_at: datetime | None
    updated_at: datetime


def _read(row: TagDefinitionRow) -> TagRead:
    return TagRead(
        key=row.key,
        version=row.version,
        status=row.status,
        builtin=row.builtin,
        definition=TagDefinition.model_validate(row.definition),
        refreshed_at=row.refreshed_at,
        updated_at=row.updated_at,
    )


# -- definitions -------------------------------------------------------------------------------


def ensure_builtin(db_session: Session) -> int:
    """Add built-in tags that are missing; update untouched built-ins whose code changed.

    A built-in an operator has edited is no longer marked built-in and is left alone.
    """
    rows = {r.key: r for r in db_session.scalars(select(TagDefinitionRow))}
    changed = 0
    for definition in builtin_tags():
        row = rows.get(definition.key)
        if row is None:
            _insert(db_session, definition, by="siyu", builtin=True)
            changed += 1
        elif row.builtin and row.definition != definition.model_dump(mode="json"):
            _update(db_session, row, definition, by="siyu", change="update")
            changed += 1
    db_session.flush()
    return changed


def _insert(db_session: Session, definition: TagDefinition, *, by: str, builtin: bool) -> None:
    row = TagDefinitionRow(key=definition.key, version=1, builtin=builtin, status=Status.ACTIVE)
    _apply(row, definition)
    db_session.add(row)
    _version(db_session, row, "create", by)


def _update(
    db_session: Session, row: TagDefinitionRow, definition: TagDefinition, *, by: str, change: str
) -> None:
    row.version += 1
    _apply(row, definition)
    row.updated_at = utcnow()
    _version(db_session, row, change, by)


def _apply(row: TagDefinitionRow, definition: TagDefinition) -> None:
    row.definition = definition.model_dump(mode="json")
    row.category = definition.category.value
    row.value_type = definition.value_type.value
    row.cadence = definition.cadence.value
    row.name_zh = definition.name_zh


def _version(db_session: Session, row: TagDefinitionRow, change: str, by: str) -> None:
    db_session.add(
        TagDefinitionVersion(
            key=row.key,
            version=row.version,
            change=change,
            definition=row.definition,
            changed_by=by,
        )
    )


# Parsed active definitions per database, with the fingerprint they were read at: parsing
# 200+ definitions costs tens of milliseconds, and pages and refreshes ask for them often.
_ACTIVE: dict[str, tuple[tuple[Any, ...], list[TagDefinition]]] = {}
_ACTIVE_LOCK = threading.Lock()


def active_definitions(db_session: Session) -> list[TagDefinition]:
    """Every active definition, by key; re-read only when one was added, changed or retired."""
    active = TagDefinitionRow.status == Status.ACTIVE
    fingerprint = tuple(
        db_session.execute(
            select(
                func.count(),
                func.sum(TagDefinitionRow.version),
                func.max(TagDefinitionRow.updated_at),
            ).where(active)
        ).one()
    )
    engine = db_session.get_bind().engine
    url = f"{engine.url}#{id(engine)}"  # one engine per database (and PostgreSQL schema)
    with _ACTIVE_LOCK:
        known = _ACTIVE.get(url)
    if known is not None and known[0] == fingerprint:
        return list(known[1])
    rows = db_session.scalars(select(TagDefinitionRow).where(active).order_by(TagDefinitionRow.key))
    parsed = [TagDefinition.model_validate(r.definition) for r in rows]
    with _ACTIVE_LOCK:
        _ACTIVE[url] = (fingerprint, parsed)
    return list(parsed)


def _row_or_raise(db_session: Session, key: str) -> TagDefinitionRow:
    row = db_session.get(TagDefinitionRow, key)
    if row is None:
        raise NotFoundError(N_("No tag {key}"), key=key)
    return row


def get_tag(db_session: Session, key: str) -> TagRead:
    return _read(_row_or_raise(db_session, key))


def list_tags(
    db_session: Session,
    *,
    category: str | None = None,
    status: str | None = Status.ACTIVE,
    search: str | None = None,
    sort: str = "key",
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[TagRead], int]:
    """A page of tags and the total matching, filtered and sorted."""
    query = select(TagDefinitionRow)
    if category:
        query = query.where(TagDefinitionRow.category == category)
    if status:
        query = query.where(TagDefinitionRow.status == status)
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(
                TagDefinitionRow.key.like(pattern, escape="\\"),
                TagDefinitionRow.name_zh.like(pattern, escape="\\"),
            )
        )
    total = db_session.scalar(select(func.count()).select_from(query.subquery())) or 0
    order = {
        "key": TagDefinitionRow.key,
        "name": TagDefinitionRow.name_zh,
        "category": TagDefinitionRow.category,
        "updated": TagDefinitionRow.updated_at.desc(),
    }
    if sort not in order:
        raise InvalidInputError(
            N_("Unknown sort {sort!r}; use one of {known}"), sort=sort, known=", ".join(order)
        )
    rows = db_session.scalars(
        query.order_by(order[sort], TagDefinitionRow.key).offset(offset).limit(limit)
    )
    return [_read(r) for r in rows], total


def _check_with(db_session: Session, changed: Sequence[TagDefinition]) -> None:
    """Refuse a change that leaves a formula on an unknown tag or a cycle."""
    current = {d.key: d for d in active_definitions(db_session)}
    current.update({d.key: d for d in changed})
    plan(list(current.values()))


def create_tag(db_session: Session, definition: TagDefinition, *, by: str = "api") -> TagRead:
    if db_session.get(TagDefinitionRow, definition.key) is not None:
        raise ConflictError(N_("Tag {key} already exists"), key=definition.key)
    _check_with(db_session, [definition])
    _insert(db_session, definition, by=by, builtin=False)
    db_session.flush()
    return get_tag(db_session, definition.key)


def update_tag(
    db_session: Session, key: str, definition: TagDefinition, *, by: str = "api"
) -> TagRead:
    row = _row_or_raise(db_session, key)
    if definition.key != key:
        raise InvalidInputError(
            N_("The definition's key {new} differs from the tag {key}"), new=definition.key, key=key
        )
    if row.definition == definition.model_dump(mode="json"):
        return _read(row)
    _check_with(db_session, [definition])
    row.builtin = False
    _update(db_session, row, definition, by=by, change="update")
    db_session.flush()
    return _read(row)


def retire_tag(db_session: Session, key: str, *, by: str = "api") -> TagRead:
    """Stop computing a tag; its values and history stay readable until the next refresh."""
    row = _row_or_raise(db_session, key)
    if row.status == Status.RETIRED:
        return _read(row)
    dependants = [
        d.key for d in active_definitions(db_session) if d.key != key and key in _references(d)
    ]
    if dependants:
        raise ConflictError(
            N_("Tag {key} is used by {dependants}; retire or change those first"),
            key=key,
            dependants=", ".join(sorted(dependants)),
        )
    row.status = Status.RETIRED
    row.version += 1
    row.updated_at = utcnow()
    _version(db_session, row, "retire", by)
    db_session.flush()
    return _read(row)


def restore_tag(db_session: Session, key: str, *, by: str = "api") -> TagRead:
    row = _row_or_raise(db_session, key)
    if row.status == Status.ACTIVE:
        return _read(row)
    _check_with(db_session, [TagDefinition.model_validate(row.definition)])
    row.status = Status.ACTIVE
    row.version += 1
    row.updated_at = utcnow()
    _version(db_session, row, "restore", by)
    db_session.flush()
    return _read(row)


def _references(definition: TagDefinition) -> set[str]:
    from siyu.tags.formula import references

    expression = getattr(definition.compute, "expression", None)
    return references(expression) if expression else set()


def versions(db_session: Session, key: str) -> list[TagDefinitionVersion]:
    _row_or_raise(db_session, key)
    return list(
        db_session.scalars(
            select(TagDefinitionVersion)
            .where(TagDefinitionVersion.key == key)
            .order_by(TagDefinitionVersion.version.desc())
        )
    )


def import_yaml(db_session: Session, text: str, *, by: str = "yaml") -> dict[str, int]:
    """Create new tags and update changed ones from YAML; all or nothing."""
    definitions = definitions_from_yaml(text)
    _check_with(db_session, definitions)
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for definition in definitions:
        row = db_session.get(TagDefinitionRow, definition.key)
        if row is None:
            _insert(db_session, definition, by=by, builtin=False)
            counts["created"] += 1
        elif row.definition == definition.model_dump(mode="json"):
            counts["unchanged"] += 1
        else:
            row.builtin = False
            _update(db_session, row, definition, by=by, change="update")
            counts["updated"] += 1
    db_session.flush()
    return counts


def export_yaml(db_session: Session, keys: Iterable[str] | None = None) -> str:
    wanted = set(keys) if keys else None
    definitions = [d for d in active_definitions(db_session) if wanted is None or d.key in wanted]
    if wanted is not None:
        missing = wanted - {d.key for d in definitions}
        if missing:
            raise NotFoundError(N_("No tag {key}"), key=", ".join(sorted(missing)))
    return definitions_to_yaml(definitions)


# -- assignments -------------------------------------------------------------------------------


def assign(
    db_session: Session,
    key: str,
    values: dict[str, Any],
    *,
    by: str = "api",
    source: str = "manual",
) -> int:
    """Give people (person id → value) a value of a manual or import tag. Returns how many."""
    definition = TagDefinition.model_validate(_row_or_raise(db_session, key).definition)
    if not isinstance(definition.compute, Assigned):
        raise InvalidInputError(
            N_("Tag {key} is computed; only manual and import tags take assigned values"), key=key
        )
    existing = {
        a.person_id: a
        for a in db_session.scalars(
            select(TagAssignment).where(
                TagAssignment.tag_key == key, TagAssignment.person_id.in_(list(values))
            )
        )
    }
    for person_id, value in values.items():
        text = _assigned_text(definition, value)
        row = existing.get(person_id)
        if row is None:
            db_session.add(
                TagAssignment(
                    person_id=person_id, tag_key=key, value=text, source=source, assigned_by=by
                )
            )
        else:
            row.value, row.source, row.assigned_by, row.assigned_at = text, source, by, utcnow()
    db_session.flush()
    return len(values)


def unassign(db_session: Session, key: str, person_ids: Iterable[str]) -> int:
    rows = list(
        db_session.scalars(
            select(TagAssignment).where(
                TagAssignment.tag_key == key, TagAssignment.person_id.in_(list(person_ids))
            )
        )
    )
    for row in rows:
        db_session.delete(row)
    db_session.flush()
    return len(rows)


def _assigned_text(definition: TagDefinition, value: Any) -> str:
    kind = definition.value_type
    ok = {
        ValueType.BOOL: isinstance(value, bool),
        ValueType.NUMBER: isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value),
        ValueType.LIST: isinstance(value, list) and all(isinstance(v, str) for v in value),
        ValueType.DATE: isinstance(value, str) and _is_date(value),
        ValueType.ENUM: isinstance(value, str)
        and (definition.values is None or value in definition.values),
        ValueType.STRING: isinstance(value, str),
    }[kind]
    if not ok:
        raise InvalidInputError(
            N_("Value {value!r} is not a valid {value_type} for tag {key}"),
            value=value,
            value_type=kind.value,
            key=definition.key,
        )
    if kind is ValueType.LIST:
        return json.dumps(value, ensure_ascii=False)
    if kind is ValueType.BOOL:
        return "true" if value else "false"
    return str(value)


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _assignments_table(db_session: Session, keys: Sequence[str]) -> ir.Table | None:
    if not keys:
        return None
    rows = db_session.execute(
        select(TagAssignment.person_id, TagAssignment.tag_key, TagAssignment.value).where(
            TagAssignment.tag_key.in_(list(keys))
        )
    ).all()
    data = pa.table(
        {
            "person_id": pa.array([r[0] for r in rows], pa.string()),
            "tag_key": pa.array([r[1] for r in rows], pa.string()),
            "value": pa.array([r[2] for r in rows], pa.string()),
        }
    )
    return ibis.memtable(data)


# -- refresh -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshOptions:
    tz: ZoneInfo
    as_of: datetime | None = None
    mode: str = "full"  # full | incremental
    keys: Sequence[str] | None = None


class RefreshRunningError(ConflictError):
    """A refresh is already running in this process (the event store has one writer)."""


_REFRESHING = threading.Lock()


def refresh(
    *,
    db_session: Session,
    events: EventStore,
    options: RefreshOptions,
    progress: Progress | None = None,
) -> TagRefreshRead:
    """Compute tags and publish them atomically; see the module docstring."""
    run = queue_refresh(db_session, events, options)
    return execute_refresh(
        db_session=db_session, events=events, run_id=run.id, options=options, progress=progress
    )


def ensure_idle() -> None:
    """Refuse (409) while a refresh runs in this process."""
    if _REFRESHING.locked():
        raise _running()


def _running() -> RefreshRunningError:
    return RefreshRunningError(
        N_("A tag refresh is already running"), hint=N_("Wait for it to finish, then retry.")
    )


def queue_refresh(db_session: Session, events: EventStore, options: RefreshOptions) -> TagRefresh:
    """Check the request (unknown tags, cycles) and record a queued run."""
    ensure_builtin(db_session)
    the_plan = plan(active_definitions(db_session), required=options.keys)
    run = TagRefresh(
        mode=options.mode,
        status="queued",
        as_of=(options.as_of or utcnow()).astimezone(UTC),
        tags=[d.key for d in the_plan.all],
        watermark=_watermark(events),
    )
    db_session.add(run)
    db_session.flush()
    return run


def execute_refresh(
    *,
    db_session: Session,
    events: EventStore,
    run_id: int,
    options: RefreshOptions,
    progress: Progress | None = None,
) -> TagRefreshRead:
    """Run a queued refresh. One at a time per process; a second gets a 409."""
    if not _REFRESHING.acquire(blocking=False):
        raise _running()
    try:
        run = db_session.get(TagRefresh, run_id)
        if run is None:
            raise NotFoundError(N_("No tag refresh {run_id}"), run_id=run_id)
        run.status = "running"
        db_session.flush()
        the_plan = plan(active_definitions(db_session), required=options.keys)
        clock = Clock(as_of=run.as_of, tz=options.tz)
        report = progress or (lambda step, done, total: None)
        try:
            people, changes, mode = _compute(
                db_session, events, the_plan, clock, options, run, report
            )
        except Exception:
            _drop_staging(events)
            raise
        run.mode, run.people, run.changes = mode, people, changes
        run.status, run.finished_at = "done", utcnow()
        for row in db_session.scalars(
            select(TagDefinitionRow).where(TagDefinitionRow.key.in_(run.tags))
        ):
            row.refreshed_at = clock.as_of
        db_session.flush()
        return TagRefreshRead.model_validate(run)
    finally:
        _REFRESHING.release()


def record_failure(db_session: Session, run_id: int, error: BaseException) -> None:
    """Mark a run failed (in a fresh unit of work: the failed one was rolled back)."""
    run = db_session.get(TagRefresh, run_id)
    if run is not None:
        run.status, run.error, run.finished_at = "failed", str(error)[:2000], utcnow()
        db_session.flush()


def get_refresh(db_session: Session, run_id: int) -> TagRefreshRead:
    run = db_session.get(TagRefresh, run_id)
    if run is None:
        raise NotFoundError(N_("No tag refresh {run_id}"), run_id=run_id)
    return TagRefreshRead.model_validate(run)


def list_refreshes(db_session: Session, *, limit: int = 20) -> list[TagRefreshRead]:
    rows = db_session.scalars(select(TagRefresh).order_by(TagRefresh.id.desc()).limit(limit))
    return [TagRefreshRead.model_validate(r) for r in rows]


def _compute(
    db_session: Session,
    events: EventStore,
    the_plan: Plan,
    clock: Clock,
    options: RefreshOptions,
    run: TagRefresh,
    report: Progress,
) -> tuple[int, int, str]:
    steps = 6
    universe = identity.people(events)
    all_events = identity.person_events(events)
    assigned = [d.key for d in the_plan.person if isinstance(d.compute, Assigned)]
    assignments = _assignments_table(db_session, assigned)
    old = events.table(VALUES_TABLE) if events.has_table(VALUES_TABLE) else None
    person_keys = [d.key for d in the_plan.person]
    mode = options.mode
    last = _last_done(db_session, run.id) if mode == "incremental" else None
    since = last.watermark if last is not None else None
    if mode == "incremental" and (
        old is None
        or last is None
        or since is None
        or not set(person_keys) <= set(old.columns)
        or last.as_of.astimezone(clock.tz).date() != clock.today
    ):
        # Nothing to build on, definitions changed, or a new local day began: windows moved
        # and days-since values grew for everybody, so only a full refresh is exact.
        mode = "full"
    report("events", 0, steps)
    if mode == "incremental" and old is not None and since is not None:
        affected = _affected(all_events, universe, old, since)
        all_events = all_events.semi_join(affected, "person_id")
    events.materialize(_STAGE_EVENTS, prepare_events(all_events, the_plan.person, clock))
    prepared = events.table(_STAGE_EVENTS)
    report("person", 1, steps)
    if mode == "incremental" and old is not None and since is not None:
        fresh = compile_person_stage(
            the_plan.person, Sources(affected, prepared, assignments), clock
        )
        kept = old.semi_join(universe, "person_id").anti_join(affected, "person_id")
        person_stage = kept.select("person_id", *person_keys).union(
            fresh.cast(kept.select("person_id", *person_keys).schema())
        )
    else:
        person_stage = compile_person_stage(
            the_plan.person, Sources(universe, prepared, assignments), clock
        )
    if mode == "incremental":
        # The fresh rows and the kept ones are ranked together, so stage them first.
        events.materialize(_STAGE_PERSON, person_stage)
        person_stage = events.table(_STAGE_PERSON)
    report("population", 2, steps)
    # In a full refresh the ranking reads the person stage within the same query: one
    # write of the wide table instead of two.
    complete = compile_population_stage(the_plan.population, person_stage, clock)
    computed = [d.key for d in the_plan.all]
    if old is not None and options.keys:
        carried = [c for c in old.columns if c != "person_id" and c not in computed]
        complete = complete.left_join(old.select("person_id", *carried), "person_id").drop(
            "person_id_right"
        )
    people = events.materialize(_STAGE_ALL, complete)
    report("history", 3, steps)
    new = events.table(_STAGE_ALL)
    definitions = {d.key: d for d in the_plan.all}
    changes_expr = _changes(old, new, definitions, clock.as_of, run.id)
    changes = 0
    append: dict[str, Any] = {}
    if changes_expr is not None:
        changes = events.materialize(_STAGE_CHANGES, changes_expr)
        append[HISTORY_TABLE] = events.table(_STAGE_CHANGES)
    report("publish", 4, steps)
    events.publish(
        append=append,
        replace={VALUES_TABLE: new},
        drop=_STAGING,
    )
    if changes:
        _emit_transitions(events, run.id, clock.as_of)
    report("stats", 5, steps)
    _publish_stats(events, active_definitions(db_session), clock.as_of, computed)
    report("done", steps, steps)
    return people, changes, mode


# Tags whose changes are also events journeys can trigger on (tag key → event name).
EMITTED_CHANGES = {"lifecycle_stage": "lifecycle_changed"}


def _emit_transitions(events: EventStore, refresh_id: int, at: datetime) -> None:
    history = events.table(HISTORY_TABLE)
    for key, name in EMITTED_CHANGES.items():
        rows = (
            history.filter(history.refresh_id == refresh_id, history.tag_key == key)
            .select("person_id", "old_value", "new_value")
            .to_pyarrow()
            .to_pylist()
        )
        system.record(
            events,
            name=name,
            source="siyu.tags",
            at=at,
            person_ids=[r["person_id"] for r in rows],
            properties=[{"tag": key, "from": r["old_value"], "to": r["new_value"]} for r in rows],
            id_parts=[f"{r['person_id']}:{refresh_id}" for r in rows],
        )


def _drop_staging(events: EventStore) -> None:
    events.publish(drop=_STAGING)


def _watermark(events: EventStore) -> datetime | None:
    value = events.table().received_at.max().to_pyarrow().as_py()
    return value if value is None else value.astimezone(UTC)


def _last_done(db_session: Session, current_run: int) -> TagRefresh | None:
    return db_session.scalars(
        select(TagRefresh)
        .where(TagRefresh.status == "done", TagRefresh.id != current_run)
        .order_by(TagRefresh.id.desc())
        .limit(1)
    ).first()


def _affected(all_events: ir.Table, universe: ir.Table, old: ir.Table, since: datetime) -> ir.Table:
    """People with events received since the last refresh, and people new to the pool."""
    touched = all_events.filter(all_events.received_at > since, all_events.person_id.notnull())
    newcomers = universe.anti_join(old, "person_id")
    return touched.select("person_id").union(newcomers.select("person_id")).distinct()


def _changes(
    old: ir.Table | None,
    new: ir.Table,
    definitions: dict[str, TagDefinition],
    as_of: datetime,
    refresh_id: int,
) -> ir.Table | None:
    """Rows (person, tag, old, new, when) for tracked tags whose value changed.

    The first refresh is the baseline and writes no history.
    """
    if old is None:
        return None
    tracked = [k for k, d in definitions.items() if d.tracks_history and k in old.columns]
    if not tracked:
        return None
    before = old.select("person_id", *[old[k].name(f"old__{k}") for k in tracked])
    joined = new.select("person_id", *tracked).left_join(before, "person_id")
    parts = []
    for key in tracked:
        old_text, new_text = _as_text(joined[f"old__{key}"]), _as_text(joined[key])
        changed = joined.filter(~old_text.identical_to(new_text))
        parts.append(
            changed.select(
                person_id=changed.person_id,
                tag_key=ibis.literal(key),
                old_value=_as_text(changed[f"old__{key}"]),
                new_value=_as_text(changed[key]),
                changed_at=ibis.literal(as_of, "timestamp('UTC')"),
                refresh_id=ibis.literal(refresh_id, "int64"),
            )
        )
    return ibis.union(*parts) if len(parts) > 1 else parts[0]


def _as_text(value: ir.Value) -> ir.StringValue:
    if value.type().is_array():
        return ibis.ifelse(value.isnull(), ibis.null(str), value.cast("json").cast("string"))
    return value.cast("string")


# -- stats --------------------------------------------------------------------------------------


def _publish_stats(
    events: EventStore,
    definitions: Sequence[TagDefinition],
    as_of: datetime,
    refreshed: Iterable[str],
) -> None:
    """Coverage and value distribution of the tags this run refreshed (one small table);
    the rows of the other tags still in ``tag_values`` are kept as they were.

    Three queries whatever the number of tags: one aggregate for coverage and the numeric
    and date summaries, one for the quartiles, one grouped count for the most frequent values.
    """
    values = events.table(VALUES_TABLE)
    wanted = set(refreshed)
    present = [d for d in definitions if d.key in values.columns]
    fresh = [d for d in present if d.key in wanted]
    summary = _summaries(values, fresh)
    total = int(summary.pop("__people", 0) or 0)
    tops = _top_values_of(values, fresh)
    rows = []
    for definition in fresh:
        count = int(summary.get(f"covered__{definition.key}") or 0)
        rows.append(
            {
                "tag_key": definition.key,
                "people": total,
                "covered": count,
                "coverage": round(count / total, 6) if total else 0.0,
                "distribution": json.dumps(
                    _distribution(definition, summary, tops.get(definition.key, [])),
                    ensure_ascii=False,
                    default=str,
                ),
                "computed_at": as_of,
            }
        )
    kept = {d.key for d in present} - wanted
    if kept and events.has_table(STATS_TABLE):
        old = events.table(STATS_TABLE)
        rows += old.filter(old.tag_key.isin(sorted(kept))).to_pyarrow().to_pylist()
    table = pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("tag_key", pa.string()),
                ("people", pa.int64()),
                ("covered", pa.int64()),
                ("coverage", pa.float64()),
                ("distribution", pa.string()),
                ("computed_at", pa.timestamp("us", tz="UTC")),
            ]
        ),
    )
    events.replace_table(STATS_TABLE, table)


_QUANTILES = {"p25": 0.25, "median": 0.5, "p75": 0.75}
# Quartiles are exact up to this many people, and beyond it read from a repeatable random
# sample of about this size (exact ones sort every number column: minutes at millions).
_QUANTILE_SAMPLE = 200_000


def _summaries(values: ir.Table, definitions: Sequence[TagDefinition]) -> dict[str, Any]:
    """People, coverage of every tag, and min/quartiles/max/mean of numbers and min/max of
    dates, in two aggregates; keys ``covered__KEY`` and ``STAT__KEY``."""
    numbers = [d.key for d in definitions if d.value_type is ValueType.NUMBER]
    summary = _aggregate(values, _plain_summaries(values, definitions))
    people = int(summary.get("__people") or 0)
    if numbers and people:
        sample = values
        if people > _QUANTILE_SAMPLE:
            sample = values.sample(_QUANTILE_SAMPLE / people, seed=20240)
        quartiles = list(_QUANTILES.values())
        summary |= _aggregate(
            sample, {f"quantiles__{k}": sample[k].quantile(quartiles) for k in numbers}
        )
    return summary


def _aggregate(table: ir.Table, metrics: dict[str, ir.Value]) -> dict[str, Any]:
    rows = table.aggregate(**metrics).to_pyarrow().to_pylist()
    return rows[0] if rows else {}


def _plain_summaries(values: ir.Table, definitions: Sequence[TagDefinition]) -> dict[str, ir.Value]:
    metrics: dict[str, ir.Value] = {"__people": values.count()}
    for definition in definitions:
        key, kind = definition.key, definition.value_type
        column = values[key]
        metrics[f"covered__{key}"] = _covered(column, kind)
        if kind in (ValueType.NUMBER, ValueType.DATE):
            metrics[f"min__{key}"] = column.min()
            metrics[f"max__{key}"] = column.max()
        if kind is ValueType.NUMBER:
            metrics[f"mean__{key}"] = column.mean()
    return metrics


_TOP = 20


def _top_values_of(
    values: ir.Table, definitions: Sequence[TagDefinition]
) -> dict[str, list[dict[str, Any]]]:
    """The 20 most frequent values (as text) of every categorical tag, in one query."""
    parts = []
    for definition in definitions:
        if definition.value_type in (ValueType.NUMBER, ValueType.DATE):
            continue
        column = values[definition.key]
        if definition.value_type is ValueType.LIST:
            listed = values.select(value=column.unnest())
            column = listed.value
        parts.append(
            column.cast("string")
            .name("value")
            .as_table()
            .filter(ibis._.value.notnull())
            .mutate(tag_key=ibis.literal(definition.key))
        )
    if not parts:
        return {}
    everything = ibis.union(*parts) if len(parts) > 1 else parts[0]
    counted = everything.group_by(["tag_key", "value"]).aggregate(people=ibis._.count())
    ranked = counted.mutate(
        rank=ibis.row_number().over(
            group_by="tag_key", order_by=[ibis.desc(counted.people), counted.value]
        )
    )
    rows = ranked.filter(ranked["rank"] < _TOP).order_by(["tag_key", "rank"]).to_pyarrow()
    tops: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows.to_pylist():
        tops[row["tag_key"]].append({"value": row["value"], "people": row["people"]})
    return tops


def _covered(column: ir.Value, value_type: ValueType) -> ir.Value:
    if value_type is ValueType.BOOL:
        return column.sum().cast("int64")
    if value_type is ValueType.LIST:
        return (column.length() > 0).sum().cast("int64")
    return column.count()


def _distribution(
    definition: TagDefinition, summary: Mapping[str, Any], top: list[dict[str, Any]]
) -> dict[str, Any]:
    key, kind = definition.key, definition.value_type
    if kind is ValueType.NUMBER:
        quantiles = summary.get(f"quantiles__{key}") or [None] * len(_QUANTILES)
        stats = {
            "min": summary.get(f"min__{key}"),
            **dict(zip(_QUANTILES, quantiles, strict=True)),
            "max": summary.get(f"max__{key}"),
            "mean": summary.get(f"mean__{key}"),
        }
        return {k: (None if v is None else round(float(v), 4)) for k, v in stats.items()}
    if kind is ValueType.DATE:
        stats = {s: summary.get(f"{s}__{key}") for s in ("min", "max")}
        return {k: None if v is None else str(v) for k, v in stats.items()}
    if kind is ValueType.BOOL:
        top = [{"value": r["value"] == "true", "people": r["people"]} for r in top]
    return {"top": top}


def stats(events: EventStore, key: str | None = None) -> list[dict[str, Any]]:
    if not events.has_table(STATS_TABLE):
        return []
    table = events.table(STATS_TABLE)
    if key:
        table = table.filter(table.tag_key == key)
    rows: list[dict[str, Any]] = table.order_by("tag_key").to_pyarrow().to_pylist()
    for row in rows:
        row["distribution"] = json.loads(row["distribution"])
    return rows


# -- reading values -----------------------------------------------------------------------------


def current_values(events: EventStore, keys: Sequence[str]) -> ir.Table | None:
    """``person_id`` and the current value of each refreshed tag in ``keys``; None when no
    refresh has stored any of them."""
    if not events.has_table(VALUES_TABLE):
        return None
    values = events.table(VALUES_TABLE)
    present = [key for key in keys if key in values.columns]
    if not present:
        return None
    return values.select("person_id", *present)


def person_tags(events: EventStore, person_id: str) -> dict[str, Any]:
    """The person's current tag values by key (nulls and false left out)."""
    if not events.has_table(VALUES_TABLE):
        return {}
    values = events.table(VALUES_TABLE)
    rows = values.filter(values.person_id == person_id).limit(1).to_pyarrow().to_pylist()
    if not rows:
        return {}
    return {
        k: _plain(v)
        for k, v in rows[0].items()
        if k != "person_id" and v is not None and v is not False and v != []
    }


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def history(
    events: EventStore,
    *,
    key: str,
    value: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Who changed ``key`` (to ``value``) between ``since`` and ``until``, newest first."""
    if not events.has_table(HISTORY_TABLE):
        return []
    table = events.table(HISTORY_TABLE)
    table = table.filter(table.tag_key == key)
    if value is not None:
        table = table.filter(table.new_value == value)
    if since is not None:
        table = table.filter(table.changed_at >= since)
    if until is not None:
        table = table.filter(table.changed_at < until)
    rows: list[dict[str, Any]] = (
        table.order_by([ibis.desc("changed_at"), "person_id"])
        .limit(limit, offset=offset)
        .to_pyarrow()
        .to_pylist()
    )
    return rows


def storage_type(definition: TagDefinition) -> str:
    return STORAGE_TYPES[definition.value_type]
