"""The tracking flow: authenticate, read the body within its limits, turn each message into
an event row or a dead letter, and hand the rows to the group-commit writer.

The answer (200) is sent only after the append that holds the request's events committed.
CPU work (JSON, validation, Arrow) and database work run in worker threads, so the event loop
keeps accepting requests, which the writer then commits together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import numpy as np
import pyarrow as pa
from starlette.requests import Request

from siyu.collect import body as bodies
from siyu.collect import deadletters
from siyu.collect import service as sources
from siyu.collect.columns import FastRows, fast_rows
from siyu.collect.deadletters import Refused
from siyu.collect.errors import InvalidMessageError, MalformedBodyError
from siyu.collect.messages import Envelope, MessageError, parse_time, to_row, with_message_id
from siyu.collect.models import IngestResult, Rejection
from siyu.collect.writer import GroupCommitWriter
from siyu.core.clock import utcnow
from siyu.core.errors import EventStoreError, SiyuError
from siyu.core.i18n import N_
from siyu.events import EVENTS_SCHEMA

if TYPE_CHECKING:  # the app imports this module: no import of siyu.api at run time
    from siyu.api.context import AppContext


@dataclass
class Prepared:
    """A request's messages, sorted: rows to store and messages refused (by batch index)."""

    table: pa.Table
    ids: list[str]
    refused: list[tuple[int, Refused]] = field(default_factory=list)
    repeated: int = 0  # messageIds repeated inside the request (the first one is kept)


_ARROW_ERRORS = (pa.ArrowException, ValueError, TypeError, OverflowError, UnicodeError)


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=EVENTS_SCHEMA)


def _one_by_one(
    items: list[Any], positions: Iterable[int], envelope: Envelope, forced_type: str | None
) -> tuple[pa.Table, list[int], list[tuple[int, Refused]]]:
    """The detailed validator, message by message: rows (as a table) with their positions,
    and the refused messages with field and reason."""
    rows: list[dict[str, Any]] = []
    kept: list[int] = []
    refused: list[tuple[int, Refused]] = []
    for index in positions:
        item = items[index]
        try:
            rows.append(to_row(item, envelope, forced_type=forced_type))
        except MessageError as problem:
            refused.append((index, Refused(item, problem.field or "message", problem.reason)))
            continue
        kept.append(index)
    try:
        return _table(rows), kept, refused
    except _ARROW_ERRORS:
        pass
    # Some value Arrow cannot hold slipped through: find it row by row.
    storable: list[dict[str, Any]] = []
    storable_at: list[int] = []
    for row, index in zip(rows, kept, strict=True):
        try:
            _table([row])
        except _ARROW_ERRORS as exc:
            refused.append((index, Refused(items[index], "message", f"cannot be stored: {exc}")))
        else:
            storable.append(row)
            storable_at.append(index)
    return _table(storable), storable_at, refused


def _fast(items: list[Any], envelope: Envelope, forced_type: str | None) -> FastRows:
    try:
        return fast_rows(items, envelope, forced_type=forced_type)
    except _ARROW_ERRORS:  # a value the columns cannot hold: let the detailed path say which
        return FastRows([], EVENTS_SCHEMA.empty_table(), list(range(len(items))))


def _first_of_each(table: pa.Table) -> tuple[pa.Table, list[str], int]:
    """The rows whose messageId is the first of its kind in the request, their ids, and how
    many repeats were dropped."""
    ids: list[str] = table.column("event_id").to_pylist()
    seen: set[str] = set()
    keep = [not (event_id in seen or seen.add(event_id)) for event_id in ids]  # type: ignore[func-returns-value]
    repeated = len(ids) - len(seen)
    if not repeated:
        return table, ids, 0
    kept = [event_id for event_id, first in zip(ids, keep, strict=True) if first]
    return table.filter(pa.array(keep)), kept, repeated


def prepare(
    items: list[Any], envelope: Envelope, *, forced_type: str | None, strict: bool = False
) -> Prepared:
    """Rows for the valid messages of ``items``; the others refused with field and reason.

    ``strict`` says the items were decoded by the strict parser
    (:func:`siyu.collect.body.parse_json_strict`): the column-wise fast path then vouches for
    the common messages at once, and only the ones it flags go through the detailed
    validator. A repeated messageId keeps its first message (by batch position).
    """
    fast = _fast(items, envelope, forced_type) if strict else None
    detailed = fast.flagged if fast is not None else range(len(items))
    table, positions, refused = _one_by_one(items, detailed, envelope, forced_type)
    if fast is not None and fast.positions:
        positions = fast.positions + positions
        table = pa.concat_tables([fast.table, table])
        table = table.take(pa.array(np.argsort(np.asarray(positions), kind="stable")))
    table, ids, repeated = _first_of_each(table)
    refused.sort(key=lambda pair: pair[0])
    return Prepared(table=table, ids=ids, refused=refused, repeated=repeated)


