"""Dead letters: every message the tracking API refused, kept with why, listed and replayed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.collect.errors import DeadLetterNotFoundError
from siyu.collect.models import DeadLetter, ReplayResult, Source
from siyu.core.clock import utcnow
from siyu.core.i18n import N_
from siyu.core.ids import new_id
from siyu.events import EventStore

MAX_PAYLOAD_CHARS = 64 * 1024


@dataclass(frozen=True)
class Refused:
    """One refused message (or body), as it arrived."""

    payload: Any  # the decoded message, or the raw body as text
    field: str
    reason: str


def _payload_text(payload: Any) -> str:
    if isinstance(payload, str):
        return payload
    try:
        # ASCII escapes keep lone surrogates and control characters storable as text.
        return json.dumps(payload, ensure_ascii=True, default=str)
    except (ValueError, RecursionError):
        return repr(payload)


def record(
    *, db_session: Session, source_id: str | None, received_at: datetime, refused: list[Refused]
) -> list[DeadLetter]:
    letters = []
    for item in refused:
        text = _payload_text(item.payload)
        truncated = len(text) > MAX_PAYLOAD_CHARS
        letters.append(
            DeadLetter(
                id=new_id("dl"),
                source_id=source_id,
                received_at=received_at,
                payload=text[:MAX_PAYLOAD_CHARS],
                payload_truncated=truncated,
                reason=item.reason[:2000],
                field=item.field[:200] or None,
            )
        )
    db_session.add_all(letters)
    db_session.flush()
    return letters


def get_or_raise(*, db_session: Session, dead_letter_id: str) -> DeadLetter:
    letter = db_session.get(DeadLetter, dead_letter_id)
    if letter is None:
        raise DeadLetterNotFoundError(
            N_("No dead letter {dead_letter_id}"), dead_letter_id=dead_letter_id
        )
    return letter


def list_all(
    *,
    db_session: Session,
    source_id: str | None = None,
    limit: int = 100,
    include_replayed: bool = True,
) -> list[DeadLetter]:
    """The newest dead letters first."""
    query = select(DeadLetter)
    if source_id is not None:
        query = query.where(DeadLetter.source_id == source_id)
    if not include_replayed:
        query = query.where(DeadLetter.replayed_at.is_(None))
    query = query.order_by(DeadLetter.received_at.desc(), DeadLetter.id.desc()).limit(limit)
    return list(db_session.scalars(query))


def replay(
    *,
    db_session: Session,
    events: EventStore,
    dead_letter_id: str | None = None,
    replay_all: bool = False,
) -> ReplayResult:
    """Validate dead letters again with today's rules; append the ones that now pass and mark
    them replayed. ``replay_all`` takes every letter not replayed yet."""
    from siyu.collect.ingest import prepare
    from siyu.collect.messages import Envelope

    if dead_letter_id is not None:
        letters = [get_or_raise(db_session=db_session, dead_letter_id=dead_letter_id)]
    elif replay_all:
        letters = list(
            db_session.scalars(
                select(DeadLetter)
                .where(DeadLetter.replayed_at.is_(None))
                .order_by(DeadLetter.received_at, DeadLetter.id)
            )
        )
    else:
        letters = []
    replayed = duplicates = still = 0
    for letter in letters:
        if letter.replayed_at is not None:
            continue
        if letter.payload_truncated:
            still += 1
            continue
        try:
            message = json.loads(letter.payload)
        except ValueError:
            still += 1
            continue
        source = db_session.get(Source, letter.source_id) if letter.source_id else None
        envelope = Envelope(
            user_id_type=source.user_id_type if source is not None else "member_no",
            source_id=letter.source_id or "",
            received_at=letter.received_at,
        )
        prepared = prepare([message], envelope, forced_type=None)
        if prepared.refused:
            still += 1
            continue
        result = events.append(prepared.table)
        duplicates += result.duplicates
        replayed += result.inserted
        letter.replayed_at = utcnow()
    db_session.flush()
    return ReplayResult(replayed=replayed, duplicates=duplicates, still_rejected=still)
