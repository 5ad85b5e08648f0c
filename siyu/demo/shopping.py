"""What people do in the store: browsing sessions, orders with their funnels, refunds, reviews,
coupons and check-ins. Orders follow a renewal process per person and category, so repurchase
intervals depend on the category and the customer type; 618 and 双11 add promotion orders and
the Spring Festival week is quiet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siyu.demo import reference as ref
from siyu.demo.frames import (
    KEY_MEMBER,
    KEY_OPENID,
    KEY_PHONE,
    FloatArray,
    Fragment,
    IntArray,
    digits,
    join,
    json_object,
    money,
    pick,
    rank_within,
    repeat_index,
    take,
    time_of_day,
    weekday_thin,
)
from siyu.demo.people import People

_SKUS = pa.array([p[0] for p in ref.PRODUCTS])
_SKU_CATEGORY = np.array([ref.CATEGORIES.index(p[2]) for p in ref.PRODUCTS])
_SKU_PRICE_CENTS = np.array([round(p[3] * 100) for p in ref.PRODUCTS])
_SKU_WEIGHT = np.array([p[4] for p in ref.PRODUCTS])
_CATEGORY_ARRAY = pa.array(ref.CATEGORIES)
_KEYWORDS = pa.array(ref.SEARCH_KEYWORDS)
_PAGES = pa.array(["home", "category", "activity", "member_center", "cart"])
_MP_SCENES = pa.array(["1001", "1007", "1008", "1011", "1089", "1177"])
_MP_SCENE_WEIGHTS = np.array([0.30, 0.12, 0.10, 0.12, 0.30, 0.06])
_UTM_SOURCES = pa.array(["wecom", "sms", "email", "livestream", "moments_ad"])
_REFUND_REASONS = pa.array(["不想要了", "过敏", "发错货", "物流太慢", "质量问题"])
_COUPON_VALUES = np.array([1000, 2000, 3000, 5000])
MAX_ORDERS_PER_STREAM = 40


@dataclass
class Calendar:
    """The data window: day 0 is ``start`` (local), ``days`` long."""

    start: date
    days: int

    @property
    def weekday_of_start(self) -> int:
        return self.start.weekday()

    def day_of(self, when: date) -> int:
        return (when - self.start).days

    def promo_windows(self) -> list[tuple[str, int, int]]:
        """(name, first day, last day) of each festival inside the window."""
        found = []
        for year in range(self.start.year, (self.start + timedelta(days=self.days)).year + 1):
            for (first, last), label in zip(ref.promo_windows(year), ("618", "双11"), strict=True):
                a, b = self.day_of(first), self.day_of(last)
                if b >= 0 and a < self.days:
                    found.append((label, max(a, 0), min(b, self.days - 1)))
        return found

    def quiet_days(self) -> list[tuple[int, int]]:
        """The Spring Festival weeks inside the window, as [first, last) days."""
        spans = []
        for new_year in ref.SPRING_FESTIVAL.values():
            a, b = self.day_of(new_year) - 3, self.day_of(new_year) + 7
            if b > 0 and a < self.days:
                spans.append((a, b))
        return spans


def _spell_days(rng: np.random.Generator, people: People, pid: IntArray, days: int) -> FloatArray:
    """Uniform days inside each listed person's active spells (clipped to the window)."""
    a1 = np.clip(np.maximum(people.reg_day[pid], 0), 0, days)
    b1 = np.clip(people.end1[pid], 0, days)
    a2 = np.clip(people.start2[pid], 0, days)
    b2 = np.clip(people.end2[pid], 0, days)
    len1, len2 = np.maximum(b1 - a1, 0), np.maximum(b2 - a2, 0)
    in_second = rng.random(len(pid)) * np.maximum(len1 + len2, 1e-9) >= len1
    u = rng.random(len(pid))
    return np.where(in_second, a2 + u * len2, a1 + u * len1)


