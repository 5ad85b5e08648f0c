"""Assemble a person's profile from the identity tables and the event store."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from siyu.core.errors import InvalidInputError, NotFoundError
from siyu.core.i18n import N_
from siyu.events import EventStore
from siyu.identity import service as identity
from siyu.identity.models import IdentifierRead
from siyu.identity.rules import is_valid_type
from siyu.tags import service as tags

# How a trait survives when sources disagree: the latest value (default), the first value
# ever given, or the value from the most trusted channel (earlier in the list wins).
TRAIT_RULES: dict[str, str | list[str]] = {
    "birthday": "first_seen",
    "gender": ["store", "crm", "miniprogram", "wecom", "web"],
    "name": ["store", "crm", "wecom", "miniprogram", "web"],
}
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


def _survive(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Pick each trait's value from the identify events (oldest first) by its rule."""
    traits: dict[str, Any] = {}
    rank: dict[str, int] = {}
    for row in rows:
        properties = json.loads(row["properties"]) if row["properties"] else {}
        for key, value in properties.items():
            if value in (None, ""):
                continue
            rule = TRAIT_RULES.get(key, "latest")
            if rule == "first_seen":
                traits.setdefault(key, value)
            elif isinstance(rule, list):
                trust = rule.index(row["channel"]) if row["channel"] in rule else len(rule)
                if key not in traits or trust <= rank[key]:
                    traits[key], rank[key] = value, trust
            else:
                traits[key] = value
    return traits


def profile(*, db_session: Session, events: EventStore, person_id: str) -> ProfileRead:
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
        traits=_survive(identify_rows),
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
