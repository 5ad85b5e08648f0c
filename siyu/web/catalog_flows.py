"""What the tag, segment and tier pages show, assembled from the services that own the data.

The console reaches the tags, segments and tiers only through here (and the tag refresh
through the same queue and runner as ``POST /v1/tags/refresh``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from siyu.analytics.common import known_event_names, last_event_date
from siyu.core.config import Settings
from siyu.core.errors import InvalidInputError, SiyuError
from siyu.core.i18n import N_, current_locale, gettext
from siyu.events import EventStore
from siyu.identity import service as identity
from siyu.segments import service as segments
from siyu.segments import tiers
from siyu.segments.models import EvaluationRead, SegmentCreate, SegmentRead
from siyu.segments.rules import to_json, to_text
from siyu.segments.rules.ast import EVENT_NUMBER_FIELDS
from siyu.store import Database
from siyu.tags import runner
from siyu.tags import service as tags
from siyu.tags.definitions import (
    Category,
    TagDefinition,
    Trait,
    ValueType,
    definitions_from_yaml,
)
from siyu.tags.explain import describe_computation
from siyu.tags.models import TagRefreshRead
from siyu.tags.service import RefreshOptions, TagRead
from siyu.web.deps import MANAGERS
from siyu.web.flows import CHANNELS, TAG_CATEGORIES, channel_label, mask_value, tier_names

TAG_PAGE = 25
SEGMENT_PAGE = 20
CHANGES_PAGE = 20
SAMPLE_SIZE = 10
TAG_SORTS = {
    "category": N_("Category"),
    "key": N_("Tag key"),
    "name": N_("Name"),
    "updated": N_("Last updated"),
}
SEGMENT_SORTS = {
    "key": N_("Segment key"),
    "name": N_("Name"),
    "members": N_("Members"),
    "updated": N_("Last updated"),
}
VALUE_TYPES = {
    "bool": N_("Yes/no"),
    "enum": N_("Choice"),
    "number": N_("Number"),
    "date": N_("Date"),
    "list": N_("List"),
    "string": N_("Text"),
}
# Who may start work that changes stored data (refresh tags, save or evaluate a segment).
NO_TIER = "none"


class NotAllowedError(SiyuError):
    """The signed-in user's role may look at this page but not do this."""

    code = "forbidden"
    status: ClassVar[int] = 403
    title = N_("Not allowed")


def ensure_manager(role: str) -> None:
    if role not in MANAGERS:
        raise NotAllowedError(
            N_("Your role may not change tags or segments"),
            hint=N_("Ask an administrator or an operator."),
        )


def pages(total: int, size: int) -> int:
    return max(math.ceil(total / size), 1)


def _name(definition: TagDefinition) -> str:
    return definition.name_en if current_locale() == "en" else definition.name_zh


def category_label(category: str) -> str:
    return gettext(TAG_CATEGORIES[category]) if category in TAG_CATEGORIES else category


# -- tag library ------------------------------------------------------------------------------


@dataclass
class TagLibrary:
    items: list[dict[str, Any]]
    total: int
    pages: int
    categories: list[dict[str, Any]]  # key, label, count
    stats_missing: bool


def tag_library(
    *, db_session: Session, events: EventStore, category: str, q: str, sort: str, page: int
) -> TagLibrary:
    """A page of active tags (filtered by category and text) with their coverage."""
    tags.ensure_builtin(db_session)
    chosen = category if category in TAG_CATEGORIES else None
    items, total = tags.list_tags(
        db_session,
        category=chosen,
        search=q or None,
        sort=sort if sort in TAG_SORTS else "category",
        offset=(page - 1) * TAG_PAGE,
        limit=TAG_PAGE,
    )
    stats = {row["tag_key"]: row for row in tags.stats(events)}
    counts = []
    for key in Category:
        _, count = tags.list_tags(db_session, category=key.value, search=q or None, limit=1)
        counts.append({"key": key.value, "label": category_label(key.value), "count": count})
    return TagLibrary(
        items=[_tag_row(item, stats.get(item.key)) for item in items],
        total=total,
        pages=pages(total, TAG_PAGE),
        categories=counts,
        stats_missing=not stats,
    )


def _tag_row(item: TagRead, stats: dict[str, Any] | None) -> dict[str, Any]:
    definition = item.definition
    return {
        "key": item.key,
        "name": _name(definition),
        "category": category_label(definition.category.value),
        "value_type": gettext(VALUE_TYPES[definition.value_type.value]),
        "coverage": stats["coverage"] if stats else None,
        "covered": stats["covered"] if stats else None,
        "refreshed_at": item.refreshed_at,
        "builtin": item.builtin,
    }


