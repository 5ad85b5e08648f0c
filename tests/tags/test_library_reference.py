"""Built-in tags against a brute-force reference computed here, in plain Python.

The reference re-states each tag's meaning with loops over the fixture rows (no Ibis, no SQL,
nothing from the compiler), then every person's value is compared with what a full refresh
wrote to ``tag_values``.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.events import EventStore, open_event_store
from siyu.store import Database, open_database
from siyu.store.migrate import upgrade
from siyu.tags import service
from tests.tags.fixtures import AS_OF, CATEGORIES, CHANNELS, TODAY, TZ, World, build_world

ACTIVE = {
    "login", "page_view", "product_view", "search", "add_to_cart", "checkout", "order_paid",
    "review", "share", "checkin", "coupon_claim", "coupon_use", "message_clicked",
    "wecom_add_contact", "group_join", "register",
}  # fmt: skip
PROVINCE = {"上海": "上海市", "杭州": "浙江省", "昆明": "云南省"}
CITY_TIER = {"上海": "一线", "杭州": "新一线", "昆明": "二线"}
AGE_BANDS = (
    [18, 25, 30, 35, 40, 50],
    ["18岁以下", "18-24岁", "25-29岁", "30-34岁", "35-39岁", "40-49岁", "50岁及以上"],
)


# -- the reference ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    event_id: str
    name: str
    ts: datetime
    amount: float | None
    category: str | None
    sku: str | None
    quantity: int | None
    channel: str | None
    props: dict[str, Any]

    @property
    def day(self) -> date:
        return self.ts.astimezone(TZ).date()

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.ts, self.event_id)

    def prop(self, key: str) -> str | None:
        """A JSON property as text, whatever its JSON type (absent or null: None)."""
        value = self.props.get(key)
        if value is None or isinstance(value, dict | list):
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def number(self, key: str) -> float | None:
        text = self.prop(key)
        try:
            return None if text is None else float(text)
        except ValueError:
            return None


def resolve(world: World) -> dict[str, list[Event]]:
    """Each person's events up to the refresh instant, through every key they own."""
    by_person: dict[str, list[Event]] = {p: [] for p in world.people}
    for row in world.rows:
        person = world.identity_map.get(row["user_id"] or "")
        if person is None and row["anonymous_id"] is not None:
            person = world.identity_map.get(f"anonymous_id:{row['anonymous_id']}")
        if person is None or row["ts"] > AS_OF:
            continue
        by_person[person].append(
            Event(
                event_id=row["event_id"],
                name=row["name"],
                ts=row["ts"],
                amount=None if row["amount"] is None else float(row["amount"]),
                category=row["category"],
                sku=row["sku"],
                quantity=row["quantity"],
                channel=row["channel"],
                props=json.loads(row["properties"]) if row["properties"] else {},
            )
        )
    return by_person


def within(days: int | None) -> Callable[[Event], bool]:
    """Events on the last ``days`` local days, today included."""
    return lambda e: days is None or e.day >= TODAY - timedelta(days=days - 1)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def first_value(events: list[Event], get: Callable[[Event], Any], *, last: bool = False) -> Any:
    having = [e for e in events if get(e) is not None]
    if not having:
        return None
    pick = max if last else min
    return get(pick(having, key=lambda e: e.order))


def top(events: list[Event], get: Callable[[Event], str | None], k: int) -> list[str] | None:
    """Most frequent values; ties: the more recent, then the smaller value."""
    counts: Counter[str] = Counter()
    latest: dict[str, datetime] = {}
    for e in events:
        value = get(e)
        if value is not None:
            counts[value] += 1
            latest[value] = max(latest.get(value, e.ts), e.ts)
    if not counts:
        return None
    ranked = sorted(counts, key=lambda v: (-counts[v], -latest[v].timestamp(), v))
    return ranked[:k]


def ntile(values: dict[str, float | None], tiles: int, *, desc: bool = False) -> dict[str, int]:
    """SQL NTILE over (value, person id); people without a value are left out."""
    present = [(v, p) for p, v in values.items() if v is not None]
    present.sort(key=lambda item: ((-item[0] if desc else item[0]), item[1]))
    base, extra = divmod(len(present), tiles)
    scores: dict[str, int] = {}
    position = 0
    for tile in range(1, tiles + 1):
        size = base + (1 if tile <= extra else 0)
        for _, person in present[position : position + size]:
            scores[person] = tile
        position += size
    return scores


