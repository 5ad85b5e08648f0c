"""One batch of a file → rows of the ``events`` table, and the rows refused with their reasons.

``events`` rows keep their fields; ``people`` rows become ``identify`` events (identifiers as
evidence, the other columns as traits); ``orders`` rows become ``order_paid`` events. Every
check is a mask over the whole batch; a row failing any check is refused and the others are
kept. Event ids follow the API's dedup rules so a re-import adds nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from siyu.collect.importer import convert as cv
from siyu.collect.importer.formats import ROW
from siyu.collect.importer.mapping import IDENTIFIER_TYPES
from siyu.collect.importer.models import ImportKind
from siyu.core.i18n import N_
from siyu.events.schema import CHANNELS, EVENTS_SCHEMA, TIMESTAMP

# Limits of the tracking API (siyu.collect.messages), in characters (JSON: bytes).
MAX_ID = 256
MAX_NAME = 200
MAX_TEXT = 512
MAX_JSON_BYTES = 32 * 1024
REPORT_VALUE_CHARS = 200

REASONS: dict[str, str] = {
    "missing_value": N_("required value missing"),
    "invalid_timestamp": N_("not a date-time siyu can read"),
    "timestamp_out_of_range": N_("before 2000-01-01 or more than one day in the future"),
    "invalid_amount": N_("not an amount (a finite number below 10^16)"),
    "negative_amount": N_("negative amount"),
    "invalid_number": N_("not a whole number from 0 to 2^31-1"),
    "invalid_phone": N_("not a phone number"),
    "invalid_email": N_("not an e-mail address"),
    "invalid_identifier": N_("not a valid identifier"),
    "unknown_channel": N_("unknown channel"),
    "invalid_currency": N_("not a 3-letter currency code"),
    "invalid_json": N_("not a JSON object"),
    "value_too_long": N_("value too long"),
    "malformed_record": N_("the record cannot be parsed"),
}
_ID_PATTERNS = {
    "openid": r"^[A-Za-z0-9_-]{6,64}$",
    "unionid": r"^[A-Za-z0-9_-]{6,64}$",
    "wecom_external_userid": r"^[A-Za-z0-9_-]{6,128}$",
}
_TEXT_FIELDS = ("source", "scene", "utm_source", "utm_medium", "utm_campaign", "sku", "category")
_HASHED = [field.name for field in EVENTS_SCHEMA if field.name not in ("event_id", "received_at")]
# What a batch hands the store: every column; received_at is left null, for the store to
# stamp with the append time in one vectorised fill.
_OUTPUT = pa.schema([field.with_nullable(True) for field in EVENTS_SCHEMA])
REJECT_SCHEMA = pa.schema(
    [("row", pa.int64()), ("column", pa.string()), ("reason", pa.string()), ("value", pa.string())]
)


@dataclass(frozen=True)
class Options:
    """What a kind needs besides the mapping: the user-id type, default currency/channel."""

    kind: ImportKind
    id_type: str = "member_no"
    currency: str = "CNY"
    channel: str | None = None


@dataclass(frozen=True)
class Converted:
    events: pa.Table  # EVENTS_SCHEMA, received_at null (the store stamps it)
    rejects: pa.Table  # REJECT_SCHEMA, one line per problem
    rows: int
    rejected_rows: int


class _Batch:
    """The checks of one batch: each adds a mask of refused rows with its column and reason."""

    def __init__(self, table: pa.Table, mapping: dict[str, str]) -> None:
        self.table = table
        self.mapping = mapping
        self.rows = table.num_rows
        self.refused: pa.Array | None = None  # None until a row is refused
        self.problems: list[pa.Table] = []
        self._arrays: dict[str, pa.Array] = {}

    def column(self, name: str) -> pa.Array:
        """A file column as one contiguous array (combined once, however often it is used)."""
        if name not in self._arrays:
            self._arrays[name] = cv.array(self.table.column(name))
        return self._arrays[name]

    def source(self, target: str) -> pa.Array | None:
        name = self.mapping.get(target)
        if name is None or name not in self.table.column_names:
            return None
        return self.column(name)

    def text(self, target: str, *, limit: int = MAX_TEXT, trim: bool = True) -> pa.Array:
        values = self.source(target)
        if values is None:
            return pa.nulls(self.rows, pa.string())
        converted = cv.text(values, trim=trim)
        self.check(target, "value_too_long", cv.longer_than(converted, limit))
        return converted

    def check(
        self, target: str, reason: str, mask: cv.Column | None, column: str | None = None
    ) -> None:
        """Refuse the rows ``mask`` flags (None: no row), one report line each."""
        if mask is None:
            return
        flags = cv.bad(mask)
        if not pc.any(flags).as_py():
            return
        self.refused = flags if self.refused is None else cv.array(pc.or_(self.refused, flags))
        where = pc.indices_nonzero(flags)
        raw = self.source(target)
        if raw is None and column is not None and column in self.table.column_names:
            raw = self.column(column)
        shown = (
            pc.utf8_slice_codeunits(cv.text(raw.take(where), trim=False), 0, REPORT_VALUE_CHARS)
            if raw is not None
            else pa.nulls(len(where), pa.string())
        )
        name = column or self.mapping.get(target, target)
        self.problems.append(
            pa.table(
                [
                    self.column(ROW).take(where),
                    pa.repeat(pa.scalar(name, pa.string()), len(where)),
                    pa.repeat(pa.scalar(reason, pa.string()), len(where)),
                    shown,
                ],
                schema=REJECT_SCHEMA,
            )
        )

    def required(self, target: str, values: pa.Array) -> None:
        self.check(target, "missing_value", pc.is_null(values))

    def required_source(self, target: str) -> None:
        """Refuse rows whose ``target`` column is empty (all, if nothing feeds it). A typed
        column (timestamps, decimals) is checked for nulls without being spelled as text."""
        raw = self.source(target)
        if raw is None or cv.is_text(raw):
            self.required(target, self.text(target))
        else:
            self.check(target, "missing_value", pc.is_null(raw))

    def timestamps(self, target: str, engine: cv.Engine, now: datetime) -> pa.Array:
        raw = self.source(target)
        if raw is None:
            return pa.nulls(self.rows, TIMESTAMP)
        parsed = engine.timestamps(raw)
        if parsed.null_count:
            given = cv.present(raw)
            self.check(target, "invalid_timestamp", pc.and_(given, pc.is_null(parsed)))
        self.check(target, "timestamp_out_of_range", cv.out_of_range(parsed, now))
        return parsed

    def identifiers(self) -> dict[str, pa.Array]:
        found: dict[str, pa.Array] = {}
        for kind in IDENTIFIER_TYPES:
            raw = self.source(kind)
            if raw is None:
                continue
            if kind == "phone":
                values, invalid = cv.phone(raw)
                self.check(kind, "invalid_phone", invalid)
            elif kind == "email":
                values, invalid = cv.email(raw)
                self.check(kind, "invalid_email", invalid)
            elif kind in _ID_PATTERNS:
                values, invalid = cv.pattern(raw, _ID_PATTERNS[kind])
                self.check(kind, "invalid_identifier", invalid)
            else:
                values = self.text(kind, limit=MAX_ID)
            found[kind] = values
        return found

    def extras(self) -> dict[str, pa.Array]:
        """The columns no target uses: traits or properties, kept with their types."""
        used = set(self.mapping.values()) | {ROW}
        found: dict[str, pa.Array] = {}
        for name in self.table.column_names:
            if name in used:
                continue
            values = self.column(name)
            if cv.is_text(values):
                self.check(name, "value_too_long", cv.longer_than(values, MAX_TEXT), column=name)
            found[name] = values
        return found

    def json_column(self, target: str, engine: cv.Engine) -> pa.Array:
        """The column's text, each row checked to be a JSON object (one parse per row)."""
        values = self.text(target, limit=MAX_JSON_BYTES, trim=False)
        self.check(target, "invalid_json", engine.json_objects_invalid(values))
        return values

    def finish(self, columns: dict[str, pa.Array]) -> Converted:
        """The kept rows as an ``events`` table: columns already of the stored type are used
        as they are, and nothing is copied unless a row was refused."""
        arrays = [_typed(columns.get(field.name), field.type, self.rows) for field in _OUTPUT]
        events = pa.Table.from_arrays(arrays, schema=_OUTPUT)
        refused = 0
        if self.refused is not None:
            events = events.filter(pc.invert(self.refused))
            refused = self.rows - events.num_rows
        rejects = (
            pa.concat_tables(self.problems).sort_by([("row", "ascending")])
            if self.problems
            else REJECT_SCHEMA.empty_table()
        )
        return Converted(events=events, rejects=rejects, rows=self.rows, rejected_rows=refused)


