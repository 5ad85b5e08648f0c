"""Experiments: definitions (create, change while a draft, start, stop, delete), assignment
and exposure logging. The analysis is :mod:`siyu.analytics.experiments.analysis`.

The caller owns the transaction: these functions flush, the request or command commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.analytics.common import AnalysisError, known_event_names, resolved_events
from siyu.analytics.experiments.assignment import variant_expr, variant_of
from siyu.analytics.experiments.models import (
    Experiment,
    ExperimentCreate,
    ExperimentPage,
    ExperimentRead,
    ExperimentUpdate,
    ExposureItem,
    ExposureResult,
    Status,
)
from siyu.core.clock import utcnow
from siyu.core.errors import ConflictError, NotFoundError
from siyu.core.i18n import N_
from siyu.core.ids import new_token
from siyu.events import EventStore, system
from siyu.events.schema import CANONICAL_EVENTS
from siyu.identity import service as identity
from siyu.segments import service as segments
from siyu.segments.models import Segment

EXPOSURE_EVENT = "experiment_exposure"
SOURCE = "siyu.experiments"


# -- definitions ----------------------------------------------------------------------------------


def get(db_session: Session, key: str) -> ExperimentRead | None:
    row = db_session.get(Experiment, key)
    return None if row is None else ExperimentRead.model_validate(row)


def get_or_raise(db_session: Session, key: str) -> ExperimentRead:
    return ExperimentRead.model_validate(_row(db_session, key))


def _row(db_session: Session, key: str) -> Experiment:
    row = db_session.get(Experiment, key)
    if row is None:
        raise NotFoundError(N_("No experiment {key}"), key=key)
    return row


def list_experiments(
    db_session: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    target_segment: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> ExperimentPage:
    query = select(Experiment)
    if status:
        query = query.where(Experiment.status == status)
    if kind:
        query = query.where(Experiment.kind == kind)
    if target_segment:
        query = query.where(Experiment.target_segment == target_segment)
    total = db_session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db_session.scalars(query.order_by(Experiment.key).offset(offset).limit(limit))
    items = [ExperimentRead.model_validate(r) for r in rows]
    return ExperimentPage(items=items, total=total, offset=offset, limit=limit)


def create(
    db_session: Session, events: EventStore, experiment_in: ExperimentCreate
) -> ExperimentRead:
    """A new draft; its metrics' events and its target segment must exist."""
    if db_session.get(Experiment, experiment_in.key) is not None:
        raise ConflictError(N_("Experiment {key} already exists"), key=experiment_in.key)
    _check_references(db_session, events, experiment_in)
    row = Experiment(key=experiment_in.key, status=Status.draft.value)
    _apply(row, experiment_in)
    db_session.add(row)
    db_session.flush()
    return ExperimentRead.model_validate(row)