# SQL's three-valued logic for the formula tags (None is unknown).
def gt(a: Any, b: Any) -> bool | None:
    return None if a is None or b is None else a > b


def ge(a: Any, b: Any) -> bool | None:
    return None if a is None or b is None else a >= b


def le(a: Any, b: Any) -> bool | None:
    return None if a is None or b is None else a <= b


def and3(*items: bool | None) -> bool | None:
    if any(i is False for i in items):
        return False
    return None if any(i is None for i in items) else True


def or3(*items: bool | None) -> bool | None:
    if any(i is True for i in items):
        return True
    return None if any(i is None for i in items) else False


def person_reference(events: list[Event]) -> dict[str, Any]:
    """Every checked person-level tag of one person."""
    r: dict[str, Any] = {}
    orders = [e for e in events if e.name == "order_paid"]
    refunds = [e for e in events if e.name == "refund"]
    active = [e for e in events if e.name in ACTIVE]

    def amount(items: list[Event]) -> float:
        return sum(e.amount for e in items if e.amount is not None)

    for w in (7, 30, 90, 180, 365):
        o = [e for e in orders if within(w)(e)]
        f = [e for e in refunds if within(w)(e)]
        r[f"orders_count_{w}d"] = len(o)
        r[f"orders_amount_{w}d"] = amount(o)
        r[f"refunds_count_{w}d"] = len(f)
        r[f"refund_amount_{w}d"] = amount(f)
        r[f"net_amount_{w}d"] = amount(o) - amount(f)
    for w in (90, 180, 365):
        r[f"aov_{w}d"] = ratio(r[f"orders_amount_{w}d"], r[f"orders_count_{w}d"])
    year = [e for e in orders if within(365)(e)]
    r["max_order_amount_365d"] = max((e.amount for e in year if e.amount is not None), default=None)
    r["orders_count_all"] = len(orders)
    r["orders_amount_all"] = amount(orders)
    r["refund_amount_all"] = amount(refunds)
    r["first_order_amount"] = first_value(orders, lambda e: e.amount)
    r["last_order_amount"] = first_value(orders, lambda e: e.amount, last=True)
    days = [e.day for e in orders]
    r["first_order_date"] = min(days, default=None)
    r["last_order_date"] = max(days, default=None)
    before_30 = TODAY - timedelta(days=29)
    r["last_order_date_before_30d"] = max((d for d in days if d < before_30), default=None)
    r["days_since_last_order"] = (TODAY - max(days)).days if days else None
    r["days_since_first_order"] = (TODAY - min(days)).days if days else None
    r["first_order_category"] = first_value(orders, lambda e: e.category)
    r["last_order_category"] = first_value(orders, lambda e: e.category, last=True)
    top3 = top(year, lambda e: e.category, 3)
    r["top_category_365d"] = top3[0] if top3 else None
    r["top3_categories_365d"] = top3
    top_sku = top(year, lambda e: e.sku, 1)
    r["top_sku_365d"] = top_sku[0] if top_sku else None
    r["categories_bought_365d"] = len({e.category for e in year if e.category is not None})
    r["skus_bought_365d"] = len({e.sku for e in year if e.sku is not None})
    r["items_365d"] = sum(e.quantity for e in year if e.quantity is not None)
    span = (max(days) - min(days)).days if days else None
    r["avg_repurchase_interval"] = ratio(span, len(orders) - 1)
    for category in CATEGORIES:
        mine = [e.day for e in orders if e.category == category]
        r[f"orders_count_{category}"] = len(mine)
        r[f"first_order_date_{category}"] = min(mine, default=None)
        r[f"last_order_date_{category}"] = max(mine, default=None)
        r[f"repurchase_interval_{category}"] = ratio(
            (max(mine) - min(mine)).days if mine else None, len(mine) - 1
        )

    coupon = [e for e in year if e.prop("coupon_id") is not None]
    r["coupon_orders_365d"] = len(coupon)
    r["coupon_order_share_365d"] = ratio(len(coupon), len(year))
    discounts = [d for d in (e.number("discount") for e in year) if d is not None]
    r["avg_discount_365d"] = sum(discounts) / len(discounts) if discounts else None

    active_days = {e.day for e in active}
    r["last_active_date"] = max(active_days, default=None)
    r["days_since_last_active"] = (TODAY - max(active_days)).days if active_days else None
    for w in (7, 30, 90, 365):
        r[f"active_days_{w}d"] = len({d for d in active_days if d >= TODAY - timedelta(w - 1)})
    logins = [e for e in events if e.name == "login"]
    for w in (7, 30, 90):
        r[f"logins_{w}d"] = sum(1 for e in logins if within(w)(e))
        r[f"page_views_{w}d"] = sum(1 for e in events if e.name == "page_view" and within(w)(e))
    r["days_since_last_login"] = (TODAY - max(e.day for e in logins)).days if logins else None
    searches = [e for e in events if e.name == "search" and within(90)(e)]
    r["searches_90d"] = len(searches)
    keywords = top(searches, lambda e: e.prop("keyword"), 3)
    r["top_search_keyword_90d"] = keywords[0] if keywords else None
    r["top3_search_keywords_90d"] = keywords

    checkins = [e for e in events if e.name == "checkin"]
    r["checkins_30d"] = sum(1 for e in checkins if within(30)(e))
    r["checkins_90d"] = sum(1 for e in checkins if within(90)(e))
    streaks = [s for s in (e.number("streak") for e in checkins if within(90)(e)) if s is not None]
    r["max_checkin_streak_90d"] = max(streaks, default=None)
    r["last_checkin_streak"] = first_value(checkins, lambda e: e.number("streak"), last=True)
    last_checkin = max((e.day for e in checkins), default=None)
    r["days_since_last_checkin"] = (TODAY - last_checkin).days if last_checkin else None
    recent = r["days_since_last_checkin"] is not None and r["days_since_last_checkin"] <= 1
    r["checkin_streak"] = r["last_checkin_streak"] if recent else 0
    contact = [e for e in events if e.name in ("wecom_add_contact", "wecom_delete_contact")]
    r["last_wecom_contact_event"] = first_value(contact, lambda e: e.name, last=True)
    r["is_wecom_friend"] = r["last_wecom_contact_event"] == "wecom_add_contact"
    r["wecom_staff"] = first_value(
        [e for e in contact if e.name == "wecom_add_contact"],
        lambda e: e.prop("staff_id"),
        last=True,
    )

    for channel in CHANNELS:
        for step in ("sent", "opened", "clicked"):
            r[f"messages_{step}_{channel}_90d"] = sum(
                1
                for e in events
                if e.name == f"message_{step}" and e.channel == channel and within(90)(e)
            )
        sent = r[f"messages_sent_{channel}_90d"]
        r[f"open_rate_{channel}_90d"] = ratio(r[f"messages_opened_{channel}_90d"], sent)
        r[f"click_rate_{channel}_90d"] = ratio(r[f"messages_clicked_{channel}_90d"], sent)
        r[f"unsubscribed_{channel}"] = any(
            e.name == "unsubscribe" and e.channel == channel for e in events
        )
    r["messages_sent_90d"] = sum(1 for e in events if e.name == "message_sent" and within(90)(e))
    r["unsubscribed_channels"] = top(
        [e for e in events if e.name == "unsubscribe"], lambda e: e.channel, 8
    )

    identify = [e for e in events if e.name == "identify"]

    def trait(key: str, *, first: bool = False) -> str | None:
        value: str | None = first_value(identify, lambda e: e.prop(key) or None, last=not first)
        return value

    r["gender"] = trait("gender")
    r["city"] = trait("city")
    birthday_text = trait("birthday", first=True)
    birthday = date.fromisoformat(birthday_text) if birthday_text else None
    r["birthday"] = birthday
    r["province"] = PROVINCE.get(r["city"] or "")
    r["city_tier"] = CITY_TIER.get(r["city"] or "")
    if birthday is None:
        r["age"] = r["age_band"] = None
    else:
        age = (
            TODAY.year - birthday.year - ((birthday.month, birthday.day) > (TODAY.month, TODAY.day))
        )
        r["age"] = age
        edges, labels = AGE_BANDS
        r["age_band"] = next(
            (label for edge, label in zip(edges, labels[:-1], strict=True) if age < edge),
            labels[-1],
        )

    r["lifecycle_stage"] = _lifecycle(r)
    repurchase = r["avg_repurchase_interval"]
    net = r["net_amount_365d"]
    if net >= 5000 and (100000 if repurchase is None else round(repurchase, 1)) <= 15:
        r["tier"] = "钻石"
    elif net >= 3000:
        r["tier"] = "蓝宝石"
    elif net >= 1000:
        r["tier"] = "白金"
    elif r["active_days_30d"] >= 3 or r["orders_count_365d"] > 0:
        r["tier"] = "普通"
    else:
        r["tier"] = "潜在"
    return r


