"""Columnar building blocks for the generator: fragments of events and vectorised helpers.

Nothing here loops over people or events in Python; every step is a numpy or Arrow kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from siyu.demo.reference import HOURLY_PROFILE, WEEKDAY_PROFILE

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# Which of a person's identifiers an event carries as user_id.
KEY_NONE, KEY_OPENID, KEY_WECOM, KEY_MEMBER, KEY_PHONE, KEY_EMAIL = range(6)
KEY_TYPES = ("", "openid", "wecom_external_userid", "member_no", "phone", "email")

_HOUR_CDF = np.cumsum(HOURLY_PROFILE) / HOURLY_PROFILE.sum()
_ALNUM = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-", dtype=np.uint8
)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


@dataclass
class Fragment:
    """A block of events of one family: who, when (days since window start, local), what, where."""

    pid: IntArray
    t: FloatArray
    name: str
    channel: str | pa.Array
    key: int | IntArray
    columns: dict[str, pa.Array] = field(default_factory=dict)
    web: BoolArray | None = None  # rows that also carry the person's device id as anonymous_id

    def __len__(self) -> int:
        return len(self.pid)


def time_of_day(rng: np.random.Generator, days: FloatArray) -> FloatArray:
    """Put each event on its day at a realistic local time (lunch and evening peaks)."""
    hours = np.searchsorted(_HOUR_CDF, rng.random(len(days)))
    return np.floor(days) + (hours + rng.random(len(days))) / 24.0


def weekday_thin(rng: np.random.Generator, days: FloatArray, weekday_of_start: int) -> BoolArray:
    """Keep events with the weekly rhythm (weekends busier): a mask to apply."""
    weekday = (np.floor(days).astype(np.int64) + weekday_of_start) % 7
    keep: BoolArray = rng.random(len(days)) < WEEKDAY_PROFILE[weekday] / WEEKDAY_PROFILE.max()
    return keep


def tokens(
    rng: np.random.Generator, n: int, length: int, prefix: str, alphabet: str = "alnum"
) -> pa.Array:
    """``n`` random identifiers like ``oA3fK…`` (WeChat openid style)."""
    chars = _ALNUM if alphabet == "alnum" else _HEX
    picks = chars[rng.integers(0, len(chars), size=(n, length))]
    body = pa.array(picks.view(f"S{length}").ravel()).cast(pa.string())
    return pc.binary_join_element_wise(prefix, body, "")


def digits(values: IntArray, width: int) -> pa.Array:
    """Integers as zero-padded decimal strings."""
    return pc.utf8_lpad(pa.array(values).cast(pa.string()), width=width, padding="0")


def join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise string concatenation (arrays and constants), null if any part is null."""
    return pc.binary_join_element_wise(*parts, "")


def take(values: pa.Array, indices: IntArray) -> pa.Array:
    return values.take(pa.array(indices))


def pick(rng: np.random.Generator, weights: FloatArray, n: int) -> IntArray:
    return rng.choice(len(weights), size=n, p=weights / weights.sum())


def repeat_index(counts: IntArray) -> IntArray:
    """[2, 0, 3] → [0, 0, 2, 2, 2]: the owner of each of ``counts.sum()`` items."""
    return np.repeat(np.arange(len(counts)), counts)


def rank_within(groups: IntArray, order: FloatArray) -> IntArray:
    """1-based rank of each item inside its group by ``order`` (stable)."""
    idx = np.lexsort((order, groups))
    sorted_groups = groups[idx]
    starts = np.r_[0, np.flatnonzero(sorted_groups[1:] != sorted_groups[:-1]) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
    ranks = np.empty(len(groups), dtype=np.int64)
    ranks[idx] = np.arange(len(groups)) - run_start + 1
    return ranks


def money(cents: IntArray) -> pa.Array:
    """Cents → exact DECIMAL(18,2) yuan."""
    return pa.array(cents / 100.0).cast(pa.decimal128(18, 2))


def _json_escape(text: pa.Array) -> pa.Array:
    """Escape backslashes, quotes and control characters for a JSON string."""
    escaped = pc.replace_substring(pc.replace_substring(text, "\\", "\\\\"), '"', '\\"')
    if pc.any(pc.match_substring_regex(escaped, "[\\x00-\\x1f]")).as_py():
        for code in range(0x20):
            escaped = pc.replace_substring(escaped, chr(code), f"\\u{code:04x}")
    return escaped


def json_object(**fields: pa.Array | str) -> pa.Array:
    """Element-wise JSON objects ``{"key": value, …}`` built with Arrow kernels.

    String values are quoted and escaped; integer arrays are written as numbers. A row with a
    null value yields a null object (use :func:`pyarrow.compute.if_else` for optional keys).
    """
    parts: list[pa.Array | str] = []
    for position, (key, value) in enumerate(fields.items()):
        separator = "," if position else "{"
        if isinstance(value, pa.Array) and pa.types.is_integer(value.type):
            parts += [f'{separator}"{key}":', value.cast(pa.string())]
        else:
            text = pa.array([value]) if isinstance(value, str) else value
            escaped = _json_escape(text)
            if isinstance(value, str):
                parts += [f'{separator}"{key}":"{escaped[0].as_py()}"']
            else:
                parts += [f'{separator}"{key}":"', escaped, '"']
    parts.append("}")
    return join(*parts)
