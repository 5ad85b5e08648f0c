"""Assemble a person's profile from the identity tables and the event store."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
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
    history = History.read(events, person.id)
    return ProfileRead(
        person_id=person.id,
        created_at=person.created_at,
        identifiers=[IdentifierRead.model_validate(i) for i in identifiers],
        traits=history.traits(rules),
        tags=tags.person_tags(events, person.id),
        latest_events=history.page(limit=LATEST_EVENTS, facets=False).items,
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


def _names(
    events: EventStore, *, containing: str | None = None, of: list[str] | None = None
) -> Any:
    """``person_id`` and each name given in an identify call (Ibis): of the people ``of``, or
    names ``containing`` a text (the raw JSON is searched first, so only candidates are
    parsed and resolved)."""
    raw = events.table()
    raw = raw.filter(raw.name == "identify")
    if containing and '"' not in containing and "\\" not in containing:
        text = raw.properties.cast("string")  # JSON keeps text unescaped: search it raw
        raw = raw.filter(text.contains(containing))
    table = (
        identity.person_events(events, raw)
        if of is None
        else identity.events_of_people(events, of, raw)
    )
    identify = table.filter(table.person_id.notnull())
    name = identify.properties.cast("json")["name"].str
    return identify.select("person_id", "ts", person_name=name).filter(
        lambda t: t.person_name.notnull()
    )


def _people_named(events: EventStore, text: str, offset: int, limit: int) -> tuple[list[str], int]:
    names = _names(events, containing=text)
    found = names.filter(names.person_name.contains(text)).select("person_id").distinct()
    total = int(found.count().to_pyarrow().as_py())
    page = found.order_by("person_id").limit(limit, offset=offset)
    return [str(pid) for pid in page.person_id.to_pyarrow().to_pylist()], total


def _summaries(db_session: Session, events: EventStore, ids: list[str]) -> list[PersonSummary]:
    if not ids:
        return []
    masked = identity.masked_identifiers(db_session=db_session, person_ids=ids)
    mine = _names(events, of=ids)
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


HISTORY_COLUMNS = ("event_id", "name", "ts", "channel", "order_id", "amount", "properties")


@dataclass(frozen=True)
class History:
    """One person's events, read in one scan, newest first. A profile page cuts its parts
    (traits, orders, messages, consent, the timeline) from it instead of asking the store for
    each: a person has hundreds of events, the store millions."""

    rows: list[dict[str, Any]]

    @classmethod
    def read(cls, events: EventStore, person_id: str) -> History:
        mine = identity.events_of(events, person_id)
        newest = mine.order_by([mine.ts.desc(), mine.event_id]).select(*HISTORY_COLUMNS)
        return cls(newest.to_pyarrow().to_pylist())

    def page(
        self,
        *,
        names: list[str] | None = None,
        channel: str | None = None,
        offset: int = 0,
        limit: int = 50,
        facets: bool = True,
    ) -> EventPage:
        chosen = [
            r
            for r in self.rows
            if (not names or r["name"] in names) and (not channel or r["channel"] == channel)
        ]
        return EventPage(
            items=[_event(row) for row in chosen[offset : offset + limit]],
            total=len(chosen),
            offset=offset,
            limit=limit,
            names=sorted({str(r["name"]) for r in self.rows if r["name"]}) if facets else [],
            channels=sorted({str(r["channel"]) for r in self.rows if r["channel"]})
            if facets
            else [],
        )

    def traits(self, rules: Mapping[str, Rule] | None = None) -> dict[str, Any]:
        """Each trait chosen from the identify calls (oldest first) by its survival rule."""
        identify = [r for r in self.rows if r["name"] == "identify"]
        identify.sort(key=lambda r: (r["ts"], r["event_id"]))
        return survive(identify, rules)

    def consent(self) -> list[ConsentState]:
        """The latest consent event per channel: granted unless revoked or unsubscribed."""
        latest: dict[str, dict[str, Any]] = {}
        for row in self.rows:  # newest first: the first seen per channel is the latest
            if row["name"] in CONSENT_EVENTS:
                latest.setdefault(str(row["channel"] or "-"), row)
        return [
            ConsentState(
                channel=channel,
                granted=row["name"] == "consent_granted",
                event=str(row["name"]),
                ts=row["ts"],
            )
            for channel, row in sorted(latest.items())
        ]


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
    """The person's events, newest first, optionally only ``names`` and ``channel``, with the
    names and channels they have (for filters) unless ``facets`` is off."""
    return History.read(events, person_id).page(
        names=names, channel=channel, offset=offset, limit=limit, facets=facets
    )


def orders(events: EventStore, person_id: str, limit: int = 100) -> list[EventRead]:
    """The person's paid orders and refunds, newest first."""
    return (
        History.read(events, person_id)
        .page(names=list(ORDER_EVENTS), limit=limit, facets=False)
        .items
    )


def messages(events: EventStore, person_id: str, limit: int = 30) -> list[EventRead]:
    """The messages the brand sent the person and what they did with them, newest first."""
    return (
        History.read(events, person_id)
        .page(names=list(MESSAGE_EVENTS), limit=limit, facets=False)
        .items
    )


class ConsentState(BaseModel):
    channel: str
    granted: bool
    event: str
    ts: datetime


def consent_state(events: EventStore, person_id: str) -> list[ConsentState]:
    """The latest consent event per channel: granted unless revoked or unsubscribed."""
    return History.read(events, person_id).consent()


def traits_of(
    events: EventStore, person_id: str, rules: Mapping[str, Rule] | None = None
) -> dict[str, Any]:
    """The person's traits, each chosen from the identify calls by its survival rule."""
    return History.read(events, person_id).traits(rules)


def _event(row: dict[str, Any]) -> EventRead:
    return EventRead(
        **{
            **row,
            "amount": None if row["amount"] is None else str(row["amount"]),
            "properties": json.loads(row["properties"]) if row["properties"] else None,
        }
    )