def update(
    db_session: Session, events: EventStore, key: str, experiment_in: ExperimentUpdate
) -> ExperimentRead:
    """Change a draft (its design is fixed once it runs: people are already assigned)."""
    row = _row(db_session, key)
    if row.status != Status.draft:
        raise ConflictError(
            N_("Experiment {key} is {status}: only a draft can be changed"),
            key=key,
            status=row.status,
        )
    current = ExperimentRead.model_validate(row).model_dump(
        exclude={"status", "created_at", "updated_at"}
    )
    try:
        merged = ExperimentCreate.model_validate(
            {**current, **experiment_in.model_dump(exclude_unset=True)}
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise AnalysisError(
            N_("The experiment would be invalid: {reason}"),
            field=".".join(str(p) for p in problem["loc"]) or "body",
            reason=problem["msg"],
        ) from None
    _check_references(db_session, events, merged)
    _apply(row, merged)
    row.updated_at = utcnow()
    db_session.flush()
    return ExperimentRead.model_validate(row)


def _apply(row: Experiment, spec: ExperimentCreate) -> None:
    row.name, row.hypothesis, row.kind = spec.name, spec.hypothesis, spec.kind.value
    row.variants = [v.model_dump(mode="json") for v in spec.variants]
    row.target_segment = spec.target_segment
    row.salt = spec.salt or row.salt or new_token(12)
    row.start_at, row.end_at = spec.start_at, spec.end_at
    row.primary_metric = spec.primary_metric.model_dump(mode="json")
    row.secondary_metrics = [m.model_dump(mode="json") for m in spec.secondary_metrics]


def _check_references(db_session: Session, events: EventStore, spec: ExperimentCreate) -> None:
    """Metric events must be stored or canonical (a typo would measure nothing); the target
    segment must be a saved, active segment."""
    known = known_event_names(events) | set(CANONICAL_EVENTS)
    for index, metric in enumerate([spec.primary_metric, *spec.secondary_metrics]):
        if metric.event_name not in known:
            raise AnalysisError(
                N_("Unknown event {names}; stored events are: {known}"),
                field="primary_metric.event" if index == 0 else f"secondary_metrics.{index - 1}",
                names=metric.event_name,
                known=", ".join(sorted(known_event_names(events))[:40]) or "-",
            )
    if spec.target_segment is not None:
        segment = db_session.get(Segment, spec.target_segment)
        if segment is None or segment.status != "active":
            raise AnalysisError(
                N_("No active segment {key} to target"),
                field="target_segment",
                key=spec.target_segment,
            )


def delete(db_session: Session, key: str) -> ExperimentRead:
    """Delete a draft; a started experiment is stopped instead (its exposures stay)."""
    row = _row(db_session, key)
    if row.status != Status.draft:
        raise ConflictError(
            N_("Experiment {key} is {status}: only a draft can be deleted; stop it instead"),
            key=key,
            status=row.status,
        )
    read = ExperimentRead.model_validate(row)
    db_session.delete(row)
    db_session.flush()
    return read


def start(db_session: Session, key: str, *, now: datetime | None = None) -> ExperimentRead:
    """Draft → running; the start is now unless one was planned earlier."""
    row = _row(db_session, key)
    now = now or utcnow()
    if row.status != Status.draft:
        raise ConflictError(
            N_("Experiment {key} is {status}: only a draft can be started"),
            key=key,
            status=row.status,
        )
    if row.end_at is not None and row.end_at <= now:
        raise ConflictError(N_("Experiment {key} was planned to end before now"), key=key)
    row.status = Status.running.value
    if row.start_at is None or row.start_at > now:
        row.start_at = now
    row.updated_at = now
    db_session.flush()
    return ExperimentRead.model_validate(row)


def stop(db_session: Session, key: str, *, now: datetime | None = None) -> ExperimentRead:
    """Running → stopped: no more exposures; exposed people are still measured."""
    row = _row(db_session, key)
    now = now or utcnow()
    if row.status != Status.running:
        raise ConflictError(
            N_("Experiment {key} is {status}: only a running one can be stopped"),
            key=key,
            status=row.status,
        )
    row.status = Status.stopped.value
    if row.end_at is None or row.end_at > now:
        row.end_at = now
    row.updated_at = now
    db_session.flush()
    return ExperimentRead.model_validate(row)


# -- assignment and exposures ---------------------------------------------------------------------


def assign(experiment: ExperimentRead, person_id: str) -> str:
    """The variant a person sees (one lookup, in Python; no store involved)."""
    return variant_of(experiment.salt, experiment.key, experiment.variants, person_id)


def assignments(people: ir.Table, experiment: ExperimentRead) -> ir.Table:
    """``people`` (a ``person_id`` column) with the ``variant`` each is assigned, in the engine."""
    return people.mutate(
        variant=variant_expr(people.person_id, experiment.salt, experiment.key, experiment.variants)
    )


def exposures(events: EventStore, key: str) -> ir.Table:
    """Each exposed person once: ``person_id``, ``variant``, ``exposed_at`` of the first
    exposure (merged identities: the earliest exposure of any of their ids)."""
    table = resolved_events(events, timedelta(0), names=[EXPOSURE_EVENT])
    props = table.properties.cast("json")
    table = table.mutate(
        experiment=props["experiment"].unwrap_as("string"),
        variant=props["variant"].unwrap_as("string"),
    ).filter(ibis._.experiment == key)
    return table.group_by("person_id").aggregate(
        variant=table.variant.argmin(table.ts), exposed_at=table.ts.min()
    )


def expose(
    db_session: Session,
    events: EventStore,
    key: str,
    people: Sequence[str],
    *,
    hash_key: bytes,
    tz: ZoneInfo,
    at: datetime | None = None,
) -> ExposureResult:
    """Log that these people saw the experiment (person ids or identifiers ``TYPE:VALUE``).

    Each item succeeds or fails alone: unknown people and people outside the target segment
    are reported and not assigned; someone already exposed keeps their first exposure."""
    experiment = get_or_raise(db_session, key)
    at = at or utcnow()
    if experiment.status != Status.running:
        raise ConflictError(
            N_("Experiment {key} is {status}: exposures are logged only while it runs"),
            key=key,
            status=experiment.status.value,
        )
    if (experiment.start_at and at < experiment.start_at) or (
        experiment.end_at and at >= experiment.end_at
    ):
        raise AnalysisError(
            N_("{at} is outside the experiment's run ({start} to {end})"),
            field="at",
            at=at.isoformat(),
            start=experiment.start_at.isoformat() if experiment.start_at else "-",
            end=experiment.end_at.isoformat() if experiment.end_at else "-",
        )
    person_ids = segments.people_from_lines(db_session, hash_key, list(people))
    found = _lookup(db_session, events, experiment, sorted(set(person_ids)), tz=tz)
    items: list[ExposureItem] = []
    new: dict[str, str] = {}
    for given, person_id in zip(people, person_ids, strict=True):
        row = found.get(person_id)
        if row is None or not row["known"]:
            items.append(
                ExposureItem(input=given, person_id=None, variant=None, status="unknown_person")
            )
        elif not row["member"]:
            items.append(
                ExposureItem(
                    input=given, person_id=person_id, variant=None, status="not_in_segment"
                )
            )
        elif row["first_variant"] is not None or person_id in new:
            variant = row["first_variant"] or new[person_id]
            items.append(
                ExposureItem(
                    input=given, person_id=person_id, variant=variant, status="already_exposed"
                )
            )
        else:
            new[person_id] = row["variant"]
            items.append(
                ExposureItem(
                    input=given, person_id=person_id, variant=row["variant"], status="exposed"
                )
            )
    system.record(
        events,
        name=EXPOSURE_EVENT,
        source=SOURCE,
        at=at,
        person_ids=list(new),
        properties=[{"experiment": key, "variant": v} for v in new.values()],
        id_parts=[f"{key}:{p}" for p in new],
    )
    counts = {s: sum(i.status == s for i in items) for s in ("exposed", "already_exposed")}
    return ExposureResult(
        received=len(items),
        exposed=counts["exposed"],
        already_exposed=counts["already_exposed"],
        errors=len(items) - counts["exposed"] - counts["already_exposed"],
        items=items,
    )


def _lookup(
    db_session: Session,
    events: EventStore,
    experiment: ExperimentRead,
    person_ids: list[str],
    *,
    tz: ZoneInfo,
) -> dict[str, dict[str, Any]]:
    """For each given id, in one engine query: is it a person, in the target segment, already
    exposed (to which variant), and which variant the hash assigns."""
    given = ibis.memtable(pa.table({"person_id": pa.array(person_ids, pa.string())}))
    known = identity.people(events).select(known_id="person_id")
    table = given.left_join(known, given.person_id == known.known_id)
    table = table.mutate(known=table.known_id.notnull()).drop("known_id")
    if experiment.target_segment is not None:
        world = segments.world(db_session, events, tz=tz)
        members = segments.members_of(world, experiment.target_segment)
        members = members.select(member_id="person_id").distinct()
        table = table.left_join(members, table.person_id == members.member_id)
        table = table.mutate(member=table.member_id.notnull()).drop("member_id")
    else:
        table = table.mutate(member=ibis.literal(True))
    first = exposures(events, experiment.key).select(
        exposed_id="person_id", first_variant="variant"
    )
    table = table.left_join(first, table.person_id == first.exposed_id).drop("exposed_id")
    table = assignments(table, experiment)
    rows = table.to_pyarrow().to_pylist()
    return {r["person_id"]: r for r in rows}