def _typed(values: pa.Array | None, kind: pa.DataType, rows: int) -> pa.Array:
    if values is None:
        return pa.nulls(rows, kind)
    return values if values.type == kind else values.cast(kind)


def _typed_keys(identifiers: dict[str, pa.Array], first: str, rows: int) -> pa.Array:
    """``type:value`` of the first identifier a row has, ``first`` (``--id-type``) leading."""
    order = [first, *[kind for kind in IDENTIFIER_TYPES if kind != first]]
    keys = [
        pc.binary_join_element_wise(f"{kind}:", identifiers[kind], "")
        for kind in order
        if kind in identifiers
    ]
    if not keys:
        return pa.nulls(rows, pa.string())
    return cv.array(pc.coalesce(*keys))


def _channel(batch: _Batch, options: Options) -> pa.Array:
    values = pc.utf8_lower(batch.text("channel"))
    if options.channel is not None:
        values = pc.fill_null(values, options.channel)
    batch.check(
        "channel",
        "unknown_channel",
        pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, pa.array(CHANNELS)))),
    )
    return cv.array(values)


def _order_columns(batch: _Batch, options: Options, columns: dict[str, pa.Array]) -> None:
    columns["order_id"] = batch.text("order_id", limit=MAX_ID)
    raw = batch.source("amount")
    if raw is not None:
        amounts = cv.amount(raw)
        batch.check("amount", "invalid_amount", amounts.invalid)
        batch.check("amount", "negative_amount", amounts.negative)
        columns["amount"] = amounts.values
    currency = pc.utf8_upper(batch.text("currency", limit=3))
    if "amount" in columns:
        has_amount = pc.is_valid(columns["amount"])
        default = pc.if_else(has_amount, options.currency, pa.scalar(None, pa.string()))
        currency = pc.coalesce(currency, default)
    batch.check(
        "currency",
        "invalid_currency",
        pc.and_(pc.is_valid(currency), pc.invert(pc.match_substring_regex(currency, "^[A-Z]{3}$"))),
    )
    columns["currency"] = cv.array(currency)
    for name in ("sku", "category"):
        columns[name] = batch.text(name, limit=MAX_ID if name == "sku" else MAX_NAME)
    raw_quantity = batch.source("quantity")
    if raw_quantity is not None:
        quantity, invalid = cv.quantity(raw_quantity)
        batch.check("quantity", "invalid_number", invalid)
        columns["quantity"] = quantity


