"""The batch fast path: a batch's common messages checked and mapped column by column.

Most messages share a few plain shapes (track, page, screen or identify with string ids, an
ISO timestamp, plain properties). Those are done set-at-a-time: each field is pulled out of
the whole batch once, then lengths, identifier formats and time bounds are tested on Arrow
columns. A message outside those shapes, or failing any check, is *flagged* and left to
:func:`siyu.collect.messages.to_row`, the one authority on errors, so a refused message gets
exactly the field and reason it always did. The fast path only accepts a message that
``to_row`` accepts, and maps it to the same row.

It needs messages decoded by the strict parser (:func:`siyu.collect.body.parse_json_strict`):
no NaN or Infinity, no lone surrogates, no integers past 64 bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from siyu.collect import messages as rules
from siyu.events import EVENTS_SCHEMA

Mask = npt.NDArray[np.bool_]

FAST_TYPES = frozenset({"track", "page", "screen", "identify"})
# Fields whose rules are rare or intricate: a message carrying one takes the detailed path.
SLOW_KEYS = frozenset({"originalTimestamp", "sentAt", "channel"})
SLOW_CONTEXT_KEYS = frozenset(
    {"channel", "traits", "identifiers", "miniprogram", "wecom", "externalIds"}
)
_CONTROL = r"[\x00-\x1f\x7f]"
# RE2 twins of the identifier patterns, applied to ASCII text only (where RE2's \s and $
# agree with Python's or are stricter). Phone numbers also need five digits.
_RE2_PATTERNS = {kind: pattern.pattern for kind, pattern in rules._IDENTIFIER_PATTERNS.items()}
_TIMESTAMP = pa.timestamp("us", tz="UTC")
_PAGE_KEYS = ("url", "path", "referrer", "title")


@dataclass
class FastRows:
    """The rows the fast path made (for the batch ``positions``), and the positions it left
    to the detailed validator."""

    positions: list[int]
    table: pa.Table
    flagged: list[int]


# -- column helpers ----------------------------------------------------------------------------


def _strings(values: list[Any]) -> tuple[pa.Array, Mask]:
    """``values`` as an Arrow string column (non-strings null) and which were not strings
    nor absent (those need the detailed path)."""
    strings = [value if type(value) is str else None for value in values]
    odd = np.fromiter(
        (value is not None and type(value) is not str for value in values), bool, len(values)
    )
    return pa.array(strings, pa.string()), odd


def _mask(array: pa.Array | pa.ChunkedArray) -> Mask:
    """An Arrow boolean column as numpy, null as False."""
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _length_ok(strings: pa.Array, low: int, high: int) -> Mask:
    """True where the string has ``low`` … ``high`` characters (null: True)."""
    lengths = pc.utf8_length(strings)
    good = pc.and_(pc.greater_equal(lengths, low), pc.less_equal(lengths, high))
    return _mask(pc.or_kleene(pc.is_null(strings), good))


def _identifier_ok(strings: pa.Array, kind: str) -> Mask:
    """True where the value passes :func:`siyu.collect.messages.identifier` (null: True)."""
    good = pc.and_(
        pc.less_equal(pc.utf8_length(strings), rules.MAX_ID_LENGTH),
        pc.invert(pc.match_substring_regex(strings, _CONTROL)),
    )
    pattern = _RE2_PATTERNS.get(kind)
    if pattern is not None:
        good = pc.and_(good, pc.string_is_ascii(strings))
        good = pc.and_(good, pc.match_substring_regex(strings, pattern))
        if kind == "phone":
            good = pc.and_(good, pc.greater_equal(pc.count_substring_regex(strings, "[0-9]"), 5))
    return _mask(pc.or_kleene(pc.is_null(strings), good))


def _present(strings: pa.Array) -> Mask:
    return _mask(pc.is_valid(strings))


def _objects(values: list[Any]) -> tuple[list[dict[str, Any]], Mask]:
    """Each value as an object ({} when absent), and which were neither (detailed path)."""
    odd = np.fromiter(
        (value is not None and type(value) is not dict for value in values), bool, len(values)
    )
    return [value if type(value) is dict else {} for value in values], odd


# -- the shape filter --------------------------------------------------------------------------


def _plain_context(context: Any) -> bool:
    return type(context) is dict and not (context.keys() & SLOW_CONTEXT_KEYS)


def _candidate(message: Any, forced_type: str | None, batch_context_plain: bool) -> bool:
    if type(message) is not dict or message.keys() & SLOW_KEYS:
        return False
    kind = message.get("type")
    if forced_type is not None:
        if forced_type not in FAST_TYPES:
            return False
        if kind is not None and kind != forced_type:
            return False
    elif kind not in FAST_TYPES:
        return False
    context = message.get("context")
    return batch_context_plain if context is None else _plain_context(context)


# -- the columns -------------------------------------------------------------------------------


def _event_times(messages: list[dict[str, Any]], envelope: rules.Envelope) -> tuple[pa.Array, Mask]:
    """``ts`` for each message (Segment's clock-skew rule) and which need the detailed path
    (unreadable, out of bounds)."""
    stated: list[datetime | None] = []
    odd = np.zeros(len(messages), dtype=bool)
    for position, message in enumerate(messages):
        try:
            stated.append(rules.parse_time(message.get("timestamp"), "timestamp"))
        except rules.MessageError:
            stated.append(None)
            odd[position] = True
    received = envelope.received_at
    times = pa.array(stated, _TIMESTAMP)
    if envelope.sent_at is not None:
        times = pc.add(times, pa.scalar(received - envelope.sent_at, pa.duration("us")))
    earliest = pa.scalar(rules.EARLIEST, _TIMESTAMP)
    latest = pa.scalar(received + rules.MAX_FUTURE, _TIMESTAMP)
    in_bounds = pc.and_(pc.greater_equal(times, earliest), pc.less_equal(times, latest))
    odd |= ~_mask(pc.or_kleene(pc.is_null(times), in_bounds))
    return pc.fill_null(times, pa.scalar(received, _TIMESTAMP)), odd


def _properties(
    messages: list[dict[str, Any]],
    kinds: list[str],
    traits: list[dict[str, Any]],
    contexts: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], Mask]:
    """The ``properties`` each message stores: its own, page extras added, traits for
    identify."""
    own, odd = _objects([message.get("properties") for message in messages])
    result: list[dict[str, Any]] = []
    for position, (message, kind) in enumerate(zip(messages, kinds, strict=True)):
        if kind == "identify":
            result.append(traits[position])
        elif kind == "track":
            result.append(own[position])
        else:
            merged, ok = _page_properties(message, own[position], contexts[position])
            odd[position] |= not ok
            result.append(merged)
    return result, odd


def _page_properties(
    message: dict[str, Any], own: dict[str, Any], context: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    merged = dict(own)
    for key in ("name", "category"):
        value = message.get(key)
        if value is not None:
            if type(value) is not str or not 0 < len(value) <= rules.MAX_NAME_LENGTH:
                return merged, False
            merged.setdefault(key, value)
    page = context.get("page")
    if page is not None:
        if type(page) is not dict:
            return merged, False
        for key in _PAGE_KEYS:
            if key in page:
                merged.setdefault(key, page[key])
    return merged, True


def _json_column(values: list[dict[str, Any] | None]) -> tuple[pa.Array, Mask]:
    """Objects as compact JSON text (as ``json.dumps(ensure_ascii=False)`` writes it), and
    which cannot be (too large, not encodable: detailed path)."""
    encoded: list[bytes | None] = []
    odd = np.zeros(len(values), dtype=bool)
    for position, value in enumerate(values):
        if value is None:
            encoded.append(None)
            continue
        try:
            text = orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError):
            text = b"{}"
            odd[position] = True
        if len(text) > rules.MAX_JSON_BYTES:
            odd[position] = True
        encoded.append(text)
    return pa.array(encoded, pa.binary()).cast(pa.string()), odd


def _first(properties: list[dict[str, Any]], keys: tuple[str, ...]) -> tuple[list[Any], list[str]]:
    """The first non-null value among ``keys`` in each object, and the key it came from."""
    values: list[Any] = []
    fields: list[str] = []
    for item in properties:
        for key in keys:
            value = item.get(key)
            if value is not None:
                values.append(value)
                fields.append(key)
                break
        else:
            values.append(None)
            fields.append("")
    return values, fields


def _text_column(values: list[Any], limit: int, *, ints: bool = False) -> tuple[pa.Array, Mask]:
    """Optional text of 1 … ``limit`` characters (integers written out when ``ints``)."""
    if ints:
        values = [str(v) if type(v) is int else v for v in values]
    strings, odd = _strings(values)
    return strings, odd | ~_length_ok(strings, 1, limit)


def _amounts(properties: list[dict[str, Any]]) -> tuple[pa.Array, Mask]:
    values, fields = _first(properties, ("amount", "total", "revenue"))
    amounts: list[Decimal | None] = []
    odd = np.zeros(len(values), dtype=bool)
    for position, (value, key) in enumerate(zip(values, fields, strict=True)):
        if value is None:
            amounts.append(None)
            continue
        try:
            amounts.append(rules._money(value, f"properties.{key}"))
        except rules.MessageError:
            amounts.append(None)
            odd[position] = True
    return pa.array(amounts, pa.decimal128(18, 2)), odd


def _quantities(properties: list[dict[str, Any]]) -> tuple[pa.Array, Mask]:
    values = [item.get("quantity") for item in properties]
    odd = np.fromiter(
        (
            v is not None and (type(v) is not int or not 0 <= v <= rules.MAX_QUANTITY)
            for v in values
        ),
        bool,
        len(values),
    )
    kept = [v if type(v) is int and not bad else None for v, bad in zip(values, odd, strict=True)]
    return pa.array(kept, pa.int32()), odd


def _currencies(properties: list[dict[str, Any]]) -> tuple[pa.Array, Mask]:
    values = [item.get("currency") for item in properties]
    good = [
        v is None or (type(v) is str and len(v) == 3 and v.isascii() and v.isalpha())
        for v in values
    ]
    odd = ~np.asarray(good, dtype=bool)
    upper = [
        v.upper() if ok and v is not None else None for v, ok in zip(values, good, strict=True)
    ]
    return pa.array(upper, pa.string()), odd


def _order_columns(
    properties: list[dict[str, Any]], kinds: list[str]
) -> tuple[dict[str, pa.Array], Mask]:
    """The promoted order columns (track, page, screen; identify has none)."""
    own = [p if kind != "identify" else {} for p, kind in zip(properties, kinds, strict=True)]
    order_ids = [p.get("order_id", p.get("orderId")) for p in own]
    columns: dict[str, pa.Array] = {}
    columns["order_id"], odd = _text_column(order_ids, rules.MAX_ID_LENGTH, ints=True)
    skus, _ = _first(own, ("sku", "product_id", "productId"))
    columns["sku"], bad = _text_column(skus, rules.MAX_ID_LENGTH, ints=True)
    odd |= bad
    categories = [p.get("category") for p in own]
    columns["category"], bad = _text_column(categories, rules.MAX_NAME_LENGTH, ints=True)
    odd |= bad
    for name, make in (("amount", _amounts), ("quantity", _quantities), ("currency", _currencies)):
        columns[name], bad = make(own)
        odd |= bad
    return columns, odd


def _identifier_objects(
    envelope: rules.Envelope, users: list[Any], anonymous: list[Any], traits: list[dict[str, Any]]
) -> list[dict[str, Any] | None]:
    objects: list[dict[str, Any] | None] = []
    for user, anon, trait in zip(users, anonymous, traits, strict=True):
        found: dict[str, Any] = {}
        if user is not None:
            found[envelope.user_id_type] = user
        if anon is not None:
            found.setdefault("anonymous_id", anon)
        for kind in ("phone", "email"):
            if trait.get(kind) not in (None, ""):
                found.setdefault(kind, trait[kind])
        objects.append(found or None)
    return objects


def _rows(
    messages: list[dict[str, Any]], envelope: rules.Envelope, forced_type: str | None
) -> tuple[dict[str, pa.Array], Mask]:
    """Every column of the candidates' rows, and which candidates need the detailed path."""
    count = len(messages)
    kinds = [forced_type or str(m["type"]) for m in messages]
    columns: dict[str, pa.Array] = {}
    ids, odd = _strings([m.get("messageId") for m in messages])
    odd |= ~_present(ids) | ~_length_ok(ids, 1, rules.MAX_ID_LENGTH)
    columns["event_id"] = ids

    users_raw = [m.get("userId") for m in messages]
    users_raw = [None if v == "" else v for v in users_raw]
    users, bad = _strings(users_raw)
    odd |= bad | ~_identifier_ok(users, envelope.user_id_type)
    anonymous_raw = [m.get("anonymousId") for m in messages]
    anonymous, bad = _strings(anonymous_raw)
    odd |= bad | ~_identifier_ok(anonymous, "anonymous_id")
    odd |= np.fromiter((v == "" for v in anonymous_raw), bool, count)
    odd |= ~(_present(users) | _present(anonymous))
    columns["user_id"] = pc.binary_join_element_wise(f"{envelope.user_id_type}:", users, "")
    columns["anonymous_id"] = anonymous

    traits, bad = _objects([m.get("traits") for m in messages])
    odd |= bad
    for kind in ("phone", "email"):
        values = [None if t.get(kind) == "" else t.get(kind) for t in traits]
        strings, bad = _strings(values)
        odd |= bad | ~_identifier_ok(strings, kind)

    events, bad = _strings(
        [m.get("event") if k == "track" else None for m, k in zip(messages, kinds, strict=True)]
    )
    is_track = np.asarray([k == "track" for k in kinds], dtype=bool)
    odd |= bad | (is_track & ~_present(events)) | ~_length_ok(events, 1, rules.MAX_NAME_LENGTH)
    names = [
        rules.SPEC_EVENT_NAMES.get(str(event), str(event)) if kind == "track" else _NAMES[kind]
        for event, kind in zip(events.to_pylist(), kinds, strict=True)
    ]
    columns["name"] = pa.array(names, pa.string())

    columns["ts"], bad = _event_times(messages, envelope)
    odd |= bad
    columns["received_at"] = pa.array([envelope.received_at] * count, _TIMESTAMP)
    columns["channel"] = pa.array(["app" if k == "screen" else "web" for k in kinds], pa.string())
    columns["source"] = pa.array([envelope.source_id] * count, pa.string())

    inherited = envelope.context or {}
    contexts = [c if (c := m.get("context")) is not None else inherited for m in messages]
    campaigns, bad = _objects([c.get("campaign") for c in contexts])
    odd |= bad
    for key, column in (
        ("source", "utm_source"),
        ("medium", "utm_medium"),
        ("name", "utm_campaign"),
    ):
        columns[column], bad = _text_column([c.get(key) for c in campaigns], rules.MAX_TEXT_LENGTH)
        odd |= bad

    properties, bad = _properties(messages, kinds, traits, contexts)
    odd |= bad
    order, bad = _order_columns(properties, kinds)
    odd |= bad
    columns.update(order)
    columns["properties"], bad = _json_column(list(properties))
    odd |= bad
    identifiers = _identifier_objects(envelope, users.to_pylist(), anonymous.to_pylist(), traits)
    columns["identifiers"], bad = _json_column(identifiers)
    odd |= bad
    return columns, odd


_NAMES = {"page": "page_view", "screen": "page_view", "identify": "identify"}


def fast_rows(items: list[Any], envelope: rules.Envelope, *, forced_type: str | None) -> FastRows:
    """Rows for the messages the fast path can vouch for; the rest flagged."""
    batch_context_plain = envelope.context is None or _plain_context(envelope.context)
    candidates = [
        position
        for position, item in enumerate(items)
        if _candidate(item, forced_type, batch_context_plain)
    ]
    others = set(range(len(items))) - set(candidates)
    if not candidates:
        return FastRows([], EVENTS_SCHEMA.empty_table(), sorted(others))
    columns, odd = _rows([items[p] for p in candidates], envelope, forced_type)
    table = pa.table(
        {
            field.name: columns.get(field.name, pa.nulls(len(candidates), field.type))
            for field in EVENTS_SCHEMA
        },
        schema=EVENTS_SCHEMA,
    )
    keep = ~odd
    positions = [p for p, ok in zip(candidates, keep.tolist(), strict=True) if ok]
    flagged = sorted(
        others | {p for p, ok in zip(candidates, keep.tolist(), strict=True) if not ok}
    )
    return FastRows(positions, table.filter(pa.array(keep)), flagged)