def _lifecycle(r: dict[str, Any]) -> str:
    dsla, dslo = r["days_since_last_active"], r["days_since_last_order"]
    orders_all = r["orders_count_all"]
    before = r["last_order_date_before_30d"]
    since_before = (TODAY - before).days if before else None
    rules: list[tuple[bool | None, str]] = [
        (and3(orders_all == 0, dsla is None), "prospect"),
        (or3(gt(dsla, 180), and3(orders_all > 0, gt(dslo, 365))), "churned"),
        (gt(dsla, 60), "silent"),
        (orders_all == 0, "prospect"),
        (and3(r["orders_count_30d"] > 0, gt(since_before, 180)), "returned"),
        (and3(le(r["days_since_first_order"], 30), orders_all <= 1), "new"),
        (r["orders_count_365d"] >= 3, "mature"),
    ]
    return next((stage for condition, stage in rules if condition is True), "growing")


def population_reference(people: dict[str, dict[str, Any]]) -> None:
    """RFM scores and segment, among buyers (ties broken by person id)."""
    buyers = {p: r for p, r in people.items() if r["orders_count_all"] > 0}
    recency = ntile({p: r["days_since_last_order"] for p, r in buyers.items()}, 5, desc=True)
    frequency = ntile({p: r["orders_count_365d"] for p, r in buyers.items()}, 5)
    # Money is compared in cents so equal amounts tie however the engine sums them.
    monetary = ntile({p: round(r["net_amount_365d"], 2) for p, r in buyers.items()}, 5)
    for person, r in people.items():
        rr, f, m = recency.get(person), frequency.get(person), monetary.get(person)
        r["rfm_r"], r["rfm_f"], r["rfm_m"] = rr, f, m
        if rr is None or f is None or m is None:
            r["rfm_score"] = r["rfm_segment"] = None
        else:
            r["rfm_score"] = rr + f + m
            important = m >= 3
            high_r, high_f = rr >= 3, f >= 3
            names = {
                (True, True): "价值客户",
                (True, False): "发展客户",
                (False, True): "保持客户",
                (False, False): "挽留客户",
            }
            r["rfm_segment"] = ("重要" if important else "一般") + names[(high_r, high_f)]