def _content_ids(columns: dict[str, pa.Array], rows: int, engine: cv.Engine) -> pa.Array:
    """``import:<sha256>`` of a row's content as stored (so the same event read from another
    file, in another format or column order, gets the same id)."""
    parts: list[pa.Array] = []
    for name in _HASHED:
        values = columns.get(name)
        if values is None:
            parts.append(pa.nulls(rows, pa.string()))
        elif pa.types.is_timestamp(values.type):
            parts.append(values.cast(pa.int64()).cast(pa.string()))
        else:
            parts.append(cv.text(values, trim=False))
    content = pc.binary_join_element_wise(
        *parts, "\x1f", null_handling="replace", null_replacement="\x00"
    )
    return cv.array(pc.binary_join_element_wise("import:", engine.sha256(cv.array(content)), ""))


def convert_batch(
    table: pa.Table,
    *,
    mapping: dict[str, str],
    options: Options,
    engine: cv.Engine,
    now: datetime,
) -> Converted:
    """Map, validate and convert one batch (its ``__row`` column numbers the records)."""
    batch = _Batch(table, mapping)
    rows = batch.rows
    columns: dict[str, Any] = {}
    identifiers = batch.identifiers()
    given_ids = batch.text("event_id", limit=MAX_ID)
    columns["channel"] = _channel(batch, options)
    columns["source"] = batch.text("source")
    build: Callable[[], pa.Array]
    if options.kind is ImportKind.events:
        columns["name"] = batch.text("name", limit=MAX_NAME)
        batch.required("name", columns["name"])
        columns["ts"] = batch.timestamps("ts", engine, now)
        batch.required_source("ts")
        columns["user_id"] = cv.array(
            pc.coalesce(
                batch.text("user_id", limit=MAX_ID), _typed_keys(identifiers, options.id_type, rows)
            )
        )
        columns["anonymous_id"] = batch.text("anonymous_id", limit=MAX_ID)
        if "identifiers" in mapping:
            columns["identifiers"] = batch.json_column("identifiers", engine)
        else:
            columns["identifiers"] = cv.json_object(dict(identifiers), rows)
        for name in _TEXT_FIELDS[1:5]:
            columns[name] = batch.text(name)
        if "properties" in mapping:
            columns["properties"] = batch.json_column("properties", engine)
        else:
            columns["properties"] = cv.json_object(dict(batch.extras()), rows)
        _order_columns(batch, options, columns)

        def build() -> pa.Array:
            return _content_ids(columns, rows, engine)

    elif options.kind is ImportKind.people:
        columns["name"] = pa.repeat(pa.scalar("identify"), rows)
        parsed = batch.timestamps("ts", engine, now)
        columns["ts"] = cv.array(pc.fill_null(parsed, pa.scalar(now, TIMESTAMP)))
        columns["user_id"] = _typed_keys(identifiers, options.id_type, rows)
        batch.check(options.id_type, "missing_value", pc.is_null(columns["user_id"]))
        columns["identifiers"] = cv.json_object(dict(identifiers), rows)
        columns["properties"] = cv.json_object(dict(batch.extras()), rows)

        def build() -> pa.Array:
            digest = engine.sha256(cv.array(pc.fill_null(columns["identifiers"], "")))
            return cv.array(pc.binary_join_element_wise("import:people:", digest, ""))

    else:
        columns["name"] = pa.repeat(pa.scalar("order_paid"), rows)
        columns["ts"] = batch.timestamps("ts", engine, now)
        batch.required_source("ts")
        _order_columns(batch, options, columns)
        batch.required("order_id", columns["order_id"])
        batch.required_source("amount")
        columns["user_id"] = cv.array(
            pc.coalesce(
                batch.text("user_id", limit=MAX_ID), _typed_keys(identifiers, options.id_type, rows)
            )
        )
        columns["identifiers"] = cv.json_object(dict(identifiers), rows)
        columns["properties"] = cv.json_object(dict(batch.extras()), rows)

        def build() -> pa.Array:
            return cv.array(
                pc.binary_join_element_wise("order:", columns["order_id"], ":order_paid", "")
            )

    columns["event_id"] = (
        given_ids if pc.all(pc.is_valid(given_ids)).as_py() else pc.coalesce(given_ids, build())
    )
    return batch.finish(columns)