def active_days(people: People, days: int) -> FloatArray:
    a1 = np.clip(np.maximum(people.reg_day, 0), 0, days)
    b1 = np.clip(people.end1, 0, days)
    a2 = np.clip(people.start2, 0, days)
    b2 = np.clip(people.end2, 0, days)
    total: FloatArray = np.maximum(b1 - a1, 0) + np.maximum(b2 - a2, 0)
    return total


def _online_channel(people: People, pid: IntArray) -> tuple[pa.Array, IntArray, np.ndarray]:
    """Mini-program for those who have it, else the web shop (device id + phone login)."""
    mp = people.has_mp[pid]
    channel = pa.array(np.where(mp, "miniprogram", "web"))
    key = np.where(mp, KEY_OPENID, KEY_PHONE)
    return channel, key, ~mp


def _sku_in_category(rng: np.random.Generator, category: IntArray) -> IntArray:
    """A popularity-weighted SKU of each given category."""
    out = np.empty(len(category), dtype=np.int64)
    for c in range(len(ref.CATEGORIES)):
        rows = np.flatnonzero(category == c)
        skus = np.flatnonzero(c == _SKU_CATEGORY)
        out[rows] = skus[pick(rng, _SKU_WEIGHT[skus], len(rows))]
    return out


def sessions(rng: np.random.Generator, people: People, cal: Calendar) -> list[Fragment]:
    """Browsing sessions: page views, searches, product views, abandoned carts, shares, logins."""
    counts = rng.poisson(ref.SESSION_RATE[people.ctype] * active_days(people, cal.days))
    pid = repeat_index(counts)
    day = _spell_days(rng, people, pid, cal.days)
    keep = weekday_thin(rng, day, cal.weekday_of_start)
    pid, start = pid[keep], time_of_day(rng, day[keep])
    channel, key, web = _online_channel(people, pid)
    scene = take(_MP_SCENES, pick(rng, _MP_SCENE_WEIGHTS, len(pid)))
    scene = pa.array(np.where(people.has_mp[pid], scene.to_numpy(zero_copy_only=False), None))
    minute = 1.0 / 1440
    fragments: list[Fragment] = []

    def block(
        mask: np.ndarray, name: str, offset: FloatArray, columns: dict[str, pa.Array]
    ) -> None:
        rows = np.flatnonzero(mask)
        fragments.append(
            Fragment(
                pid=pid[rows],
                t=start[rows] + offset[rows],
                name=name,
                channel=channel.take(pa.array(rows)),
                key=key[rows],
                columns={
                    "scene": scene.take(pa.array(rows)),
                    **{k: v.take(pa.array(rows)) for k, v in columns.items()},
                },
                web=web[rows],
            )
        )

    n = len(pid)
    block(
        people.has_mp[pid] & (rng.random(n) < 0.15),
        "login",
        np.zeros(n),
        {"properties": pa.array(['{"method":"wechat"}'] * n)},
    )
    page = take(_PAGES, rng.integers(0, len(_PAGES), n))
    block(
        np.ones(n, bool),
        "page_view",
        np.full(n, 0.2 * minute),
        {"properties": json_object(page=page)},
    )
    keyword = take(_KEYWORDS, rng.integers(0, len(_KEYWORDS), n))
    block(
        rng.random(n) < 0.3,
        "search",
        np.full(n, 1.0 * minute),
        {"properties": json_object(keyword=keyword)},
    )

    # Product views: 1-4 per session, mostly in the person's favourite category.
    views = 1 + rng.poisson(0.45, n)
    owner = repeat_index(views)
    category = np.where(
        rng.random(len(owner)) < 0.7,
        people.main_category[pid[owner]],
        pick(rng, ref.CATEGORY_WEIGHTS, len(owner)),
    )
    sku = _sku_in_category(rng, category)
    view_rank = np.arange(len(owner)) - np.repeat(np.cumsum(views) - views, views)
    fragments.append(
        Fragment(
            pid=pid[owner],
            t=start[owner] + (2 + 1.5 * view_rank) * minute,
            name="product_view",
            channel=channel.take(pa.array(owner)),
            key=key[owner],
            columns={
                "sku": take(_SKUS, sku),
                "category": take(_CATEGORY_ARRAY, _SKU_CATEGORY[sku]),
                "scene": scene.take(pa.array(owner)),
            },
            web=web[owner],
        )
    )
    cart_sku = _sku_in_category(rng, people.main_category[pid])
    block(
        rng.random(n) < 0.16,
        "add_to_cart",
        np.full(n, 9 * minute),
        {
            "sku": take(_SKUS, cart_sku),
            "category": take(_CATEGORY_ARRAY, _SKU_CATEGORY[cart_sku]),
            "quantity": pa.array(np.ones(n, np.int32)),
        },
    )
    content = pa.array(
        np.where(rng.random(n) < 0.5, '{"content":"product"}', '{"content":"activity"}')
    )
    block(rng.random(n) < 0.04, "share", np.full(n, 11 * minute), {"properties": content})
    return fragments