# -- how values compare -------------------------------------------------------------------------

MONEY = {
    *(f"{kind}_{w}d" for kind in ("orders_amount", "refund_amount", "net_amount")
      for w in (7, 30, 90, 180, 365)),
    "orders_amount_all", "refund_amount_all", "max_order_amount_365d", "first_order_amount",
    "last_order_amount",
}  # fmt: skip
ROUNDED = {  # tags the library rounds, and to how many digits
    "aov_90d": 2, "aov_180d": 2, "aov_365d": 2, "avg_repurchase_interval": 1,
    "coupon_order_share_365d": 4,
    **{f"repurchase_interval_{c}": 1 for c in CATEGORIES},
    **{f"{kind}_rate_{c}_90d": 4 for kind in ("open", "click") for c in CHANNELS},
}  # fmt: skip
BOOLS = {"is_wecom_friend", *(f"unsubscribed_{c}" for c in CHANNELS)}


def same(key: str, actual: Any, expected: Any) -> bool:
    if key in BOOLS:
        return bool(actual) == bool(expected)
    if actual is None or expected is None:
        return actual is None and expected is None
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        if key in ROUNDED:  # the engine rounds; either rounding of a half is fine
            return math.isclose(actual, expected, abs_tol=0.5 * 10 ** -ROUNDED[key] + 1e-9)
        if key in MONEY:
            return math.isclose(actual, expected, abs_tol=0.005)
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)
    return bool(actual == expected)


# -- the refreshed world ------------------------------------------------------------------------


def load(store: EventStore, world: World) -> None:
    store.append(world.events_table())
    store.replace_table("identity_map", world.identity_table())


def refresh(database: Database, store: EventStore, keys: list[str] | None = None) -> None:
    options = service.RefreshOptions(tz=TZ, as_of=AS_OF, keys=keys)
    with database.unit_of_work() as session:
        service.refresh(db_session=session, events=store, options=options)


def tag_values(store: EventStore) -> dict[str, dict[str, Any]]:
    rows = store.table(service.VALUES_TABLE).to_pyarrow().to_pylist()
    return {row["person_id"]: row for row in rows}


