"""Assemble a person's profile from the identity tables and the event store."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy.orm import Session

from siyu.core.errors import InvalidInputError, NotFoundError
from siyu.core.i18n import N_
from siyu.events import EventStore
from siyu.identity import service as identity
from siyu.identity.models import IdentifierRead
from siyu.identity.rules import is_valid_type
from siyu.profiles.traits import Rule, survive
from siyu.tags import service as tags

LATEST_EVENTS = 20


class EventRead(BaseModel):
    event_id: str
    name: str
    ts: datetime
    channel: str | None
    order_id: str | None = None
    amount: str | None = None
    properties: dict[str, Any] | None = None


class ProfileRead(BaseModel):
    person_id: str
    created_at: datetime
    identifiers: list[IdentifierRead]
    traits: dict[str, Any]
    tags: dict[str, Any] = {}
    latest_events: list[EventRead]


def parse_identifier(text: str) -> tuple[str, str]:
    """``TYPE:VALUE`` → (type, value), or a clear error."""
    kind, sep, value = text.partition(":")
    if kind == "custom":
        custom_name, sep2, value = value.partition(":")
        kind, sep = f"custom:{custom_name}", sep2
    if not sep or not value or not is_valid_type(kind):
        raise InvalidInputError(
            N_("Identifier {text!r} is not TYPE:VALUE with a known type"),
            hint=N_(
                "Types: member_no, unionid, openid, wecom_external_userid, phone, email, "
                "device_id, anonymous_id, custom:NAME."
            ),
            text=text,
        )
    return kind, value


def find_person_id(*, db_session: Session, hash_key: bytes, identifier: str) -> str:
    kind, value = parse_identifier(identifier)
    person = identity.find_by_identifier(
        db_session=db_session, hash_key=hash_key, kind=kind, value=value
    )
    if person is None:
        raise NotFoundError(N_("Nobody has the identifier {identifier}"), identifier=identifier)
    return person.id


def profile(
    *,
    db_session: Session,
    events: EventStore,
    person_id: str,
    rules: Mapping[str, Rule] | None = None,
) -> ProfileRead:
    """The person's profile; traits survive by ``rules`` (see :mod:`.traits`)."""
    person = identity.get_person_or_raise(db_session=db_session, person_id=person_id)
    identifiers = identity.identifiers_of(db_session=db_session, person_id=person.id)
    mine = identity.events_of(events, person.id)
    identify = mine.filter(mine.name == "identify").order_by("ts")
    identify_rows = identify.select("properties", "channel").to_pyarrow().to_pylist()
    latest = mine.order_by([mine.ts.desc(), mine.event_id]).limit(LATEST_EVENTS)
    latest_rows = (
        latest.select("event_id", "name", "ts", "channel", "order_id", "amount", "properties")
        .to_pyarrow()
        .to_pylist()
    )
    return ProfileRead(
        person_id=person.id,
        created_at=person.created_at,
        identifiers=[IdentifierRead.model_validate(i) for i in identifiers],
        traits=survive(identify_rows, rules),
        tags=tags.person_tags(events, person.id),
        latest_events=[
            EventRead(
                **{
                    **row,
                    "amount": None if row["amount"] is None else str(row["amount"]),
                    "properties": json.loads(row["properties"]) if row["properties"] else None,
                }
            )
            for row in latest_rows
        ],
    )


# -- finding people -------------------------------------------------------------------------

PHONE_LIKE = re.compile(r"^\+?\d{7,15}$")
CONSENT_EVENTS = ("consent_granted", "consent_revoked", "unsubscribe")
ORDER_EVENTS = ("order_paid", "refund")
MESSAGE_EVENTS = ("message_sent", "message_delivered", "message_opened", "message_clicked")


class PersonSummary(BaseModel):
    person_id: str
    name: str | None = None
    identifiers: list[str] = []
    lifecycle_stage: str | None = None


class PeoplePage(BaseModel):
    """A page of people found by ``query``; ``matched_by`` says how the query was read."""

    items: list[PersonSummary]
    total: int
    offset: int
    limit: int
    matched_by: Literal["all", "person_id", "identifier", "name"]


def search(
    *,
    db_session: Session,
    events: EventStore,
    hash_key: bytes,
    query: str = "",
    offset: int = 0,
    limit: int = 20,
) -> PeoplePage:
    """People by person id, ``TYPE:VALUE`` identifier, phone number, email or part of a name;
    everybody (by person id) when ``query`` is empty. Identifiers come back masked."""
    text = query.strip()
    matched_by: Literal["all", "person_id", "identifier", "name"]
    if not text:
        everybody = identity.people(events)
        total = int(everybody.count().to_pyarrow().as_py())
        page = everybody.order_by("person_id").limit(limit, offset=offset)
        ids = [str(pid) for pid in page.person_id.to_pyarrow().to_pylist()]
        matched_by = "all"
    elif (person := identity.get_person(db_session=db_session, person_id=text)) is not None:
        ids, total, matched_by = [person.id], 1, "person_id"
    elif ":" in text or "@" in text or PHONE_LIKE.match(text):
        identifier = text if ":" in text else (f"email:{text}" if "@" in text else f"phone:{text}")
        kind, value = parse_identifier(identifier)
        found = identity.find_by_identifier(
            db_session=db_session, hash_key=hash_key, kind=kind, value=value
        )
        ids = [found.id] if found is not None else []
        total, matched_by = len(ids), "identifier"
    else:
        ids, total = _people_named(events, text, offset, limit)
        matched_by = "name"
    if matched_by in ("person_id", "identifier"):
        ids = ids[offset : offset + limit]
    return PeoplePage(
        items=_summaries(db_session, events, ids),
        total=total,
        offset=offset,
        limit=limit,
        matched_by=matched_by,
    )