def _stream_orders(
    rng: np.random.Generator, people: People, cal: Calendar
) -> tuple[IntArray, FloatArray, IntArray, np.ndarray]:
    """Regular (non-promotion) orders: (person, day, category, from_second_spell)."""
    pids, days_out, cats, second_spell = [], [], [], []
    repeaters = people.converts & (people.ctype != ref.CUSTOMER_TYPES.index("one_off"))
    streams = ((people.main_category, people.converts), (people.second_category, repeaters))
    for stream, (column, buyers) in enumerate(streams):
        for spell in (1, 2):
            chosen = buyers & (column >= 0)
            if spell == 2:
                chosen &= repeaters & np.isfinite(people.start2)
            pid = np.flatnonzero(chosen)
            cat = column[pid]
            cycle = ref.CATEGORY_CYCLE_DAYS[cat] * ref.CYCLE_MULTIPLIER[people.ctype[pid]]
            begin = people.reg_day[pid] if spell == 1 else people.start2[pid]
            end = people.end1[pid] if spell == 1 else people.end2[pid]
            # A newcomer's first order follows soon after joining; someone already a customer
            # is somewhere inside their cycle when the window opens.
            soon = (begin >= 0) & (stream == 0)
            first = np.where(
                soon,
                begin + rng.exponential(6.0, len(pid)),
                np.maximum(begin, 0) + rng.random(len(pid)) * cycle,
            )
            steps = rng.gamma(
                4.0, (cycle / 4.0)[:, None], size=(len(pid), MAX_ORDERS_PER_STREAM - 1)
            )
            steps[~repeaters[pid]] = np.inf
            times = first[:, None] + np.concatenate(
                [np.zeros((len(pid), 1)), np.cumsum(steps, axis=1)], axis=1
            )
            valid = (times >= 0) & (times < np.minimum(end, cal.days)[:, None])
            rows, _ = np.nonzero(valid)
            pids.append(pid[rows])
            days_out.append(times[valid])
            cats.append(cat[rows])
            second_spell.append(np.full(len(rows), spell == 2))
    return (
        np.concatenate(pids),
        np.concatenate(days_out),
        np.concatenate(cats),
        np.concatenate(second_spell),
    )


def _promo_orders(
    rng: np.random.Generator, people: People, cal: Calendar
) -> tuple[IntArray, FloatArray, list[str]]:
    pids, days_out, labels = [], [], []
    for label, first, last in cal.promo_windows():
        active = people.active(float(last)) & people.converts
        buys = active & (rng.random(len(people)) < ref.PROMO_BUY_PROBABILITY[people.ctype])
        pid = np.flatnonzero(buys)
        on_final_day = rng.random(len(pid)) < 0.35
        day = np.where(
            on_final_day,
            last + rng.uniform(0, 2 / 24, len(pid)),
            rng.uniform(first, last + 1, len(pid)),
        )
        pids.append(pid)
        days_out.append(day)
        labels.extend([label] * len(pid))
    if not pids:
        return np.zeros(0, np.int64), np.zeros(0), []
    return np.concatenate(pids), np.concatenate(days_out), labels


