"""Where new people come from: the source of each person's first event in a period."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel

from siyu.analytics.attribution import DIRECT, text_of, touch_key
from siyu.analytics.common import (
    Period,
    cached,
    done_by_people,
    resolve_period,
    resolved_events,
)
from siyu.events import EventStore


class SourcePerson(BaseModel):
    person_id: str
    first_seen: datetime
    event: str
    channel: str
    campaign: str | None = None


class SourceCount(BaseModel):
    channel: str
    campaign: str | None = None
    people: int


class SourcesResult(BaseModel):
    period: dict[str, str]
    people: int
    channels: list[SourceCount]
    campaigns: list[SourceCount]
    items: list[SourcePerson]
    total: int
    limit: int
    offset: int


def first_seen(events: EventStore, period: Period) -> ir.Table:
    """Each person whose first event (siyu's own events aside; ties by event id) falls in the
    period, with that event's source: its touchpoint key, else its ``source`` column, else
    its channel, else :data:`DIRECT`."""
    table = resolved_events(events, period.offset)
    table = table.filter(done_by_people(table))
    order = ibis.window(group_by=table.person_id, order_by=[table.ts, table.event_id])
    ranked = table.mutate(rank=ibis.row_number().over(order))
    first = ranked.filter(
        ranked.rank == 0, ranked.ts >= period.start_utc, ranked.ts < period.end_utc
    )
    source, campaign = touch_key(first)
    return first.select(
        person_id=first.person_id,
        first_seen=first.ts,
        event=first.name,
        channel=ibis.coalesce(
            source, text_of(first.source), text_of(first.channel), ibis.literal(DIRECT)
        ),
        campaign=campaign.coalesce(text_of(first.utm_campaign)),
    )


def sources(
    events: EventStore,
    *,
    tz: ZoneInfo,
    start: date | None = None,
    end: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> SourcesResult:
    """Counts of new people per source and a page of them (newest last)."""
    period = resolve_period(events, tz, start, end)
    definition = {"period": period.as_dict(), "limit": limit, "offset": offset}
    return cached(events, "sources", definition, lambda: _sources(events, period, limit, offset))


def _sources(events: EventStore, period: Period, limit: int, offset: int) -> SourcesResult:
    people = first_seen(events, period)
    by_key = (
        people.group_by("channel", "campaign")
        .aggregate(people=people.count())
        .to_pyarrow()
        .to_pylist()
    )
    page = (
        people.order_by(["first_seen", "person_id"])
        .limit(limit, offset=offset)
        .to_pyarrow()
        .to_pylist()
    )
    per_channel: dict[str, int] = {}
    for row in by_key:
        per_channel[row["channel"]] = per_channel.get(row["channel"], 0) + int(row["people"])
    total = sum(per_channel.values())
    return SourcesResult(
        period=period.as_dict(),
        people=total,
        channels=[
            SourceCount(channel=c, people=n)
            for c, n in sorted(per_channel.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        campaigns=[
            SourceCount(**row)
            for row in sorted(
                by_key, key=lambda r: (-r["people"], r["channel"], r["campaign"] or "")
            )
        ],
        items=[SourcePerson(**row) for row in page],
        total=total,
        limit=limit,
        offset=offset,
    )