# -- one tag ----------------------------------------------------------------------------------


@dataclass
class TagPage:
    tag: TagRead
    name: str
    facts: list[tuple[str, str]]
    computation: list[str]
    yaml: str
    stats: dict[str, Any] | None
    chart: list[dict[str, Any]] = field(default_factory=list)
    chart_kind: str = "bar"
    summary: list[tuple[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    refreshes: list[TagRefreshRead] = field(default_factory=list)


def tag_page(*, db_session: Session, events: EventStore, key: str) -> TagPage:
    tags.ensure_builtin(db_session)
    item = tags.get_tag(db_session, key)
    definition = item.definition
    found = tags.stats(events, key)
    stats = found[0] if found else None
    result = TagPage(
        tag=item,
        name=_name(definition),
        facts=_facts(item),
        computation=describe_computation(definition),
        yaml=tags.export_yaml(db_session, [key]) if item.status == "active" else "",
        stats=stats,
        versions=_versions(tags.versions(db_session, key)),
        refreshes=[r for r in tags.list_refreshes(db_session, limit=50) if key in r.tags][:5],
    )
    if stats is not None:
        distribution = stats["distribution"]
        if "top" in distribution:
            result.chart = [
                {"name": _value_label(definition, row["value"]), "value": row["people"]}
                for row in distribution["top"]
            ]
            result.chart_kind = "pie" if 0 < len(result.chart) <= 6 else "bar"
        else:
            labels = {
                "min": N_("Minimum"),
                "p25": N_("25th percentile"),
                "median": N_("Median"),
                "p75": N_("75th percentile"),
                "max": N_("Maximum"),
                "mean": N_("Mean"),
            }
            result.summary = [
                (gettext(labels[k]), v) for k, v in distribution.items() if k in labels
            ]
            if definition.value_type is ValueType.NUMBER:
                result.chart = [
                    {"name": gettext(labels[k]), "value": distribution.get(k)}
                    for k in ("min", "p25", "median", "p75", "max")
                    if distribution.get(k) is not None
                ]
    return result


def _value_label(definition: TagDefinition, value: Any) -> str:
    if definition.value_type is ValueType.BOOL:
        return gettext("Yes") if value else gettext("No")
    return str(value)


def _facts(item: TagRead) -> list[tuple[str, str]]:
    d = item.definition
    facts = [
        (gettext("Tag key"), d.key),
        (gettext("Chinese name"), d.name_zh),
        (gettext("English name"), d.name_en),
        (gettext("Category"), category_label(d.category.value)),
        (gettext("Value type"), gettext(VALUE_TYPES[d.value_type.value])),
        (gettext("Refresh cadence"), d.cadence.value),
        (gettext("Owner"), d.owner),
        (gettext("Version"), str(item.version)),
        (gettext("Status"), item.status),
    ]
    if d.unit:
        facts.append((gettext("Unit"), d.unit))
    if d.values:
        facts.append((gettext("Allowed values"), "、".join(d.values)))
    return facts


def edit_tag(*, db_session: Session, key: str, text: str, by: str) -> None:
    """Save one tag's edited YAML as its next version (the same checks as the API's)."""
    found = definitions_from_yaml(text)
    if len(found) != 1:
        raise InvalidInputError(
            N_("Edit one tag at a time: the YAML holds {count}"), count=len(found)
        )
    tags.update_tag(db_session, key, found[0], by=by)


def _versions(rows: list[Any]) -> list[dict[str, Any]]:
    """Versions newest first, each with the fields that changed since the one before."""
    result = []
    for index, row in enumerate(rows):
        older = rows[index + 1].definition if index + 1 < len(rows) else None
        changed = (
            sorted(k for k in {*row.definition, *older} if row.definition.get(k) != older.get(k))
            if older is not None
            else []
        )
        result.append(
            {
                "version": row.version,
                "change": row.change,
                "changed_by": row.changed_by,
                "changed_at": row.changed_at,
                "fields": changed,
            }
        )
    return result


# -- refresh ----------------------------------------------------------------------------------


def start_refresh(
    *,
    db_session: Session,
    database: Database,
    events: EventStore,
    settings: Settings,
    keys: list[str] | None,
) -> TagRefreshRead:
    """Queue a refresh and start it in the background, exactly as ``POST /v1/tags/refresh``."""
    options = RefreshOptions(tz=settings.tz, mode="full", keys=keys or None)
    tags.ensure_idle()
    run = tags.queue_refresh(db_session, events, options)
    db_session.commit()  # the worker thread reads the queued run from its own session
    started = TagRefreshRead.model_validate(run)
    runner.start(database, events, run.id, options)
    return started


# -- segments ---------------------------------------------------------------------------------


@dataclass
class SegmentList:
    items: list[SegmentRead]
    total: int
    pages: int


def segment_list(*, db_session: Session, status: str, q: str, sort: str, page: int) -> SegmentList:
    items, total = segments.list_segments(
        db_session,
        status=status if status in ("active", "archived") else "active",
        search=q or None,
        sort=sort if sort in SEGMENT_SORTS else "key",
        offset=(page - 1) * SEGMENT_PAGE,
        limit=SEGMENT_PAGE,
    )
    return SegmentList(items=items, total=total, pages=pages(total, SEGMENT_PAGE))


def builder_catalog(*, db_session: Session, events: EventStore) -> dict[str, Any]:
    """What the rule builder offers: tags, traits, event names, channels, number fields."""
    tags.ensure_builtin(db_session)
    definitions = tags.active_definitions(db_session)
    return {
        "tags": [
            {
                "key": d.key,
                "name": f"{_name(d)} ({d.key})",
                "group": category_label(d.category.value),
                "type": d.value_type.value,
                "values": list(d.values or ()),
            }
            for d in sorted(
                definitions,
                key=lambda d: (list(TAG_CATEGORIES).index(d.category.value), d.key),
            )
        ],
        "traits": [
            {
                "key": d.compute.trait,
                "name": f"{_name(d)} ({d.compute.trait})",
                "type": d.value_type.value,
                "values": [],
            }
            for d in definitions
            if isinstance(d.compute, Trait)
        ],
        "events": sorted(name for name in known_event_names(events) if not name.startswith("$")),
        "channels": [{"key": k, "name": channel_label(k)} for k in CHANNELS],
        "number_fields": list(EVENT_NUMBER_FIELDS),
    }


def parse_rule_form(text: str) -> dict[str, Any]:
    """The builder's JSON form, decoded; an empty builder is an error that says what to do."""
    if not text.strip():
        raise InvalidInputError(N_("The rule is empty"), hint=N_("Add at least one condition."))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            N_("The rule could not be read: {reason}"), reason=exc.msg
        ) from None
    if not isinstance(value, dict):
        raise InvalidInputError(N_("The rule could not be read: {reason}"), reason="not an object")
    return value


@dataclass
class Preview:
    count: int
    rule_text: str
    rule: dict[str, Any]
    columns: list[str]
    rows: list[dict[str, Any]]


def preview(
    *, db_session: Session, events: EventStore, settings: Settings, rule_json: str, reveal: bool
) -> Preview:
    """The live count of an unsaved rule and a few members, contact values masked unless
    ``reveal`` (identifiers are stored masked: they are masked for every role)."""
    rule = segments.read_rule(json_form=parse_rule_form(rule_json))
    world = segments.world(db_session, events, tz=settings.tz)
    form: dict[str, Any] = to_json(rule)
    columns = _tag_keys(form)[:4]
    rows = segments.sample(world, rule, size=SAMPLE_SIZE, columns=columns)
    masked = identity.masked_identifiers(
        db_session=db_session, person_ids=[str(r["person_id"]) for r in rows]
    )
    shown = []
    for row in rows:
        values = {k: v for k, v in row.items() if k != "person_id"}
        if not reveal:
            values = {k: mask_value(k, v) for k, v in values.items()}
        shown.append(
            {
                "person_id": row["person_id"],
                "identifiers": masked.get(str(row["person_id"]), [])[:3],
                "values": values,
            }
        )
    return Preview(
        count=segments.count(world, rule),
        rule_text=to_text(rule),
        rule=form,
        columns=[c for c in columns if rows and c in rows[0]],
        rows=shown,
    )


def _tag_keys(node: Any) -> list[str]:
    """Tag keys a rule's JSON form names, in order, once each."""
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("tag"), str):
            found.append(node["tag"])
        for value in node.values():
            found += _tag_keys(value)
    elif isinstance(node, list):
        for item in node:
            found += _tag_keys(item)
    return list(dict.fromkeys(found))


