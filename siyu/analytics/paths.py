"""Paths: what people do after (or before) an event, as top paths and Sankey data.

Counting (``docs/analytics-funnels.md`` states it for operators):

* Only events inside the period count, siyu's own ``system`` events and the names in
  ``exclude`` left out. A person's events are ordered by (time, event name, event id).
* With ``collapse``, a run of the same event name in a row counts as one step.
* Each person is anchored at their first ``start`` event in the period; the path is that event
  and the next ``steps - 1`` events (or, with ``before``, the ``steps - 1`` events before it
  and the anchor). A person with fewer events has a shorter path.
* Steps are numbered 1..steps in time order: after an event the anchor is step 1; before it,
  the anchor is the last step ``steps``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field

from siyu.analytics.common import (
    cached,
    check_event_names,
    done_by_people,
    resolve_period,
    resolved_events,
)
from siyu.analytics.funnels import EVENT_NAME
from siyu.events import EventStore

SEPARATOR = "\x1f"
OTHER = "$other"


class PathQuery(BaseModel):
    """The anchor event, the path length, the direction and the period."""

    model_config = ConfigDict(extra="forbid")

    start_event: str = Field(pattern=EVENT_NAME, examples=["page_view"])
    steps: int = Field(default=4, ge=2, le=10, description="Path length, the anchor included")
    before: bool = Field(default=False, description="Paths leading to the event instead")
    collapse: bool = Field(default=True, description="A run of one event name is one step")
    exclude: list[str] = Field(default_factory=list, max_length=50)
    top: int = Field(default=20, ge=1, le=200, description="How many top paths")
    nodes_per_step: int = Field(
        default=8, ge=1, le=50, description="Sankey: events kept per step, the rest as $other"
    )
    start: date | None = None
    end: date | None = None


class PathRow(BaseModel):
    events: list[str]
    count: int
    share: float | None


class SankeyNode(BaseModel):
    id: str = Field(description="step:event, e.g. 2:add_to_cart")
    step: int
    event: str
    count: int


class SankeyLink(BaseModel):
    source: str
    target: str
    value: int


class PathResult(BaseModel):
    period: dict[str, str]
    start_event: str
    before: bool
    steps: int
    people: int = Field(description="People anchored (with the event in the period)")
    paths: list[PathRow]
    nodes: list[SankeyNode]
    links: list[SankeyLink]


def path_steps(events: EventStore, query: PathQuery, *, tz: Any) -> ir.Table:
    """One row per anchored person and path step: ``person_id``, ``step`` (1..steps),
    ``event``."""
    period = resolve_period(events, tz, query.start, query.end)
    rows = resolved_events(events, period.offset, start=period.start_utc, end=period.end_utc)
    keep = done_by_people(rows)
    if query.exclude:
        keep &= rows.name.notin(query.exclude)
    rows = rows.filter(keep).select("person_id", "event_id", "ts", "name")
    ordered = ibis.window(group_by=rows.person_id, order_by=[rows.ts, rows.name, rows.event_id])
    if query.collapse:
        previous = rows.name.lag().over(ordered)
        rows = rows.mutate(previous=previous)
        rows = rows.filter(rows.previous.isnull() | (rows.previous != rows.name))
        ordered = ibis.window(group_by=rows.person_id, order_by=[rows.ts, rows.name, rows.event_id])
    rows = rows.mutate(pos=ibis.row_number().over(ordered))
    person = ibis.window(group_by=rows.person_id)
    anchor = ibis.ifelse(rows.name == query.start_event, rows.pos, ibis.null("int64"))
    rows = rows.mutate(anchor=anchor.min().over(person)).filter(lambda t: t.anchor.notnull())
    if query.before:
        rows = rows.filter((rows.pos <= rows.anchor) & (rows.pos > rows.anchor - query.steps))
        step = rows.pos - rows.anchor + query.steps
    else:
        rows = rows.filter((rows.pos >= rows.anchor) & (rows.pos < rows.anchor + query.steps))
        step = rows.pos - rows.anchor + 1
    return rows.select("person_id", step=step.cast("int32"), event=rows.name)


def compute(events: EventStore, query: PathQuery, *, tz: Any) -> PathResult:
    """Top paths and Sankey data (cached by query and data version)."""
    check_event_names(events, [query.start_event], field="start_event")
    period = resolve_period(events, tz, query.start, query.end)
    key = query.model_dump(mode="json") | {"period": period.as_dict()}
    return cached(events, "paths", key, lambda: _compute(events, query, tz=tz))


def _compute(events: EventStore, query: PathQuery, *, tz: Any) -> PathResult:
    period = resolve_period(events, tz, query.start, query.end)
    rows = path_steps(events, query, tz=tz)
    joined = rows.group_by("person_id").aggregate(
        path=rows.event.collect(order_by=rows.step).join(SEPARATOR)
    )
    counted = joined.group_by("path").aggregate(count=joined.count())
    people = int(joined.count().to_pyarrow().as_py())
    top = counted.order_by([counted["count"].desc(), counted.path]).limit(query.top)
    paths = [
        PathRow(
            events=r["path"].split(SEPARATOR), count=r["count"], share=_share(r["count"], people)
        )
        for r in top.to_pyarrow().to_pylist()
    ]
    ordered = ibis.window(group_by=rows.person_id, order_by=rows.step)
    links = rows.mutate(target=rows.event.lead().over(ordered))
    triples = links.group_by("step", "event", "target").aggregate(value=links.count())
    nodes, edges = _sankey(triples.to_pyarrow().to_pylist(), query.nodes_per_step)
    return PathResult(
        period=period.as_dict(),
        start_event=query.start_event,
        before=query.before,
        steps=query.steps,
        people=people,
        paths=paths,
        nodes=nodes,
        links=edges,
    )


def _share(count: int, people: int) -> float | None:
    return count / people if people else None


def _sankey(
    triples: list[dict[str, Any]], per_step: int
) -> tuple[list[SankeyNode], list[SankeyLink]]:
    """Nodes ``step:event`` with the events beyond the top ``per_step`` of a step merged into
    ``step:$other``, and links between consecutive steps (aggregated counts only)."""
    at_step: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in triples:
        at_step[row["step"]][row["event"]] += row["value"]
    kept: dict[int, set[str]] = {}
    nodes: list[SankeyNode] = []
    for step in sorted(at_step):
        ranked = sorted(at_step[step].items(), key=lambda item: (-item[1], item[0]))
        kept[step] = {event for event, _count in ranked[:per_step]}
        rest = sum(count for _event, count in ranked[per_step:])
        for event, count in ranked[:per_step]:
            nodes.append(SankeyNode(id=f"{step}:{event}", step=step, event=event, count=count))
        if rest:
            nodes.append(SankeyNode(id=f"{step}:{OTHER}", step=step, event=OTHER, count=rest))

    def node(step: int, event: str) -> str:
        return f"{step}:{event if event in kept.get(step, set()) else OTHER}"

    values: dict[tuple[str, str], int] = defaultdict(int)
    for row in triples:
        if row["target"] is not None:
            step = row["step"]
            values[(node(step, row["event"]), node(step + 1, row["target"]))] += row["value"]
    links = [
        SankeyLink(source=source, target=target, value=value)
        for (source, target), value in sorted(values.items(), key=lambda item: (-item[1], item[0]))
    ]
    return nodes, links