def orders(rng: np.random.Generator, people: People, cal: Calendar) -> tuple[list[Fragment], int]:
    """Orders with their funnel (views, cart, checkout), coupons, refunds and reviews."""
    pid, day, cat, _ = _stream_orders(rng, people, cal)
    day = time_of_day(rng, day)
    promo_pid, promo_day, promo_label = _promo_orders(rng, people, cal)
    promo = np.r_[np.zeros(len(pid), bool), np.ones(len(promo_pid), bool)]
    label = pa.array([None] * len(pid) + promo_label, type=pa.string())
    pid = np.r_[pid, promo_pid]
    day = np.r_[day, promo_day]
    cat = np.r_[cat, people.main_category[promo_pid]]
    keep = np.ones(len(pid), bool)
    for a, b in cal.quiet_days():
        keep &= ~((day >= a) & (day < b) & (rng.random(len(pid)) < 0.6))
    rows = np.flatnonzero(keep)
    pid, day, cat, promo, label = (
        pid[rows],
        day[rows],
        cat[rows],
        promo[rows],
        label.take(pa.array(rows)),
    )
    n = len(pid)

    in_store = people.has_pos[pid] & (
        rng.random(n) < np.where(people.registration[pid] == 3, 0.65, 0.2)
    )
    online_channel, online_key, online_web = _online_channel(people, pid)
    channel = pa.array(np.where(in_store, "store", online_channel.to_numpy(zero_copy_only=False)))
    key = np.where(in_store, KEY_MEMBER, online_key)
    web = ~in_store & online_web

    sku = _sku_in_category(rng, cat)
    quantity = np.where(rng.random(n) < 0.75, 1, np.where(rng.random(n) < 0.8, 2, 3))
    gross = _SKU_PRICE_CENTS[sku] * quantity
    with_coupon = rng.random(n) < ref.COUPON_SHARE[people.ctype[pid]]
    coupon = np.where(with_coupon, np.minimum(_COUPON_VALUES[rng.integers(0, 4, n)], gross // 2), 0)
    promo_discount = np.where(promo, (gross * 0.15).astype(np.int64), 0)
    amount = gross - coupon - promo_discount

    order_number = rank_within(pid, day)  # the person's 1st, 2nd, … order in this chunk
    order_id = join("O", digits(people.index[pid] * 1000 + order_number, 13))
    amount_arr, sku_arr = money(amount), take(_SKUS, sku)
    category = take(_CATEGORY_ARRAY, cat)
    coupon_id = join("CP", digits(coupon // 100, 3))
    props = pc.if_else(
        pa.array(promo),
        json_object(promo=label.fill_null(""), discount=pa.array(promo_discount // 100)),
        pc.if_else(
            pa.array(with_coupon),
            json_object(coupon_id=coupon_id, discount=pa.array(coupon // 100)),
            pa.nulls(n, pa.string()),
        ),
    )
    utm = pa.array(
        np.where(
            ~in_store & (rng.random(n) < 0.25),
            take(_UTM_SOURCES, rng.integers(0, 5, n)).to_numpy(zero_copy_only=False),
            None,
        )
    )
    order_columns = {
        "order_id": order_id,
        "amount": amount_arr,
        "currency": pa.array(["CNY"] * n),
        "sku": sku_arr,
        "category": category,
        "quantity": pa.array(quantity.astype(np.int32)),
        "properties": props,
        "utm_source": utm,
    }
    minute = 1.0 / 1440
    fragments = [Fragment(pid, day, "order_paid", channel, key, order_columns, web)]

    # Online orders come through a funnel. Some buyers open the product from a shared link or
    # a message and pay at once ("立即购买"), skipping the view or the cart.
    online = ~in_store
    steps = (("product_view", 14, 0.75), ("add_to_cart", 6, 0.6), ("checkout", 2, 1.0))
    for name, lead, share in steps:
        rows = np.flatnonzero(online & (rng.random(n) < share))
        sub = pa.array(rows)
        columns = {"sku": sku_arr.take(sub), "category": category.take(sub)}
        if name == "checkout":
            columns.update(order_id=order_id.take(sub), amount=amount_arr.take(sub))
        if name == "add_to_cart":
            columns["quantity"] = pa.array(quantity[rows].astype(np.int32))
        jitter = rng.uniform(0.5, 1.5, len(rows))
        fragments.append(
            Fragment(
                pid[rows],
                day[rows] - lead * jitter * minute,
                name,
                channel.take(sub),
                key[rows],
                columns,
                web[rows],
            )
        )

    used = np.flatnonzero(with_coupon)
    coupon_columns = {"properties": json_object(coupon_id=coupon_id.take(pa.array(used)))}
    claim_day = day[used] - rng.uniform(0.5, 10, len(used))
    fragments.append(
        Fragment(
            pid[used],
            claim_day,
            "coupon_claim",
            channel.take(pa.array(used)),
            key[used],
            coupon_columns,
            web[used],
        )
    )
    fragments.append(
        Fragment(
            pid[used],
            day[used] + 1 / 86400,
            "coupon_use",
            channel.take(pa.array(used)),
            key[used],
            coupon_columns,
            web[used],
        )
    )

    refund_rate = np.where(
        people.ctype[pid] == ref.CUSTOMER_TYPES.index("deal_seeker"), 0.08, 0.035
    )
    refund_day = day + rng.uniform(1, 10, n)
    refunded = np.flatnonzero((rng.random(n) < refund_rate) & (refund_day < cal.days))
    rsub = pa.array(refunded)
    reason = take(_REFUND_REASONS, rng.integers(0, len(_REFUND_REASONS), len(refunded)))
    fragments.append(
        Fragment(
            pid[refunded],
            refund_day[refunded],
            "refund",
            channel.take(rsub),
            key[refunded],
            {
                "order_id": order_id.take(rsub),
                "amount": amount_arr.take(rsub),
                "currency": pa.array(["CNY"] * len(refunded)),
                "sku": sku_arr.take(rsub),
                "category": category.take(rsub),
                "properties": json_object(reason=reason),
            },
            web[refunded],
        )
    )

    review_day = time_of_day(rng, day + rng.uniform(5, 20, n))
    reviewed = np.flatnonzero((rng.random(n) < 0.12) & (review_day < cal.days) & ~in_store)
    rating = (
        np.searchsorted(
            np.cumsum([0.03, 0.04, 0.10, 0.28, 0.55]), rng.random(len(reviewed)), side="right"
        )
        + 1
    )
    vsub = pa.array(reviewed)
    fragments.append(
        Fragment(
            pid[reviewed],
            review_day[reviewed],
            "review",
            channel.take(vsub),
            key[reviewed],
            {
                "order_id": order_id.take(vsub),
                "sku": sku_arr.take(vsub),
                "category": category.take(vsub),
                "properties": json_object(rating=pa.array(np.minimum(rating, 5))),
            },
            web[reviewed],
        )
    )
    return fragments, n


def checkins(rng: np.random.Generator, people: People, cal: Calendar) -> list[Fragment]:
    """Daily check-in streaks in the mini-program by a minority of engaged members."""
    engaged = people.has_mp & np.isin(people.ctype, [0, 1]) & (rng.random(len(people)) < 0.12)
    streak_counts = np.where(engaged, rng.poisson(3, len(people)), 0)
    owner = repeat_index(streak_counts)
    first_day = np.floor(_spell_days(rng, people, owner, cal.days))
    length = np.minimum(rng.geometric(0.2, len(owner)), 30)
    event_owner = repeat_index(length)
    offset = np.arange(len(event_owner)) - np.repeat(np.cumsum(length) - length, length)
    day = first_day[event_owner] + offset
    pid = owner[event_owner]
    ok = day < cal.days
    pid, day, offset = pid[ok], day[ok], offset[ok]
    t = day + (8 + rng.uniform(0, 2.5, len(day))) / 24
    streak = json_object(streak=pa.array(offset + 1))
    return [Fragment(pid, t, "checkin", "miniprogram", KEY_OPENID, {"properties": streak})]