def create_segment(
    *,
    db_session: Session,
    events: EventStore,
    settings: Settings,
    key: str,
    name: str,
    description: str,
    rule_json: str,
) -> SegmentRead:
    try:
        spec = SegmentCreate(
            key=key.strip(),
            name=name.strip(),
            description=description.strip(),
            rule=parse_rule_form(rule_json),
        )
    except ValueError as exc:
        raise InvalidInputError(
            N_("The segment could not be saved: {reason}"), reason=_first_error(exc)
        ) from None
    world = segments.world(db_session, events, tz=settings.tz)
    return segments.create_segment(db_session, world, spec)


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg', '')}" if where else str(first.get("msg", ""))
    return str(exc)


@dataclass
class SegmentPage:
    segment: SegmentRead
    live_count: int
    evaluations: list[EvaluationRead]
    changes: list[dict[str, Any]]
    change: str
    page: int
    has_more: bool


def segment_page(
    *,
    db_session: Session,
    events: EventStore,
    settings: Settings,
    key: str,
    change: str,
    page: int,
) -> SegmentPage:
    segment = segments.get_segment(db_session, key)
    world = segments.world(db_session, events, tz=settings.tz)
    live = int(segments.members_of(world, key).count().to_pyarrow().as_py())
    chosen = change if change in ("entered", "exited") else ""
    rows = segments.changes(
        events,
        key,
        change=chosen or None,
        offset=(page - 1) * CHANGES_PAGE,
        limit=CHANGES_PAGE + 1,
    )
    return SegmentPage(
        segment=segment,
        live_count=live,
        evaluations=segments.evaluations(db_session, key, limit=10),
        changes=rows[:CHANGES_PAGE],
        change=chosen,
        page=page,
        has_more=len(rows) > CHANGES_PAGE,
    )


