"""Synthetic event batches built with numpy and pyarrow alone, fast enough to make millions
of rows in seconds: the realistic-looking input of the append benchmark and the "random
data" baseline of the generator benchmark.

They look like real traffic where it matters to the engine: event ids of three client
styles and lengths, a skewed mix of event names, Chinese JSON properties (a shared part
from a pool plus a per-row number), identifiers on a few rows, and order columns with
decimal amounts on order rows only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from siyu.events import CHANNELS, EVENTS_SCHEMA
from siyu.events.schema import MONEY, TIMESTAMP

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)

# Name, share of traffic, is an order row.
_NAMES: tuple[tuple[str, float, bool], ...] = (
    ("page_view", 0.34, False),
    ("product_view", 0.22, False),
    ("login", 0.07, False),
    ("search", 0.06, False),
    ("add_to_cart", 0.06, True),
    ("message_delivered", 0.05, False),
    ("message_opened", 0.03, False),
    ("share", 0.03, False),
    ("checkin", 0.03, False),
    ("checkout", 0.025, True),
    ("order_paid", 0.02, True),
    ("coupon_claim", 0.015, False),
    ("wecom_add_contact", 0.01, False),
    ("identify", 0.01, False),
    ("review", 0.008, False),
    ("refund", 0.002, True),
    ("register", 0.008, False),
)
_PRODUCTS = (
    "玫瑰精华面霜 50ml",
    "烟酰胺亮肤精华液",
    "氨基酸洁面乳",
    "山茶花护手霜礼盒",
    "雪松木质调香水 100ml",
    "控油蓬松洗发水",
    "婴儿润肤乳",
    "丝绒哑光口红 #305",
    "防晒隔离霜 SPF50+",
    "积雪草舒缓面膜 10片装",
)
_CATEGORIES = ("护肤", "彩妆", "香氛", "个护", "母婴")
_CITIES = ("上海", "北京", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "重庆")
_PAGES = ("首页", "商品详情", "购物车", "会员中心", "积分商城", "活动页·双11", "门店导航")
_KEYWORDS = ("面霜", "精华", "口红 色号", "防晒", "礼盒 送女友", "敏感肌", "香水 小样")
_CAMPAIGNS = ("双11预热", "618大促", "会员日", "新品首发", "春节礼遇", "三八女神节")
_SOURCES = ("wechat", "moments", "qr_store", "sms", "email", "douyin", "search")
_SCENES = ("1001", "1007", "1011", "1036", "1047", "1089")
_MEDIUMS = ("social", "cpc", "qr", "push", "newsletter")


def _hex_chars(rng: np.random.Generator, rows: int, digits: int) -> npt.NDArray[np.uint8]:
    return _HEX[rng.integers(0, 16, size=(rows, digits), dtype=np.uint8)]


def _digit_chars(values: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.uint8]:
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    chars: npt.NDArray[np.uint8] = _DIGITS[(values[:, None] // powers) % 10]
    return chars


def _fixed_width_strings(chars: npt.NDArray[np.uint8]) -> pa.StringArray:
    """Rows of a 2-D uint8 array → a string array, without a Python object per row."""
    rows, width = chars.shape
    offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(chars).tobytes()
    return pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(data))


def _prefixed(prefix: bytes, chars: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    head = np.broadcast_to(np.frombuffer(prefix, dtype=np.uint8), (chars.shape[0], len(prefix)))
    return np.hstack([head, chars])


def event_ids(rng: np.random.Generator, rows: int) -> pa.Array:
    """Unique ids in three client styles: UUID (36 chars), ``wx-`` + 24 hex, and
    ``mp_<ms timestamp>_<6 digits>`` (23 chars), interleaved."""
    style = rng.choice(3, size=rows, p=[0.6, 0.25, 0.15])
    uuid_rows, wx_rows, mp_rows = (int((style == k).sum()) for k in range(3))
    hexes = _hex_chars(rng, uuid_rows, 32)
    dash = np.full((uuid_rows, 1), ord("-"), dtype=np.uint8)
    uuid = np.hstack(
        [
            hexes[:, :8],
            dash,
            hexes[:, 8:12],
            dash,
            hexes[:, 12:16],
            dash,
            hexes[:, 16:20],
            dash,
            hexes[:, 20:],
        ]
    )
    wx = _prefixed(b"wx-", _hex_chars(rng, wx_rows, 24))
    millis = rng.integers(1_700_000_000_000, 1_800_000_000_000, size=mp_rows, dtype=np.int64)
    counter = rng.integers(0, 1_000_000, size=mp_rows, dtype=np.int64)
    mp = _prefixed(
        b"mp_",
        np.hstack(
            [
                _digit_chars(millis, 13),
                np.full((mp_rows, 1), ord("_"), np.uint8),
                _digit_chars(counter, 6),
            ]
        ),
    )
    parts = pa.chunked_array(
        [_fixed_width_strings(uuid), _fixed_width_strings(wx), _fixed_width_strings(mp)]
    )
    starts = np.cumsum([0, uuid_rows, wx_rows])
    order = np.empty(rows, dtype=np.int64)
    for kind in range(3):
        where = np.flatnonzero(style == kind)
        order[where] = starts[kind] + np.arange(len(where))
    return parts.take(pa.array(order)).combine_chunks()


def _choice(
    rng: np.random.Generator, values: tuple[str, ...], rows: int, p: list[float] | None = None
) -> pa.Array:
    indices = pa.array(rng.choice(len(values), size=rows, p=p).astype(np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array(values)).dictionary_decode()


def _with_nulls(array: pa.Array, present: npt.NDArray[np.bool_]) -> pa.Array:
    return pc.if_else(pa.array(present), array, pa.scalar(None, array.type))


def _numbers(rng: np.random.Generator, low: int, high: int, rows: int) -> pa.Array:
    return pa.array(rng.integers(low, high, size=rows, dtype=np.int64)).cast(pa.string())


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _property_pool(rng: np.random.Generator, size: int) -> pa.Array:
    """Shared JSON bodies (without the closing brace) that rows pick from."""
    bodies = []
    for _ in range(size):
        body = {
            "page": _PAGES[rng.integers(len(_PAGES))],
            "city": _CITIES[rng.integers(len(_CITIES))],
            "product": _PRODUCTS[rng.integers(len(_PRODUCTS))],
            "price": round(float(rng.integers(1900, 129900)) / 100, 2),
        }
        if rng.random() < 0.3:
            body["keyword"] = _KEYWORDS[rng.integers(len(_KEYWORDS))]
        if rng.random() < 0.2:
            body["campaign"] = _CAMPAIGNS[rng.integers(len(_CAMPAIGNS))]
        bodies.append(json.dumps(body, ensure_ascii=False)[:-1] + ', "duration_ms": ')
    return pa.array(bodies)


def _money(cents: npt.NDArray[np.int64], present: npt.NDArray[np.bool_]) -> pa.Array:
    """decimal128(18, 2) from integer cents, built from its 16-byte little-endian words."""
    words = np.zeros((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    validity = pa.array(present).buffers()[1]
    return pa.Array.from_buffers(MONEY, len(cents), [validity, pa.py_buffer(words.tobytes())])


def synthetic_events(rows: int, *, seed: int, start_us: int = 1_732_000_000_000_000) -> pa.Table:
    """``rows`` events conformed to :data:`EVENTS_SCHEMA`, spread over a year from ``start_us``."""
    rng = np.random.default_rng(seed)
    names, shares, is_order_name = zip(*_NAMES, strict=True)
    p = np.asarray(shares) / np.sum(shares)
    name_index = rng.choice(len(names), size=rows, p=p)
    is_order = np.asarray(is_order_name)[name_index]
    name = pa.DictionaryArray.from_arrays(
        pa.array(name_index.astype(np.int32)), pa.array(names)
    ).dictionary_decode()

    ts_us = start_us + np.sort(rng.integers(0, 365 * 86_400_000_000, size=rows, dtype=np.int64))
    received_us = ts_us + rng.integers(50_000, 5_000_000, size=rows, dtype=np.int64)

    known = rng.random(rows) < 0.7
    user_id = _with_nulls(
        pc.if_else(
            pa.array(rng.random(rows) < 0.6),
            _join("phone:1", _numbers(rng, 3_000_000_000, 9_999_999_999, rows)),
            _join("member_no:M", _numbers(rng, 10_000_000, 99_999_999, rows)),
        ),
        known,
    )
    anonymous_id = _with_nulls(
        _fixed_width_strings(_prefixed(b"anon-", _hex_chars(rng, rows, 16))), rng.random(rows) < 0.5
    )
    identify = np.asarray(name.to_numpy(zero_copy_only=False) == "identify")
    identifiers = _with_nulls(
        _join(
            '{"openid": "o',
            _fixed_width_strings(_hex_chars(rng, rows, 27)),
            '", "phone": "1',
            _numbers(rng, 3_000_000_000, 9_999_999_999, rows),
            '"}',
        ),
        identify,
    )
    pool = _property_pool(rng, 5000)
    properties = _join(
        pool.take(pa.array(rng.integers(0, len(pool), size=rows))),
        _numbers(rng, 5, 600_000, rows),
        "}",
    )

    order_id = _with_nulls(_join("SO", _numbers(rng, 10**11, 10**12 - 1, rows)), is_order)
    cents = rng.lognormal(mean=9.6, sigma=0.8, size=rows).astype(np.int64) + 990
    columns: dict[str, pa.Array] = {
        "event_id": event_ids(rng, rows),
        "name": name,
        "ts": pa.array(ts_us, type=pa.int64()).cast(TIMESTAMP),
        "received_at": pa.array(received_us, type=pa.int64()).cast(TIMESTAMP),
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "identifiers": identifiers,
        "channel": _choice(rng, CHANNELS, rows, p=[0.3, 0.3, 0.1, 0.1, 0.05, 0.05, 0.08, 0.02]),
        "source": _with_nulls(_choice(rng, _SOURCES, rows), rng.random(rows) < 0.6),
        "scene": _with_nulls(_choice(rng, _SCENES, rows), rng.random(rows) < 0.3),
        "utm_source": _with_nulls(_choice(rng, _SOURCES, rows), rng.random(rows) < 0.2),
        "utm_medium": _with_nulls(_choice(rng, _MEDIUMS, rows), rng.random(rows) < 0.2),
        "utm_campaign": _with_nulls(_choice(rng, _CAMPAIGNS, rows), rng.random(rows) < 0.2),
        "properties": properties,
        "order_id": order_id,
        "amount": _money(cents, is_order),
        "currency": _with_nulls(pa.repeat(pa.scalar("CNY"), rows), is_order),
        "sku": _with_nulls(_join("SKU-", _numbers(rng, 10_000, 99_999, rows)), is_order),
        "category": _with_nulls(_choice(rng, _CATEGORIES, rows), is_order),
        "quantity": pa.array(rng.integers(1, 6, size=rows).astype(np.int32), mask=~is_order),
    }
    return pa.Table.from_arrays(
        [columns[field.name] for field in EVENTS_SCHEMA], schema=EVENTS_SCHEMA
    )


def synthetic_batches(batches: int, rows: int, *, seed: int) -> Iterator[pa.Table]:
    """``batches`` tables of ``rows`` events each, every one with its own seed and time span."""
    for index in range(batches):
        yield synthetic_events(rows, seed=seed * 100_003 + index)
