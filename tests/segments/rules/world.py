"""A small world for the rule language: people, tags, traits, events, consent and segments in
an in-memory DuckDB database, a RuleContext over it, and a brute-force Python evaluation of a
rule over the same rows (the independent reference the compiled query is checked against).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from siyu.segments.rules import (
    And,
    ConsentCondition,
    DateLiteral,
    DidCondition,
    EventCondition,
    FieldCondition,
    FieldInfo,
    Measure,
    Not,
    Op,
    Or,
    Rule,
    SegmentCondition,
    SequenceCondition,
    TagCondition,
    TraitCondition,
    ValueType,
    WhereAnd,
    WhereNot,
    WhereOr,
    Window,
    parse,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 15, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
TODAY = NOW.astimezone(SHANGHAI).date()
RFM = ("重要价值客户", "重要发展客户", "一般价值客户", "流失客户")
CITIES = ("上海", "北京", "杭州", "成都")
INTERESTS = ("美妆", "母婴", "数码", "运动")
EVENT_NAMES = ("order_paid", "add_to_cart", "page_view", "checkout")
CHANNELS = ("wecom", "miniprogram", "store")
AMOUNTS = (None, Decimal("9.90"), Decimal("50.00"), Decimal("128.00"), Decimal("299.50"))
PROPERTIES = (
    None,
    '{"coupon": "spring", "price": "12.5"}',
    '{"coupon": "summer", "price": 30}',
    '{"price": "abc"}',
    '{"coupon": null}',
    "{}",
    '{"coupon": "spring"}',
)

TAG_INFO = {
    "rfm_segment": FieldInfo("rfm_segment", ValueType.ENUM, RFM),
    "is_member": FieldInfo("is_member", ValueType.BOOL),
    "order_count": FieldInfo("order_count", ValueType.NUMBER),
    "ltv": FieldInfo("ltv", ValueType.NUMBER),
    "last_order_date": FieldInfo("last_order_date", ValueType.DATE),
    "interests": FieldInfo("interests", ValueType.LIST),
    "nickname": FieldInfo("nickname", ValueType.STRING),
}
TRAIT_INFO = {
    "city": FieldInfo("city", ValueType.STRING),
    "age": FieldInfo("age", ValueType.NUMBER),
    "vip": FieldInfo("vip", ValueType.BOOL),
}
DYNAMIC_SEGMENTS = {
    "big_spenders": "event(order_paid).sum(amount) >= 200",
    "loyal": "segment.big_spenders and tag.is_member",
    "loyal_or_imported": "segment.loyal or segment.imported_vips",
    "cyc_a": "segment.cyc_b and tag.is_member",
    "cyc_b": "tag.order_count > 1 or segment.cyc_c",
    "cyc_c": "segment.cyc_a",
}
STATIC_SEGMENTS = {"imported_vips": ("p01", "p02", "p02", "p07", "nobody")}


@dataclass
class World:
    people: list[str]
    tags: dict[str, dict[str, Any]]
    traits: dict[str, dict[str, Any]]
    events: list[dict[str, Any]]
    consent: dict[tuple[str, str], bool]
    con: Any = None
    segments: dict[str, Rule] = field(default_factory=dict)


def build_world(seed: int = 7, people: int = 40, events: int = 700) -> World:
    rng = random.Random(seed)
    ids = [f"p{n:02d}" for n in range(people)]
    tags: dict[str, dict[str, Any]] = {}
    for pid in ids:
        if rng.random() < 0.1:
            continue  # no tag row at all
        tags[pid] = {
            "rfm_segment": rng.choice((*RFM, None)),
            "is_member": rng.choice((True, False, None)),
            "order_count": rng.choice((0, 1, 2, 3, 5, None)),
            "ltv": rng.choice((0.0, 99.5, 200.0, 1234.25, None)),
            "last_order_date": rng.choice(
                (date(2026, 1, 31), date(2026, 3, 1), date(2026, 3, 15), None)
            ),
            "interests": rng.choice(
                (None, [], ["美妆"], ["美妆", "母婴"], ["数码", "运动", "美妆"], ["运动"])
            ),
            "nickname": rng.choice(("小王", "O'Brien", "'; drop table tags; --", None)),
        }
    traits: dict[str, dict[str, Any]] = {}
    for pid in ids:
        if rng.random() < 0.1:
            continue
        traits[pid] = {
            "city": rng.choice((*CITIES, None)),
            "age": rng.choice((18, 25, 31, 45, None)),
            "vip": rng.choice((True, False, None)),
        }
    rows: list[dict[str, Any]] = []
    for n in range(events):
        ts = NOW - timedelta(seconds=rng.randrange(0, 50 * 86_400))
        if rng.random() < 0.1:  # just around a local midnight
            day = rng.randrange(0, 50)
            midnight = datetime.combine(TODAY - timedelta(days=day), datetime.min.time(), SHANGHAI)
            ts = midnight.astimezone(UTC) + timedelta(seconds=rng.choice((-1, 0, 1)))
        rows.append(
            {
                "event_id": f"e{n}",
                "person_id": None if rng.random() < 0.05 else rng.choice(ids[: people - 3]),
                "name": rng.choice(EVENT_NAMES),
                "ts": ts,
                "channel": rng.choice((*CHANNELS, None)),
                "amount": rng.choice(AMOUNTS),
                "quantity": rng.choice((None, 1, 2, 3)),
                "category": rng.choice(("美妆", "母婴", None)),
                "properties": rng.choice(PROPERTIES),
            }
        )
    consent: dict[tuple[str, str], bool] = {}
    for pid in ids:
        for channel in ("sms", "wecom"):
            if rng.random() < 0.7:
                consent[(pid, channel)] = rng.random() < 0.6
    world = World(ids, tags, traits, rows, consent)
    world.segments = {key: parse(text) for key, text in DYNAMIC_SEGMENTS.items()}
    world.con = _load(world)
    return world


def _load(world: World) -> Any:
    con = ibis.duckdb.connect()
    con.create_table("people", pa.table({"person_id": pa.array(world.people, pa.string())}))
    tag_ids = list(world.tags)
    con.create_table(
        "tags",
        pa.table(
            {
                "person_id": pa.array(tag_ids, pa.string()),
                "rfm_segment": pa.array([world.tags[p]["rfm_segment"] for p in tag_ids]),
                "is_member": pa.array([world.tags[p]["is_member"] for p in tag_ids], pa.bool_()),
                "order_count": pa.array(
                    [world.tags[p]["order_count"] for p in tag_ids], pa.int64()
                ),
                "ltv": pa.array([world.tags[p]["ltv"] for p in tag_ids], pa.float64()),
                "last_order_date": pa.array(
                    [world.tags[p]["last_order_date"] for p in tag_ids], pa.date32()
                ),
                "interests": pa.array(
                    [world.tags[p]["interests"] for p in tag_ids], pa.list_(pa.string())
                ),
                "nickname": pa.array([world.tags[p]["nickname"] for p in tag_ids], pa.string()),
            }
        ),
    )
    trait_ids = list(world.traits)
    con.create_table(
        "traits",
        pa.table(
            {
                "person_id": pa.array(trait_ids, pa.string()),
                "city": pa.array([world.traits[p]["city"] for p in trait_ids], pa.string()),
                "age": pa.array([world.traits[p]["age"] for p in trait_ids], pa.int64()),
                "vip": pa.array([world.traits[p]["vip"] for p in trait_ids], pa.bool_()),
            }
        ),
    )
    columns: dict[str, pa.Array] = {
        "event_id": pa.array([e["event_id"] for e in world.events], pa.string()),
        "person_id": pa.array([e["person_id"] for e in world.events], pa.string()),
        "name": pa.array([e["name"] for e in world.events], pa.string()),
        "ts": pa.array([e["ts"] for e in world.events], pa.timestamp("us", tz="UTC")),
        "amount": pa.array([e["amount"] for e in world.events], pa.decimal128(18, 2)),
        "quantity": pa.array([e["quantity"] for e in world.events], pa.int32()),
        "properties": pa.array([e["properties"] for e in world.events], pa.string()),
    }
    for name in ("channel", "category"):
        columns[name] = pa.array([e[name] for e in world.events], pa.string())
    for name in ("source", "scene", "utm_source", "utm_medium", "utm_campaign", "currency"):
        columns[name] = pa.array([None] * len(world.events), pa.string())
    for name in ("sku", "order_id"):
        columns[name] = pa.array([None] * len(world.events), pa.string())
    con.create_table("events", pa.table(columns))
    keys = list(world.consent)
    con.create_table(
        "consent",
        pa.table(
            {
                "person_id": pa.array([k[0] for k in keys], pa.string()),
                "channel": pa.array([k[1] for k in keys], pa.string()),
                "granted": pa.array([world.consent[k] for k in keys], pa.bool_()),
            }
        ),
    )
    for key, members in STATIC_SEGMENTS.items():
        con.create_table(key, pa.table({"person_id": pa.array(members, pa.string())}))
    return con


@dataclass
class WorldContext:
    """The RuleContext of a world (what the tag store will provide in production)."""

    world: World
    now: datetime = NOW
    timezone: ZoneInfo = SHANGHAI
    with_consent: bool = True

    def people(self) -> ir.Table:
        return self.world.con.table("people")

    def tag_info(self, key: str) -> FieldInfo | None:
        return TAG_INFO.get(key)

    def tags(self) -> ir.Table:
        return self.world.con.table("tags")

    def trait_info(self, key: str) -> FieldInfo | None:
        return TRAIT_INFO.get(key)

    def traits(self) -> ir.Table:
        return self.world.con.table("traits")

    def events(self) -> ir.Table:
        return self.world.con.table("events")

    def consent(self) -> ir.Table | None:
        return self.world.con.table("consent") if self.with_consent else None

    def segment(self, key: str) -> Rule | ir.Table | None:
        if key in STATIC_SEGMENTS:
            return self.world.con.table(key)
        return self.world.segments.get(key)


# -- the reference: plain Python over the same rows --------------------------------------


def evaluate(rule: Rule, world: World, *, with_consent: bool = True) -> set[str]:
    """The members of ``rule`` in ``world``, computed person by person in Python."""
    return {pid for pid in world.people if _holds(rule, pid, world, with_consent)}


def _holds(rule: Rule, pid: str, world: World, with_consent: bool) -> bool:
    if isinstance(rule, And):
        return all(_holds(r, pid, world, with_consent) for r in rule.and_)
    if isinstance(rule, Or):
        return any(_holds(r, pid, world, with_consent) for r in rule.or_)
    if isinstance(rule, Not):
        return not _holds(rule.not_, pid, world, with_consent)
    if isinstance(rule, TagCondition):
        return _compare(world.tags.get(pid, {}).get(rule.tag), rule.op, rule.value)
    if isinstance(rule, TraitCondition):
        return _compare(world.traits.get(pid, {}).get(rule.trait), rule.op, rule.value)
    if isinstance(rule, ConsentCondition):
        return with_consent and world.consent.get((pid, rule.consent)) is True
    if isinstance(rule, SegmentCondition):
        if rule.segment in STATIC_SEGMENTS:
            return pid in STATIC_SEGMENTS[rule.segment]
        return _holds(world.segments[rule.segment], pid, world, with_consent)
    mine = [e for e in world.events if e["person_id"] == pid]
    if isinstance(rule, DidCondition):
        found = [e for e in mine if _matches(e, rule.event, rule.window, rule.where)]
        return bool(found) == rule.did
    if isinstance(rule, EventCondition):
        found = [e for e in mine if _matches(e, rule.event, rule.window, rule.where)]
        return _compare(_measure(found, rule.measure, rule.of), rule.op, rule.value)
    assert isinstance(rule, SequenceCondition)
    return _sequence(rule, [e for e in mine if _in_window(e["ts"], rule.window)])


def _local(ts: datetime) -> date:
    return ts.astimezone(SHANGHAI).date()


def _in_window(ts: datetime, window: Window | None) -> bool:
    if window is None:
        return True
    if window.last_days is not None:
        return _local(ts) >= TODAY - timedelta(days=window.last_days - 1) and ts <= NOW
    if window.since is not None:
        return _local(ts) >= window.since and ts <= NOW
    assert window.between is not None
    return window.between[0] <= _local(ts) <= window.between[1]


def _matches(event: dict[str, Any], name: str, window: Window | None, where: Any) -> bool:
    return (
        event["name"] == name
        and _in_window(event["ts"], window)
        and (where is None or _where(where, event))
    )


def _where(where: Any, event: dict[str, Any]) -> bool:
    if isinstance(where, WhereAnd):
        return all(_where(w, event) for w in where.and_)
    if isinstance(where, WhereOr):
        return any(_where(w, event) for w in where.or_)
    if isinstance(where, WhereNot):
        return not _where(where.not_, event)
    assert isinstance(where, FieldCondition)
    if where.field.startswith("properties."):
        key = where.field.removeprefix("properties.")
        values = where.value if isinstance(where.value, tuple) else (where.value,)
        numeric = any(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        raw = json.loads(event["properties"]).get(key) if event["properties"] else None
        if where.op in (Op.IS_NULL, Op.IS_NOT_NULL):
            present = isinstance(raw, str | int | float) and not isinstance(raw, bool)
            return present == (where.op is Op.IS_NOT_NULL)
        return _compare(_number(raw) if numeric else _string(raw), where.op, where.value)
    return _compare(event.get(where.field), where.op, where.value)


def _string(raw: Any) -> str | None:
    return raw if isinstance(raw, str) else None


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            return None
    return None


def _measure(events: list[dict[str, Any]], measure: Measure, of: str | None) -> Any:
    if measure is Measure.COUNT:
        return len(events)
    if measure is Measure.DAYS:
        return len({_local(e["ts"]) for e in events})
    assert of is not None
    if of.startswith("properties."):
        key = of.removeprefix("properties.")
        raw = [json.loads(e["properties"]).get(key) if e["properties"] else None for e in events]
        values: list[Any] = [v for v in (_number(r) for r in raw) if v is not None]
    else:
        values = [e[of] for e in events if e[of] is not None]
    if measure is Measure.SUM:
        return sum(values) if values else 0
    if not values:
        return None
    if measure is Measure.AVG:
        return sum(values) / len(values)
    return max(values) if measure is Measure.MAX else min(values)


def _compare(actual: Any, op: Op, value: Any) -> bool:
    if op is Op.IS_NULL:
        return actual is None
    if op is Op.IS_NOT_NULL:
        return actual is not None
    if actual is None:
        return False
    if isinstance(actual, Decimal):
        actual = float(actual)  # as engines compare a decimal column with a number

    def lit(v: Any) -> Any:
        return v.date if isinstance(v, DateLiteral) else v

    if op is Op.CONTAINS:
        return lit(value) in actual
    if op is Op.CONTAINS_ANY:
        return any(lit(v) in actual for v in value)
    if op is Op.CONTAINS_ALL:
        return all(lit(v) in actual for v in value)
    if op is Op.IN:
        return actual in [lit(v) for v in value]
    if op is Op.NOT_IN:
        return actual not in [lit(v) for v in value]
    if op is Op.BETWEEN:
        return bool(lit(value[0]) <= actual <= lit(value[1]))
    other = lit(value)
    return {
        Op.EQ: actual == other,
        Op.NE: actual != other,
        Op.GT: actual > other,
        Op.GE: actual >= other,
        Op.LT: actual < other,
        Op.LE: actual <= other,
    }[op]


def _sequence(rule: SequenceCondition, events: list[dict[str, Any]]) -> bool:
    limit = timedelta(days=rule.within_days)

    def extend(chosen: list[dict[str, Any]]) -> bool:
        if len(chosen) == len(rule.sequence):
            return True
        step = rule.sequence[len(chosen)]
        for event in events:
            if event["name"] != step or any(event is c for c in chosen):
                continue
            if chosen and (event["ts"] < chosen[-1]["ts"] or event["ts"] - chosen[0]["ts"] > limit):
                continue
            if extend([*chosen, event]):
                return True
        return False

    return extend([])
