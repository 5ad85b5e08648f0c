"""A small, deterministic world of people and events for checking tags against a reference.

Hand-picked people carry the edge cases (no events, merged identities, orders on Asia/Shanghai
midnights, refunds, ties, events after the refresh instant, JSON numbers in properties,
unresolved events); seeded random people fill the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

TZ = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)  # local 2026-11-23 00:00
TODAY = date(2026, 11, 23)
CATEGORIES = ("skincare", "makeup", "bodycare", "fragrance")
CHANNELS = ("wecom", "sms", "email", "miniprogram")
CITIES = ("上海", "杭州", "昆明", "火星")
KEYWORDS = ("面霜", "口红", "防晒", "香水")
US = timedelta(microseconds=1)


def local_midnight(day: date) -> datetime:
    """The UTC instant at which ``day`` begins in Asia/Shanghai."""
    return datetime(day.year, day.month, day.day, tzinfo=TZ).astimezone(UTC)


@dataclass
class World:
    identity_map: dict[str, str] = field(default_factory=dict)  # raw key → person
    rows: list[dict[str, Any]] = field(default_factory=list)
    _serial: int = 0

    @property
    def people(self) -> list[str]:
        return sorted(set(self.identity_map.values()))

    def person(self, person_id: str, *keys: str) -> None:
        for key in keys:
            self.identity_map[key] = person_id

    def add(
        self,
        name: str,
        ts: datetime,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        amount: str | float | None = None,
        category: str | None = None,
        sku: str | None = None,
        quantity: int | None = None,
        channel: str | None = None,
        **properties: Any,
    ) -> None:
        self._serial += 1
        self.rows.append(
            {
                "event_id": f"e{self._serial:06d}",
                "name": name,
                "ts": ts,
                "received_at": ts,
                "user_id": user_id,
                "anonymous_id": anonymous_id,
                "channel": channel,
                "properties": json.dumps(properties, ensure_ascii=False) if properties else None,
                "amount": None
                if amount is None
                else Decimal(str(amount)).quantize(Decimal("0.01")),
                "category": category,
                "sku": sku,
                "quantity": quantity,
            }
        )

    def events_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rows)

    def identity_table(self) -> pa.Table:
        keys = sorted(self.identity_map)
        return pa.table(
            {"key": keys, "person_id": [self.identity_map[k] for k in keys]},
            schema=pa.schema([("key", pa.string()), ("person_id", pa.string())]),
        )


def _hand_picked(world: World) -> None:
    day = timedelta(days=1)

    # P00: only an identify; P01: in the identity map, no events at all.
    world.person("P00", "member_no:M00")
    world.add("identify", AS_OF - 40 * day, user_id="member_no:M00", gender="male", city="昆明")
    world.person("P01", "member_no:M01")

    # P02: three keys of one person; events under each must count together.
    world.person("P02", "member_no:M02", "anonymous_id:dev02", "phone:+8613800000002")
    world.add(
        "order_paid",
        AS_OF - 3 * day,
        user_id="member_no:M02",
        amount="100.00",
        category="skincare",
        sku="S1",
        quantity=1,
    )
    world.add(
        "order_paid",
        AS_OF - 5 * day,
        anonymous_id="dev02",
        amount="50.50",
        category="makeup",
        sku="S2",
        quantity=2,
    )
    # An unknown user id with a known device resolves through the device.
    world.add(
        "order_paid",
        AS_OF - 6 * day,
        user_id="member_no:UNKNOWN02",
        anonymous_id="dev02",
        amount="20.00",
        category="makeup",
        sku="S2",
        quantity=1,
    )
    world.add("login", AS_OF - 2 * day, user_id="phone:+8613800000002")
    world.add("identify", AS_OF - 10 * day, user_id="phone:+8613800000002", city="杭州")

    # P03: orders and activity on Asia/Shanghai midnights at the window edges.
    world.person("P03", "member_no:M03")
    u = "member_no:M03"
    for days in (7, 30, 90):
        start = local_midnight(TODAY - timedelta(days=days - 1))
        world.add("order_paid", start, user_id=u, amount=f"{days}.00", category="bodycare")
        world.add("order_paid", start - US, user_id=u, amount=f"{days}.01", category="fragrance")
        world.add("page_view", start, user_id=u)
        world.add("page_view", start - timedelta(seconds=1), user_id=u)
    world.add("order_paid", AS_OF, user_id=u, amount="1.00", category="bodycare")  # counts
    world.add("order_paid", AS_OF + US, user_id=u, amount="999.00", category="makeup")
    world.add("login", AS_OF + day, user_id=u)

    # P04: refunds bigger than the orders in the window, and one older refund.
    world.person("P04", "member_no:M04")
    u = "member_no:M04"
    world.add("order_paid", AS_OF - 20 * day, user_id=u, amount="300.00", category="skincare")
    world.add("order_paid", AS_OF - 200 * day, user_id=u, amount="800.00", category="skincare")
    world.add("refund", AS_OF - 10 * day, user_id=u, amount="500.00")
    world.add("refund", AS_OF - 100 * day, user_id=u, amount="120.25")

    # P05: equal counts, the more recent category wins.
    world.person("P05", "member_no:M05")
    u = "member_no:M05"
    for days, category in (
        (50, "skincare"),
        (40, "skincare"),
        (45, "makeup"),
        (30, "makeup"),
        (20, "bodycare"),
    ):
        world.add("order_paid", AS_OF - days * day, user_id=u, amount="99.00", category=category)

    # P06: equal counts and equal last times, the smaller value wins.
    world.person("P06", "member_no:M06")
    u = "member_no:M06"
    same = AS_OF - 12 * day
    world.add("order_paid", AS_OF - 100 * day, user_id=u, amount="10.00", category="makeup")
    world.add("order_paid", same, user_id=u, amount="10.00", category="skincare")
    world.add("order_paid", same, user_id=u, amount="10.00", category="fragrance")

    # P07-P09: identical buyers, so quintiles split them by person id.
    for n in (7, 8, 9):
        world.person(f"P0{n}", f"member_no:M0{n}")
        world.add(
            "order_paid",
            AS_OF - 15 * day,
            user_id=f"member_no:M0{n}",
            amount="100.00",
            category="skincare",
        )

    # P10: events only after the refresh instant.
    world.person("P10", "member_no:M10")
    world.add(
        "order_paid", AS_OF + 2 * day, user_id="member_no:M10", amount="10.00", category="skincare"
    )
    world.add("identify", AS_OF + day, user_id="member_no:M10", gender="female")

    # P11: JSON numbers in properties (coupon ids, discounts, streaks), a null coupon id.
    world.person("P11", "member_no:M11")
    u = "member_no:M11"
    world.add(
        "order_paid",
        AS_OF - 4 * day,
        user_id=u,
        amount="200.00",
        category="makeup",
        coupon_id=12345,
        discount=20,
    )
    world.add(
        "order_paid",
        AS_OF - 8 * day,
        user_id=u,
        amount="100.00",
        category="makeup",
        coupon_id="C-9",
        discount=10.5,
    )
    world.add(
        "order_paid", AS_OF - 9 * day, user_id=u, amount="100.00", category="makeup", coupon_id=None
    )
    world.add("checkin", AS_OF - 2 * day, user_id=u, streak=4)
    world.add("checkin", AS_OF - timedelta(hours=1), user_id=u, streak=5)  # yesterday
    world.add("search", AS_OF - 3 * day, user_id=u, keyword="口红")
    world.add("search", AS_OF - 4 * day, user_id=u, keyword="面霜")
    world.add("search", AS_OF - 5 * day, user_id=u, keyword="面霜")

    # P12-P14: WeCom contact added and deleted in different orders.
    for n, steps in (
        (12, ("wecom_add_contact", "wecom_delete_contact")),
        (13, ("wecom_add_contact", "wecom_delete_contact", "wecom_add_contact")),
        (14, ("wecom_add_contact",)),
    ):
        world.person(f"P{n}", f"member_no:M{n}")
        for i, step in enumerate(steps):
            world.add(step, AS_OF - (30 - i) * day, user_id=f"member_no:M{n}", staff_id="W1")

    # P15: messages per channel and an SMS unsubscribe.
    world.person("P15", "member_no:M15")
    u = "member_no:M15"
    for i in range(4):
        world.add("message_sent", AS_OF - (10 + i) * day, user_id=u, channel="sms")
    world.add("message_opened", AS_OF - 9 * day, user_id=u, channel="sms")
    for i in range(3):
        world.add("message_sent", AS_OF - (20 + i) * day, user_id=u, channel="wecom")
    world.add("message_opened", AS_OF - 19 * day, user_id=u, channel="wecom")
    world.add("message_opened", AS_OF - 18 * day, user_id=u, channel="wecom")
    world.add("message_clicked", AS_OF - 18 * day, user_id=u, channel="wecom")
    world.add("message_sent", AS_OF - 100 * day, user_id=u, channel="email")  # outside 90d
    world.add("unsubscribe", AS_OF - 5 * day, user_id=u, channel="sms")

    # P16: traits: an empty later value is ignored, the first birthday wins.
    world.person("P16", "member_no:M16")
    u = "member_no:M16"
    world.add(
        "identify",
        AS_OF - 300 * day,
        user_id=u,
        gender="female",
        city="上海",
        birthday="1990-11-23",
    )
    world.add(
        "identify", AS_OF - 100 * day, user_id=u, gender="", city="杭州", birthday="1991-01-01"
    )
    # P17: birthday tomorrow.
    world.person("P17", "member_no:M17")
    world.add("identify", AS_OF - 5 * day, user_id="member_no:M17", birthday="2000-11-24")

    # Unresolved: nobody's key.
    world.add(
        "order_paid",
        AS_OF - 1 * day,
        user_id="member_no:GHOST",
        amount="5000.00",
        category="skincare",
    )
    world.add("login", AS_OF - 1 * day, anonymous_id="ghost-device")


_WEIGHTS = {
    "order_paid": 6,
    "refund": 1,
    "login": 4,
    "page_view": 4,
    "search": 2,
    "checkin": 2,
    "register": 0.3,
    "identify": 1,
    "message_sent": 3,
    "message_opened": 2,
    "message_clicked": 1,
    "unsubscribe": 0.3,
    "wecom_add_contact": 0.4,
    "wecom_delete_contact": 0.2,
    "coupon_use": 0.5,
}


def _random_people(world: World, rng: np.random.Generator, count: int) -> None:
    names = list(_WEIGHTS)
    weights = np.array([_WEIGHTS[n] for n in names])
    weights = weights / weights.sum()
    for n in range(20, 20 + count):
        pid = f"P{n:02d}"
        member, device = f"member_no:R{n}", f"dev{n}"
        world.person(pid, member, f"anonymous_id:{device}")
        for _ in range(int(rng.poisson(18))):
            name = str(rng.choice(names, p=weights))
            if rng.random() < 0.04:
                ts = AS_OF + timedelta(seconds=int(rng.integers(0, 10 * 86400)))
            elif rng.random() < 0.15:  # a local midnight, or the instant just before one
                ts = local_midnight(TODAY - timedelta(days=int(rng.integers(0, 400))))
                ts -= US * int(rng.integers(0, 2))
            else:
                ts = AS_OF - timedelta(seconds=int(rng.integers(0, 500 * 86400)))
            who: dict[str, Any] = (
                {"anonymous_id": device} if rng.random() < 0.3 else {"user_id": member}
            )
            extra: dict[str, Any] = {}
            if name in ("order_paid", "refund"):
                extra["amount"] = f"{int(rng.integers(100, 60000)) / 100:.2f}"
            if name == "order_paid":
                extra["category"] = (
                    None if rng.random() < 0.05 else str(rng.choice([*CATEGORIES, "accessories"]))
                )
                extra["sku"] = f"SKU{int(rng.integers(0, 6))}"
                extra["quantity"] = int(rng.integers(1, 4))
                roll = rng.random()
                if roll < 0.25:
                    extra["coupon_id"] = int(rng.integers(1, 1000))
                elif roll < 0.45:
                    extra["coupon_id"] = f"C{int(rng.integers(1, 1000))}"
                if rng.random() < 0.5:
                    extra["discount"] = (
                        int(rng.integers(0, 50))
                        if rng.random() < 0.5
                        else round(float(rng.random() * 50), 2)
                    )
            elif name == "search":
                extra["keyword"] = str(rng.choice(KEYWORDS))
            elif name == "checkin":
                extra["streak"] = int(rng.integers(1, 15))
            elif name.startswith("message_") or name == "unsubscribe":
                extra["channel"] = str(rng.choice([*CHANNELS, "web"]))
            elif name == "identify":
                if rng.random() < 0.7:
                    extra["gender"] = str(rng.choice(["male", "female", ""]))
                if rng.random() < 0.7:
                    extra["city"] = str(rng.choice(CITIES))
                if rng.random() < 0.5:
                    extra["birthday"] = (
                        f"{int(rng.integers(1960, 2012))}-{int(rng.integers(1, 13)):02d}-"
                        f"{int(rng.integers(1, 29)):02d}"
                    )
            world.add(name, ts, **who, **extra)


def build_world(seed: int = 20261123, random_people: int = 40) -> World:
    world = World()
    _hand_picked(world)
    _random_people(world, np.random.default_rng(seed), random_people)
    return world