def _names(events: EventStore) -> Any:
    """``person_id`` and each name given in an identify call (Ibis)."""
    table = identity.person_events(events)
    identify = table.filter(table.name == "identify", table.person_id.notnull())
    name = identify.properties.cast("json")["name"].str
    return identify.select("person_id", "ts", person_name=name).filter(
        lambda t: t.person_name.notnull()
    )


def _people_named(events: EventStore, text: str, offset: int, limit: int) -> tuple[list[str], int]:
    names = _names(events)
    found = names.filter(names.person_name.contains(text)).select("person_id").distinct()
    total = int(found.count().to_pyarrow().as_py())
    page = found.order_by("person_id").limit(limit, offset=offset)
    return [str(pid) for pid in page.person_id.to_pyarrow().to_pylist()], total


def _summaries(db_session: Session, events: EventStore, ids: list[str]) -> list[PersonSummary]:
    if not ids:
        return []
    masked = identity.masked_identifiers(db_session=db_session, person_ids=ids)
    names = _names(events)
    mine = names.filter(names.person_id.isin(ids))
    latest = mine.group_by("person_id").aggregate(person_name=mine.person_name.argmax(mine.ts))
    name_of = {r["person_id"]: r["person_name"] for r in latest.to_pyarrow().to_pylist()}
    values = tags.current_values(events, ["lifecycle_stage"])
    stage_of: dict[str, Any] = {}
    if values is not None and "lifecycle_stage" in values.columns:
        rows = _filter_people(values, ids).to_pyarrow().to_pylist()
        stage_of = {r["person_id"]: r["lifecycle_stage"] for r in rows}
    return [
        PersonSummary(
            person_id=pid,
            name=name_of.get(pid),
            identifiers=masked.get(pid, []),
            lifecycle_stage=stage_of.get(pid),
        )
        for pid in ids
    ]


def _filter_people(table: Any, ids: list[str]) -> Any:
    return table.filter(table.person_id.isin(ids))


# -- a person's history ---------------------------------------------------------------------


class EventPage(BaseModel):
    items: list[EventRead]
    total: int
    offset: int
    limit: int
    names: list[str]  # every event name the person has, for filters
    channels: list[str]


def timeline(
    events: EventStore,
    person_id: str,
    *,
    names: list[str] | None = None,
    channel: str | None = None,
    offset: int = 0,
    limit: int = 50,
    facets: bool = True,
) -> EventPage:
    """The person's events, newest first, optionally only ``names`` and ``channel``; without
    ``facets`` the filter choices (names and channels seen) are left empty (one query less)."""
    mine = identity.events_of(events, person_id)
    found = mine.select("name", "channel").distinct().to_pyarrow().to_pylist() if facets else []
    chosen = mine
    if names:
        chosen = chosen.filter(chosen.name.isin(names))
    if channel:
        chosen = chosen.filter(chosen.channel == channel)
    total = int(chosen.count().to_pyarrow().as_py())
    rows = (
        chosen.order_by([chosen.ts.desc(), chosen.event_id])
        .limit(limit, offset=offset)
        .select("event_id", "name", "ts", "channel", "order_id", "amount", "properties")
        .to_pyarrow()
        .to_pylist()
    )
    return EventPage(
        items=[_event(row) for row in rows],
        total=total,
        offset=offset,
        limit=limit,
        names=sorted({str(f["name"]) for f in found if f["name"]}),
        channels=sorted({str(f["channel"]) for f in found if f["channel"]}),
    )


def orders(events: EventStore, person_id: str, limit: int = 100) -> list[EventRead]:
    """The person's paid orders and refunds, newest first."""
    return timeline(events, person_id, names=list(ORDER_EVENTS), limit=limit, facets=False).items


def messages(events: EventStore, person_id: str, limit: int = 30) -> list[EventRead]:
    """The messages the brand sent the person and what they did with them, newest first."""
    return timeline(events, person_id, names=list(MESSAGE_EVENTS), limit=limit, facets=False).items


class ConsentState(BaseModel):
    channel: str
    granted: bool
    event: str
    ts: datetime


def consent_state(events: EventStore, person_id: str) -> list[ConsentState]:
    """The latest consent event per channel: granted unless revoked or unsubscribed."""
    mine = identity.events_of(events, person_id)
    chosen = mine.filter(mine.name.isin(CONSENT_EVENTS))
    latest = chosen.group_by("channel").aggregate(
        event=chosen.name.argmax(chosen.ts), ts=chosen.ts.max()
    )
    return [
        ConsentState(
            channel=str(row["channel"] or "-"),
            granted=row["event"] == "consent_granted",
            event=str(row["event"]),
            ts=row["ts"],
        )
        for row in latest.order_by("channel").to_pyarrow().to_pylist()
    ]


def traits_of(
    events: EventStore, person_id: str, rules: Mapping[str, Rule] | None = None
) -> dict[str, Any]:
    """The person's traits, each chosen from the identify calls by its survival rule."""
    mine = identity.events_of(events, person_id)
    identify = mine.filter(mine.name == "identify").order_by("ts")
    return survive(identify.select("properties", "channel").to_pyarrow().to_pylist(), rules)


def _event(row: dict[str, Any]) -> EventRead:
    return EventRead(
        **{
            **row,
            "amount": None if row["amount"] is None else str(row["amount"]),
            "properties": json.loads(row["properties"]) if row["properties"] else None,
        }
    )