def evaluate_segment(
    *, db_session: Session, events: EventStore, settings: Settings, key: str
) -> EvaluationRead:
    world = segments.world(db_session, events, tz=settings.tz)
    return segments.evaluate(world, key)


def set_archived(*, db_session: Session, key: str, archived: bool) -> SegmentRead:
    """Archive a segment (no longer evaluated; its members stay readable) or restore it."""
    if archived:
        return segments.archive_segment(db_session, key)
    return segments.restore_segment(db_session, key)


# -- tiers ------------------------------------------------------------------------------------


@dataclass
class TierPage:
    scheme: tiers.TierScheme
    rows: list[dict[str, Any]]  # key, name, value, share, rule
    start: date
    end: date
    matrix: list[dict[str, Any]] | None  # rows: name, cells [{value, alpha}], total
    columns: list[str]
    matrix_error: str | None = None
    matrix_hint: str | None = None


def parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def tier_page(*, events: EventStore, settings: Settings, start: str, end: str) -> TierPage:
    """Counts per tier now, the scheme's rules, and who moved between the ends of two days."""
    scheme = tiers.load_scheme(settings.home_dir)
    names = tier_names(settings)
    counts = tiers.distribution(events, scheme.key)
    total = sum(counts.values())
    rows = [
        {
            "key": level.key,
            "name": names.get(level.key, level.key),
            "value": counts.get(level.key, 0),
            "share": counts.get(level.key, 0) / total if total else None,
            "rule": level.rule,
        }
        for level in scheme.levels
    ]
    last = parse_day(end) or last_event_date(events, settings.tz) or datetime.now(UTC).date()
    first = parse_day(start) or last - timedelta(days=30)
    if first > last:
        first, last = last, first
    result = TierPage(scheme, rows, first, last, None, [])
    order = [level.key for level in scheme.levels]
    try:
        found = tiers.movement_matrix(
            events, scheme, _end_of(first, settings), _end_of(last, settings)
        )
    except SiyuError as exc:
        result.matrix_error, result.matrix_hint = exc.render(), exc.render_hint()
        return result
    if not found:
        return result
    peak = max((n for row in found.values() for n in row.values()), default=1) or 1
    result.columns = [names.get(k, k) for k in order]
    result.matrix = [
        {
            "name": gettext("Not yet tiered") if source == NO_TIER else names.get(source, source),
            "cells": [
                {
                    "value": found.get(source, {}).get(target, 0),
                    "alpha": round(found.get(source, {}).get(target, 0) / peak, 3),
                    "same": source == target,
                }
                for target in order
            ],
            "total": sum(found.get(source, {}).values()),
        }
        for source in [NO_TIER, *order]
        if source in found
    ]
    return result


def _end_of(day: date, settings: Settings) -> datetime:
    """The instant a local day ends (the start of the next one)."""
    return datetime.combine(day + timedelta(days=1), time(0), settings.tz)