def _for_dead_letter(item: Any, *, kind: str | None, batch: dict[str, Any] | None) -> Any:
    """The message as sent, plus what it inherited (type, the batch's sentAt and context),
    so a replay reads it the same way."""
    if not isinstance(item, dict):
        return item
    letter = dict(item)
    if kind is not None:
        letter.setdefault("type", kind)
    if batch is not None:
        for key in ("sentAt", "context"):
            if batch.get(key) is not None:
                letter.setdefault(key, batch[key])
    return letter


def _authenticate(
    context: AppContext, authorization: str | None, write_key: str | None
) -> tuple[str, str]:
    with context.database.unit_of_work() as db_session:
        source = sources.authenticate(
            db_session=db_session, authorization=authorization, write_key=write_key
        )
        return source.id, source.user_id_type


def _record(
    context: AppContext, source_id: str, received_at: datetime, refused: list[Refused]
) -> None:
    with context.database.unit_of_work() as db_session:
        deadletters.record(
            db_session=db_session, source_id=source_id, received_at=received_at, refused=refused
        )


def _sort(
    context: AppContext, data: bytes, envelope: Envelope, kind: str | None
) -> tuple[Prepared, list[Any]]:
    """Decode the body and sort its messages; dead-letter what is refused."""
    try:
        document, strict = bodies.parse_json_strict(data)
        if kind is None:
            items, batch = bodies.batch_of(document)
            sent_at = parse_time(batch.get("sentAt"), "sentAt")
            batch_context = batch.get("context")
            if batch_context is not None and not isinstance(batch_context, dict):
                raise MessageError("context", "must be an object")
            envelope = Envelope(
                user_id_type=envelope.user_id_type,
                source_id=envelope.source_id,
                received_at=envelope.received_at,
                sent_at=sent_at,
                context=batch_context,
            )
        else:
            items, batch = [with_message_id(bodies.message_of(document))], None
    except MessageError as problem:
        error = MalformedBodyError(
            N_("The batch's {field} {reason}"), field=problem.field, reason=problem.reason
        )
        _record(context, envelope.source_id, envelope.received_at, [_body_refused(data, error)])
        raise error from None
    except SiyuError as error:
        _record(context, envelope.source_id, envelope.received_at, [_body_refused(data, error)])
        raise
    prepared = prepare(items, envelope, forced_type=kind, strict=strict)
    if prepared.refused:
        letters = [
            Refused(_for_dead_letter(item.payload, kind=kind, batch=batch), item.field, item.reason)
            for _, item in prepared.refused
        ]
        _record(context, envelope.source_id, envelope.received_at, letters)
    return prepared, items


def _body_refused(data: bytes, error: SiyuError) -> Refused:
    return Refused(
        data[: deadletters.MAX_PAYLOAD_CHARS + 1].decode("utf-8", "replace"),
        "body",
        error.render("en"),
    )


def _writer(request: Request, context: AppContext) -> GroupCommitWriter:
    writer: GroupCommitWriter | None = getattr(request.app.state, "collect_writer", None)
    if writer is None:
        raise context.events_error or EventStoreError(
            N_("The event store is not open"), path=context.settings.resolved_events_url
        )
    return writer


async def _read_body(request: Request) -> bytes:
    headers = request.headers
    raw = await bodies.read_limited(request.stream(), content_length=headers.get("content-length"))
    return bodies.decompress(raw, headers.get("content-encoding"))


async def ingest_http(request: Request, *, context: AppContext, kind: str | None) -> IngestResult:
    """Handle one tracking request: ``kind`` is the endpoint's message type, None for a batch."""
    writer = _writer(request, context)
    received_at = utcnow()
    authorization = request.headers.get("authorization")
    data: bytes | None = None
    body_key: str | None = None
    if not authorization:  # the key may be in the body (sendBeacon cannot set headers)
        try:
            data = await _read_body(request)
        except SiyuError:
            pass  # no key can be read from it: 401 below
        else:
            body_key, data = await anyio.to_thread.run_sync(bodies.take_write_key, data)
    source_id, user_id_type = await anyio.to_thread.run_sync(
        _authenticate, context, authorization, body_key
    )
    envelope = Envelope(user_id_type=user_id_type, source_id=source_id, received_at=received_at)
    if data is None:
        try:
            data = await _read_body(request)
        except SiyuError as error:
            refused = [Refused("", "body", error.render("en"))]
            await anyio.to_thread.run_sync(_record, context, source_id, received_at, refused)
            raise
    prepared, _ = await anyio.to_thread.run_sync(_sort, context, data, envelope, kind)
    rejected = [
        Rejection(index=index, field=item.field, reason=item.reason)
        for index, item in prepared.refused
    ]
    if kind is not None and rejected:
        raise InvalidMessageError(
            N_("The message was refused: {field} {reason}"),
            hint=N_("Fix the message and send it again; it is kept among the dead letters."),
            errors=[rejection.model_dump() for rejection in rejected],
            field=rejected[0].field,
            reason=rejected[0].reason,
        )
    inserted = duplicates = 0
    if prepared.ids:
        ack = await writer.submit(prepared.table, prepared.ids)
        inserted, duplicates = ack.inserted, ack.duplicates
    return IngestResult(
        accepted=inserted, duplicates=duplicates + prepared.repeated, rejected=rejected
    )