@dataclass(frozen=True)
class Refreshed:
    world: World
    actual: dict[str, dict[str, Any]]
    expected: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory: pytest.TempPathFactory) -> Refreshed:
    root = tmp_path_factory.mktemp("tags_reference")
    database = open_database(f"sqlite:///{root / 'siyu.db'}")
    upgrade(database)
    store = open_event_store(f"duckdb:///{root / 'events.duckdb'}")
    world = build_world()
    try:
        load(store, world)
        refresh(database, store)
        actual = tag_values(store)
    finally:
        store.close()
        database.dispose()
    expected = {p: person_reference(events) for p, events in resolve(world).items()}
    population_reference(expected)
    return Refreshed(world, actual, expected)


FAMILIES: dict[str, list[str]] = {
    "purchases": [
        *(f"{kind}_{w}d" for w in (7, 30, 90, 180, 365) for kind in (
            "orders_count", "orders_amount", "refunds_count", "refund_amount", "net_amount")),
        "aov_90d", "aov_180d", "aov_365d", "max_order_amount_365d", "orders_count_all",
        "orders_amount_all", "refund_amount_all", "first_order_amount", "last_order_amount",
        "first_order_date", "last_order_date", "last_order_date_before_30d",
        "days_since_last_order", "days_since_first_order", "first_order_category",
        "last_order_category", "top_category_365d", "top3_categories_365d", "top_sku_365d",
        "categories_bought_365d", "skus_bought_365d", "items_365d", "avg_repurchase_interval",
        *(f"{kind}_{c}" for c in CATEGORIES for kind in (
            "orders_count", "first_order_date", "last_order_date", "repurchase_interval")),
    ],
    "promotions": ["coupon_orders_365d", "coupon_order_share_365d", "avg_discount_365d"],
    "activity": [
        "last_active_date", "days_since_last_active",
        *(f"active_days_{w}d" for w in (7, 30, 90, 365)),
        *(f"logins_{w}d" for w in (7, 30, 90)), *(f"page_views_{w}d" for w in (7, 30, 90)),
        "days_since_last_login", "searches_90d", "top_search_keyword_90d",
        "top3_search_keywords_90d",
    ],
    "engagement": [
        "checkins_30d", "checkins_90d", "max_checkin_streak_90d", "last_checkin_streak",
        "days_since_last_checkin", "checkin_streak", "last_wecom_contact_event",
        "is_wecom_friend", "wecom_staff",
    ],
    "messaging": [
        *(f"{kind}_{c}_90d" for c in CHANNELS for kind in (
            "messages_sent", "messages_opened", "messages_clicked", "open_rate", "click_rate")),
        *(f"unsubscribed_{c}" for c in CHANNELS), "messages_sent_90d", "unsubscribed_channels",
    ],
    "demographics": ["gender", "city", "birthday", "age", "age_band", "province", "city_tier"],
    "rfm_and_lifecycle": [
        "rfm_r", "rfm_f", "rfm_m", "rfm_score", "rfm_segment", "lifecycle_stage", "tier",
    ],
}  # fmt: skip


@pytest.mark.parametrize(
    "key", [pytest.param(k, id=f"{family}:{k}") for family, ks in FAMILIES.items() for k in ks]
)
def test_tag_matches_reference(refreshed: Refreshed, key: str) -> None:
    wrong = [
        (person, refreshed.actual[person][key], expected[key])
        for person, expected in sorted(refreshed.expected.items())
        if not same(key, refreshed.actual[person][key], expected[key])
    ]
    assert not wrong, f"{key}: (person, engine, reference) {wrong[:10]}"


def test_people_are_the_identity_map(refreshed: Refreshed) -> None:
    assert sorted(refreshed.actual) == refreshed.world.people


