"""Column conversions with Arrow kernels (and DuckDB for time zones, JSON checks and hashes).

Each converter takes a whole column and returns the converted column together with masks of
the rows it had to refuse, so a batch is validated set-at-a-time: no Python loop per row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from siyu.events.schema import MONEY, TIMESTAMP

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)

Column: TypeAlias = pa.Array | pa.ChunkedArray


def array(values: Column) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def nulls_as_false(mask: Column) -> pa.Array:
    return array(pc.fill_null(mask, False))


def text(values: Column, *, trim: bool = True) -> pa.Array:
    """Any column as text: numbers and booleans spelled out; blank cells become null."""
    values = array(values)
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    elif pa.types.is_boolean(values.type):
        values = pc.if_else(values, "true", "false")
    elif pa.types.is_timestamp(values.type):
        values = pc.strftime(values, format="%Y-%m-%dT%H:%M:%S")
    elif not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    if trim:
        values = pc.utf8_trim_whitespace(values)
    return blank_as_null(array(values))


def blank_as_null(values: pa.Array) -> pa.Array:
    """Empty strings as null; the column itself when it has none (the usual case)."""
    # Byte lengths come from the offsets alone; comparing the strings with "" is ~100x slower.
    lengths = pc.binary_length(values)
    shortest = pc.min(lengths).as_py()
    if shortest is None or shortest > 0:
        return values
    return array(pc.if_else(pc.equal(lengths, 0), pa.scalar(None, values.type), values))


def is_text(values: Column) -> bool:
    kind = values.type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def present(values: Column) -> pa.Array:
    """Rows holding a value: not null and, for text, not blank once trimmed. Typed columns
    (timestamps, numbers) need no conversion to tell."""
    if is_text(values):
        return array(pc.is_valid(text(values)))
    return array(pc.is_valid(array(values)))


def longer_than(values: pa.Array, limit: int) -> pa.Array | None:
    """Rows of more than ``limit`` characters; None when no row can be (no byte count
    exceeds the limit, and a character is at least one byte), which skips the UTF-8 pass."""
    longest = pc.max(pc.binary_length(values)).as_py()
    if longest is None or longest <= limit:
        return None
    return array(pc.greater(pc.utf8_length(values), limit))


def bad(mask: Column) -> pa.Array:
    return nulls_as_false(mask)


# -- identifiers -----------------------------------------------------------------------------

# The same shapes the tracking API accepts (siyu.collect.messages), checked column-wise.
_PHONE = r"^\+?[0-9][0-9 ()-]{4,24}$"
_FIVE_DIGITS = r"(?:\D*\d){5}"
_EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,63}$"


def phone(values: Column) -> tuple[pa.Array, pa.Array]:
    """Phones as sent (trimmed), refused unless digits with ``+``, spaces, ``()`` or ``-``
    and at least five digits. Returns (values, invalid mask)."""
    cleaned = text(values)
    valid = pc.and_(
        pc.match_substring_regex(cleaned, _PHONE), pc.match_substring_regex(cleaned, _FIVE_DIGITS)
    )
    return _keep_valid(cleaned, valid)


def email(values: Column) -> tuple[pa.Array, pa.Array]:
    cleaned = text(values)
    return _keep_valid(cleaned, pc.match_substring_regex(cleaned, _EMAIL))


def pattern(values: Column, regex: str) -> tuple[pa.Array, pa.Array]:
    cleaned = text(values)
    return _keep_valid(cleaned, pc.match_substring_regex(cleaned, regex))


def _keep_valid(cleaned: pa.Array, valid: Column) -> tuple[pa.Array, pa.Array]:
    invalid = bad(pc.and_(pc.is_valid(cleaned), pc.invert(valid)))
    return array(pc.if_else(valid, cleaned, pa.scalar(None, pa.string()))), invalid


# -- numbers ---------------------------------------------------------------------------------

_AMOUNT = r"^-?\d{1,18}(\.\d{1,12})?$"
_WIDE = pa.decimal128(38, 12)
_LIMIT = 10**16


@dataclass(frozen=True)
class Amounts:
    values: pa.Array  # DECIMAL(18,2), null where refused
    invalid: pa.Array  # not a number, NaN, infinite, or 10^16 and more
    negative: pa.Array


def amount(values: Column) -> Amounts:
    """Exact DECIMAL(18,2) money, rounded half up to the cent like the API: text such as
    ``1,299.00`` or ``¥59.9``, integers, decimals, and floats read by their shortest spelling
    (19.99, not 19.989999…)."""
    values = array(values)
    kind = values.type
    if kind == MONEY:  # already exact cents, always below 10^16: nothing to round or refuse
        return _amounts(values, present(values), pa.repeat(False, len(values)))
    if pa.types.is_decimal(kind):
        wide = values.cast(_WIDE, safe=False)
    else:
        cleaned = pc.replace_substring_regex(text(values), r"[,\s¥￥]|^CNY|^RMB", "")
        valid = pc.match_substring_regex(cleaned, _AMOUNT)
        wide = pc.if_else(valid, cleaned, pa.scalar(None, pa.string())).cast(_WIDE)
    within = pc.less(pc.abs(wide), pa.scalar(_LIMIT, _WIDE))
    kept = pc.if_else(within, wide, pa.scalar(None, _WIDE))
    rounded = pc.round(kept, 2, round_mode="half_up").cast(MONEY, safe=False)
    return _amounts(rounded, present(values), pc.invert(pc.fill_null(within, False)))


def _amounts(values: pa.Array, given: Column, refused: Column) -> Amounts:
    negative = bad(pc.less(values, pa.scalar(0, MONEY)))
    invalid = bad(pc.and_(given, refused))
    kept = pc.if_else(negative, pa.scalar(None, MONEY), values)
    return Amounts(array(kept), invalid, negative)


def quantity(values: Column) -> tuple[pa.Array, pa.Array]:
    """A whole, non-negative count as int32; returns (values, invalid mask)."""
    values = array(values)
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        numbers = values.cast(pa.float64())
        valid = pc.and_(
            pc.and_(pc.is_finite(numbers), pc.equal(pc.floor(numbers), numbers)),
            pc.and_(pc.greater_equal(numbers, 0), pc.less(numbers, 2**31)),
        )
        kept = pc.if_else(valid, numbers, pa.scalar(None, pa.float64())).cast(pa.int32())
        return array(kept), bad(pc.and_(pc.is_valid(values), pc.invert(valid)))
    cleaned = text(values)
    valid = pc.match_substring_regex(cleaned, r"^\d{1,9}(\.0+)?$")
    digits = pc.replace_substring_regex(cleaned, r"\.0+$", "")
    kept = pc.if_else(valid, digits, pa.scalar(None, pa.string())).cast(pa.int32())
    return array(kept), bad(pc.and_(pc.is_valid(cleaned), pc.invert(valid)))


# -- JSON ------------------------------------------------------------------------------------


def json_escape(values: pa.Array) -> pa.Array:
    """Escape backslashes, quotes and control characters for a JSON string."""
    escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    if pc.any(pc.match_substring_regex(escaped, "[\\x00-\\x1f]")).as_py():
        for code in range(0x20):
            escaped = pc.replace_substring(escaped, chr(code), f"\\u{code:04x}")
    return array(escaped)


def json_value(values: Column) -> pa.Array:
    """Each value as JSON text (numbers and booleans bare, the rest quoted), null for null."""
    values = array(values)
    kind = values.type
    if pa.types.is_integer(kind) or pa.types.is_decimal(kind):
        return array(values.cast(pa.string()))
    if pa.types.is_floating(kind):
        finite = pc.if_else(pc.is_finite(values), values, pa.scalar(None, kind))
        return array(finite.cast(pa.string()))
    if pa.types.is_boolean(kind):
        return array(pc.if_else(values, "true", "false"))
    quoted = pc.binary_join_element_wise('"', json_escape(text(values, trim=False)), '"', "")
    return array(quoted)


def json_object(columns: dict[str, Column], rows: int) -> pa.Array:
    """Element-wise JSON objects of ``columns`` (keys sorted), null members left out; a row
    with no member gives null."""
    fragments: list[pa.Array] = []
    for key in sorted(columns):
        member = pc.binary_join_element_wise(
            "," + json.dumps(key, ensure_ascii=False) + ":", json_value(columns[key]), ""
        )
        fragments.append(array(pc.fill_null(member, "")))
    if not fragments:
        return pa.nulls(rows, pa.string())
    joined = pc.binary_join_element_wise(*fragments, "") if len(fragments) > 1 else fragments[0]
    wrapped = pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(joined, 1), "}", "")
    return array(pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), wrapped))


# -- DuckDB helpers --------------------------------------------------------------------------


# TRY(json_type(…)) is null for text that is not JSON: one parse tells both cases.
_NOT_OBJECTS = "SELECT v IS NOT NULL AND NOT coalesce(TRY(json_type(v)) = 'OBJECT', false) FROM __v"
_COUNT_NOT_OBJECTS = (
    "SELECT count(*) FILTER (WHERE v IS NOT NULL "
    "AND NOT coalesce(TRY(json_type(v)) = 'OBJECT', false)) FROM __v"
)


class Engine:
    """An in-memory DuckDB of one import: time-zone-aware timestamp parsing in the brand's
    zone (SIYU_TIMEZONE), JSON validity checks and SHA-256, column at a time."""

    def __init__(self, timezone: str) -> None:
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET TimeZone = ?", [timezone])
        self._con.execute("SET enable_progress_bar = false")

    def close(self) -> None:
        self._con.close()

    def _one(self, sql: str, values: pa.Array) -> pa.Array:
        self._con.register("__v", pa.table({"v": values}))
        try:
            result = self._con.execute(sql).arrow().read_all()
        finally:
            self._con.unregister("__v")
        return array(result.column(0))

    def timestamps(self, values: Column) -> pa.Array:
        """UTC timestamps from ISO text (with or without offset; none means SIYU_TIMEZONE),
        ``YYYY-MM-DD HH:MM[:SS]``, ``YYYY/MM/DD …``, epoch seconds or milliseconds (text or
        number), or typed timestamps (naive ones in SIYU_TIMEZONE). Null where unparseable."""
        values = array(values)
        kind = values.type
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            return array(values.cast(TIMESTAMP, safe=False))
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            parsed = self._one("SELECT CAST(v AS TIMESTAMPTZ) FROM __v", values)
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
            parsed = self._one(
                "SELECT CASE WHEN abs(v) >= 1e11 THEN to_timestamp(v / 1000.0) "
                "WHEN isfinite(v) THEN to_timestamp(v) END FROM __v",
                values.cast(pa.float64()),
            )
        else:
            parsed = self._one(
                "SELECT CASE "
                "WHEN regexp_full_match(v, '\\d{9,10}(\\.\\d+)?') "
                "THEN to_timestamp(CAST(v AS DOUBLE)) "
                "WHEN regexp_full_match(v, '\\d{12,13}') "
                "THEN to_timestamp(CAST(v AS BIGINT) / 1000.0) "
                "ELSE TRY_CAST(replace(v, '/', '-') AS TIMESTAMPTZ) END FROM __v",
                text(values),
            )
        return array(parsed.cast(TIMESTAMP))

    def json_objects_invalid(self, values: pa.Array) -> pa.Array | None:
        """Rows whose text is not a JSON object; None when every row is one (or null).

        One pass counts the bad rows; only a batch that has some pays for the mask."""
        self._con.register("__v", pa.table({"v": values}))
        try:
            row = self._con.execute(_COUNT_NOT_OBJECTS).fetchone()
            if not row or not row[0]:
                return None
            result = self._con.execute(_NOT_OBJECTS).arrow().read_all()
        finally:
            self._con.unregister("__v")
        return nulls_as_false(result.column(0))

    def sha256(self, values: pa.Array) -> pa.Array:
        return self._one("SELECT sha256(v) FROM __v", values)


def out_of_range(ts: pa.Array, now: datetime) -> pa.Array:
    """Timestamps the API refuses too: before 2000-01-01, or more than a day ahead."""
    early = pc.less(ts, pa.scalar(EARLIEST, TIMESTAMP))
    late = pc.greater(ts, pa.scalar(now + FUTURE_SLACK, TIMESTAMP))
    return bad(pc.or_(early, late))