def test_the_fixture_reaches_its_edge_cases(refreshed: Refreshed) -> None:
    """The hand-picked people hold what they were picked for (guards the reference too)."""
    e = refreshed.expected
    assert e["P01"]["orders_count_all"] == 0 and e["P01"]["lifecycle_stage"] == "prospect"
    assert e["P02"]["orders_count_7d"] == 3 and e["P02"]["orders_amount_7d"] == 170.5
    assert [e["P03"][f"orders_count_{w}d"] for w in (7, 30, 90)] == [2, 4, 6]
    assert e["P03"]["active_days_7d"] == 2 and e["P03"]["active_days_30d"] == 4
    assert e["P04"]["net_amount_30d"] == -200.0
    assert e["P05"]["top3_categories_365d"] == ["makeup", "skincare", "bodycare"]
    assert e["P06"]["top3_categories_365d"] == ["fragrance", "skincare", "makeup"]
    assert (e["P07"]["rfm_m"], e["P08"]["rfm_m"], e["P09"]["rfm_m"]) != (None, None, None)
    assert e["P10"]["orders_count_all"] == 0 and e["P10"]["gender"] is None
    assert e["P11"]["coupon_orders_365d"] == 2 and e["P11"]["checkin_streak"] == 5
    assert e["P11"]["avg_discount_365d"] == pytest.approx(15.25)
    assert [e[f"P{n}"]["is_wecom_friend"] for n in (12, 13, 14)] == [False, True, True]
    assert e["P15"]["open_rate_sms_90d"] == 0.25 and e["P15"]["unsubscribed_sms"] is True
    assert (e["P16"]["gender"], e["P16"]["city"], e["P16"]["age"]) == ("female", "杭州", 36)
    assert e["P17"]["age"] == 25
    assert all(r["orders_amount_all"] < 5000 for r in e.values())  # the ghost order is nobody's


# -- windowed counts on random small worlds ----------------------------------------------------

WINDOW_KEYS = [
    "orders_count_7d", "orders_count_30d", "orders_amount_7d", "orders_amount_30d",
    "refund_amount_30d", "net_amount_30d", "active_days_7d", "active_days_30d",
]  # fmt: skip

offsets = st.integers(min_value=-40 * 86400, max_value=2 * 86400).map(
    lambda s: AS_OF + timedelta(seconds=s)
)
midnights = st.integers(min_value=-40, max_value=1).flatmap(
    lambda d: st.sampled_from([timedelta(0), -timedelta(microseconds=1)]).map(
        lambda eps: datetime(2026, 11, 23, tzinfo=TZ).astimezone(UTC) + timedelta(days=d) + eps
    )
)
random_events = st.lists(
    st.tuples(
        st.sampled_from(["P1", "P2", "ghost"]),
        st.sampled_from(["order_paid", "refund", "login", "message_sent"]),
        st.one_of(offsets, midnights),
        st.integers(min_value=1, max_value=100000),
    ),
    max_size=25,
)


@pytest.fixture(scope="module")
def small_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path_factory.mktemp('small') / 'siyu.db'}")
    upgrade(database)
    yield database
    database.dispose()


@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=random_events)
def test_windowed_counts_on_random_worlds(
    small_database: Database, rows: list[tuple[str, str, datetime, int]]
) -> None:
    world = World()
    world.person("P1", "member_no:A", "anonymous_id:a")
    world.person("P2", "member_no:B")
    keys: dict[str, tuple[str | None, str | None]] = {
        "P1": ("member_no:A", "a"),  # events alternate between the member key and the device
        "P2": ("member_no:B", None),
        "ghost": ("member_no:nobody", None),
    }
    for i, (who, name, ts, cents) in enumerate(rows):
        user, device = keys[who]
        if device and i % 2:
            user = None
        money = f"{cents / 100:.2f}" if name in ("order_paid", "refund") else None
        world.add(name, ts, user_id=user, anonymous_id=device, amount=money)
    with tempfile.TemporaryDirectory() as directory:
        store = open_event_store(f"duckdb:///{Path(directory) / 'events.duckdb'}")
        try:
            if world.rows:
                store.append(world.events_table())
            store.replace_table("identity_map", world.identity_table())
            refresh(small_database, store, WINDOW_KEYS)
            actual = tag_values(store)
        finally:
            store.close()
    expected = {p: person_reference(events) for p, events in resolve(world).items()}
    for person in ("P1", "P2"):
        for key in WINDOW_KEYS:
            assert same(key, actual[person][key], expected[person][key]), (person, key)


def test_reference_ntile_matches_sql_sizes() -> None:
    """NTILE gives the first (n mod tiles) tiles one extra row."""
    scores = ntile({f"p{i}": float(i % 3) for i in range(7)}, 5)
    assert sorted(Counter(scores.values()).items()) == [(1, 2), (2, 2), (3, 1), (4, 1), (5, 1)]
    assert [scores[p] for p in ("p0", "p3", "p6", "p1", "p4", "p2", "p5")] == [1, 1, 2, 2, 3, 4, 5]
