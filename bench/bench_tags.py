"""Tag refresh: the whole built-in library, a 30-tag subset against baselines, incremental.

Phase A refreshes every built-in tag over a generated brand (time by refresh step, peak RSS).
Phase B computes a representative subset of 30 tags three ways in the same run: siyu (its
compiled stages alone, and a whole ``refresh(keys=…)`` with history, publish and stats), one
hand-written DuckDB query of the kind a good analyst writes, and a straightforward pandas
implementation; all three must agree person by person. Phase C appends one more day of
events for ~3% of people and times an incremental refresh against a full one over the same
data. Targets (issue 5, full: 1M people, 365 days): full refresh <= 60 s with peak RSS
<= 4 GiB, subset <= 1.5x the SQL and >= 10x faster than pandas, incremental <= 0.2x full.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd

from bench.harness import (
    PeakRss,
    Result,
    Scale,
    Stopwatch,
    Target,
    alternate,
    phase,
    progress,
    record,
)
from siyu.demo.generator import DemoSpec
from siyu.demo.service import write_events
from siyu.events import EventStore, open_event_store
from siyu.identity import service as identity
from siyu.store import Database, open_database
from siyu.store.migrate import upgrade
from siyu.tags import service as tags
from siyu.tags.compiler import (
    Clock,
    Sources,
    compile_person_stage,
    compile_population_stage,
    plan,
    prepare_events,
)
from siyu.tags.library import ACTIVE_EVENTS
from siyu.tags.models import TagRefreshRead

NAME = "tags"
PEOPLE: dict[Scale, int] = {"small": 100_000, "full": 1_000_000}
REPEAT: dict[Scale, int] = {"small": 2, "full": 1}
END_DATE = date(2026, 11, 22)
TZ = ZoneInfo("Asia/Shanghai")
# The demo's convention: tags describe the brand at local midnight after its last day.
AS_OF = datetime.combine(END_DATE + timedelta(days=1), clock_time(0), TZ)
NEW_DAY_SHARE = 3  # percent of people with events on the appended day

SUBSET = (
    "orders_count_7d",
    "orders_count_30d",
    "orders_count_365d",
    "orders_count_all",
    "orders_amount_30d",
    "orders_amount_365d",
    "refunds_count_365d",
    "refund_amount_365d",
    "net_amount_365d",
    "aov_365d",
    "max_order_amount_365d",
    "last_order_date",
    "days_since_last_order",
    "first_order_category",
    "last_order_category",
    "top_category_365d",
    "categories_bought_365d",
    "coupon_orders_365d",
    "coupon_order_share_365d",
    "active_days_30d",
    "logins_30d",
    "messages_sent_wecom_90d",
    "messages_opened_wecom_90d",
    "open_rate_wecom_90d",
    "messages_sent_sms_90d",
    "unsubscribed_sms",
    "gender",
    "rfm_r",
    "rfm_f",
    "rfm_m",
)
MONEY = {
    "orders_amount_30d",
    "orders_amount_365d",
    "refund_amount_365d",
    "net_amount_365d",
    "aov_365d",
    "max_order_amount_365d",
}
RATIOS = {"coupon_order_share_365d", "open_rate_wecom_90d"}
TEXT = {"first_order_category", "last_order_category", "top_category_365d", "gender"}
DATES = {"last_order_date"}
BOOLS = {"unsubscribed_sms"}
SUBSET_EVENTS = sorted(
    {*ACTIVE_EVENTS, "refund", "message_sent", "message_opened", "unsubscribe", "identify"}
)


# -- siyu ----------------------------------------------------------------------------------------


def _refresh(
    database: Database, events: EventStore, *, as_of: datetime, mode: str = "full", keys: Any = None
) -> tuple[float, dict[str, float], TagRefreshRead]:
    """One refresh, committed; its seconds and the seconds of each step it reported."""
    marks: list[tuple[str, float]] = []
    with Stopwatch() as watch, database.unit_of_work() as session:
        marks.append(("setup", time.perf_counter()))
        run = tags.refresh(
            db_session=session,
            events=events,
            options=tags.RefreshOptions(tz=TZ, as_of=as_of, mode=mode, keys=keys),
            progress=lambda step, done, total: marks.append((step, time.perf_counter())),
        )
    marks.append(("commit", time.perf_counter()))
    steps = {
        step: round(marks[i + 1][1] - started, 3)
        for i, (step, started) in enumerate(marks[:-1])
        if step != "done"
    }
    steps["commit"] = round(watch.seconds - sum(steps.values()), 3)
    return watch.seconds, steps, run


def _siyu_subset(database: Database, events: EventStore) -> Callable[[], float]:
    """The subset's compute alone: what a full refresh materialises (the prepared events,
    then both stages in one query), without history, publish and stats."""
    with database.unit_of_work() as session:
        the_plan = plan(tags.active_definitions(session), required=SUBSET)
    clock = Clock(as_of=AS_OF, tz=TZ)

    def run() -> float:
        with Stopwatch() as watch:
            universe = events.table(identity.IDENTITY_MAP_TABLE).select("person_id").distinct()
            prepared = prepare_events(identity.person_events(events), the_plan.person, clock)
            events.materialize("bench_stage_events", prepared)
            sources = Sources(universe, events.table("bench_stage_events"))
            person = compile_person_stage(the_plan.person, sources, clock)
            complete = compile_population_stage(the_plan.population, person, clock)
            events.materialize("bench_siyu_subset", complete)
        events.publish(drop=["bench_stage_events"])
        return watch.seconds

    return run


# -- hand-written SQL ----------------------------------------------------------------------------


def _sql(clock: Clock) -> str:
    def since(days: int) -> str:
        return f"TIMESTAMPTZ '{clock.window_start(days).isoformat()}'"

    order, refund = "name = 'order_paid'", "name = 'refund'"
    names = ", ".join(f"'{n}'" for n in SUBSET_EVENTS)
    active = ", ".join(f"'{n}'" for n in ACTIVE_EVENTS)
    today = f"DATE '{clock.today.isoformat()}'"
    first_active_day = f"DATE '{(clock.today - timedelta(days=29)).isoformat()}'"
    gender = "nullif(properties ->> 'gender', '')"
    return f"""
CREATE OR REPLACE TABLE bench_sql_subset AS
WITH resolved AS (
    SELECT coalesce(u.person_id, d.person_id) AS person_id, e.event_id, e.name, e.ts,
           e.amount, e.category, e.channel, e.properties,
           (e.ts AT TIME ZONE '{clock.tz.key}')::DATE AS local_date
    FROM events e
    LEFT JOIN identity_map u ON u.key = e.user_id
    LEFT JOIN identity_map d ON d.key = 'anonymous_id:' || e.anonymous_id
    WHERE e.ts <= TIMESTAMPTZ '{clock.as_of.isoformat()}' AND e.name IN ({names})
),
per_person AS (
    SELECT person_id,
        count(*) FILTER ({order} AND ts >= {since(7)}) AS orders_count_7d,
        count(*) FILTER ({order} AND ts >= {since(30)}) AS orders_count_30d,
        count(*) FILTER ({order} AND ts >= {since(365)}) AS orders_count_365d,
        count(*) FILTER ({order}) AS orders_count_all,
        sum(amount) FILTER ({order} AND ts >= {since(30)}) AS orders_amount_30d,
        sum(amount) FILTER ({order} AND ts >= {since(365)}) AS orders_amount_365d,
        count(*) FILTER ({refund} AND ts >= {since(365)}) AS refunds_count_365d,
        sum(amount) FILTER ({refund} AND ts >= {since(365)}) AS refund_amount_365d,
        max(amount) FILTER ({order} AND ts >= {since(365)}) AS max_order_amount_365d,
        max(local_date) FILTER ({order}) AS last_order_date,
        arg_min(category, (ts, event_id)) FILTER ({order} AND category IS NOT NULL)
            AS first_order_category,
        arg_max(category, (ts, event_id)) FILTER ({order} AND category IS NOT NULL)
            AS last_order_category,
        count(DISTINCT category) FILTER ({order} AND ts >= {since(365)})
            AS categories_bought_365d,
        count(*) FILTER (
            {order} AND ts >= {since(365)} AND (properties ->> 'coupon_id') IS NOT NULL
        ) AS coupon_orders_365d,
        count(DISTINCT local_date) FILTER (name IN ({active}) AND local_date >= {first_active_day})
            AS active_days_30d,
        count(*) FILTER (name = 'login' AND ts >= {since(30)}) AS logins_30d,
        count(*) FILTER (name = 'message_sent' AND channel = 'wecom' AND ts >= {since(90)})
            AS messages_sent_wecom_90d,
        count(*) FILTER (name = 'message_opened' AND channel = 'wecom' AND ts >= {since(90)})
            AS messages_opened_wecom_90d,
        count(*) FILTER (name = 'message_sent' AND channel = 'sms' AND ts >= {since(90)})
            AS messages_sent_sms_90d,
        bool_or(name = 'unsubscribe' AND channel = 'sms') AS unsubscribed_sms,
        arg_max({gender}, (ts, event_id)) FILTER (name = 'identify' AND {gender} IS NOT NULL)
            AS gender
    FROM resolved WHERE person_id IS NOT NULL
    GROUP BY person_id
),
category_counts AS (
    SELECT person_id, category, count(*) AS n, max(ts) AS last_ts
    FROM resolved
    WHERE person_id IS NOT NULL AND {order} AND ts >= {since(365)} AND category IS NOT NULL
    GROUP BY person_id, category
),
top_category AS (
    SELECT person_id, category AS top_category_365d FROM category_counts
    QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY n DESC, last_ts DESC, category) = 1
),
people AS (SELECT DISTINCT person_id FROM identity_map),
base AS (
    SELECT p.person_id,
        coalesce(orders_count_7d, 0) AS orders_count_7d,
        coalesce(orders_count_30d, 0) AS orders_count_30d,
        coalesce(orders_count_365d, 0) AS orders_count_365d,
        coalesce(orders_count_all, 0) AS orders_count_all,
        coalesce(orders_amount_30d, 0) AS orders_amount_30d,
        coalesce(orders_amount_365d, 0) AS orders_amount_365d,
        coalesce(refunds_count_365d, 0) AS refunds_count_365d,
        coalesce(refund_amount_365d, 0) AS refund_amount_365d,
        coalesce(orders_amount_365d, 0) - coalesce(refund_amount_365d, 0) AS net_amount_365d,
        max_order_amount_365d, last_order_date,
        date_diff('day', last_order_date, {today}) AS days_since_last_order,
        first_order_category, last_order_category, top_category_365d,
        coalesce(categories_bought_365d, 0) AS categories_bought_365d,
        coalesce(coupon_orders_365d, 0) AS coupon_orders_365d,
        coalesce(active_days_30d, 0) AS active_days_30d,
        coalesce(logins_30d, 0) AS logins_30d,
        coalesce(messages_sent_wecom_90d, 0) AS messages_sent_wecom_90d,
        coalesce(messages_opened_wecom_90d, 0) AS messages_opened_wecom_90d,
        coalesce(messages_sent_sms_90d, 0) AS messages_sent_sms_90d,
        coalesce(unsubscribed_sms, false) AS unsubscribed_sms,
        gender
    FROM people p
    LEFT JOIN per_person USING (person_id)
    LEFT JOIN top_category USING (person_id)
)
SELECT *,
    round(orders_amount_365d::DOUBLE / nullif(orders_count_365d, 0), 2) AS aov_365d,
    round(coupon_orders_365d / nullif(orders_count_365d, 0), 4) AS coupon_order_share_365d,
    round(messages_opened_wecom_90d / nullif(messages_sent_wecom_90d, 0), 4)
        AS open_rate_wecom_90d,
    CASE WHEN days_since_last_order IS NOT NULL THEN ntile(5) OVER (
        PARTITION BY days_since_last_order IS NULL
        ORDER BY days_since_last_order DESC, person_id) END AS rfm_r,
    CASE WHEN orders_count_all > 0 THEN ntile(5) OVER (
        PARTITION BY orders_count_all > 0 ORDER BY orders_count_365d, person_id) END AS rfm_f,
    CASE WHEN orders_count_all > 0 THEN ntile(5) OVER (
        PARTITION BY orders_count_all > 0 ORDER BY net_amount_365d, person_id) END AS rfm_m
FROM base
"""


# -- pandas --------------------------------------------------------------------------------------


def _json_text(text: Any, key: str) -> str | None:
    """Like siyu's json_text: a JSON scalar as text, None when absent, null or nested."""
    if not isinstance(text, str):
        return None
    value = json.loads(text).get(key)
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _round(values: pd.Series, digits: int) -> pd.Series:
    """Half away from zero, as DuckDB's round (numpy rounds half to even)."""
    scale = 10.0**digits
    rounded: pd.Series = np.sign(values) * np.floor(values.abs() * scale + 0.5) / scale
    return rounded


def _ntile(values: pd.Series, tiles: int, *, desc: bool = False) -> pd.Series:
    """SQL NTILE over the non-null values ordered by (value, person id)."""
    known = values.dropna()
    ordered = pd.DataFrame({"v": known.to_numpy(), "pid": known.index}).sort_values(
        ["v", "pid"], ascending=[not desc, True]
    )
    total = len(ordered)
    if total == 0:
        return pd.Series(np.nan, index=values.index)
    tiles = min(tiles, total)
    size, large = total // tiles, total % tiles
    row = np.arange(total)
    cut = large * (size + 1)
    tile = np.where(row < cut, 1 + row // (size + 1), 1 + large + (row - cut) // size)
    return pd.Series(tile, index=ordered["pid"].to_numpy()).reindex(values.index)


def _pandas_subset(con: duckdb.DuckDBPyConnection, clock: Clock) -> pd.DataFrame:
    names = ", ".join(f"'{n}'" for n in SUBSET_EVENTS)
    ev = con.sql(
        "SELECT event_id, name, ts, user_id, anonymous_id, amount, category, channel, "
        "CASE WHEN name IN ('order_paid', 'identify') THEN properties END AS properties "
        f"FROM events WHERE name IN ({names})"
    ).df()
    keys = con.sql("SELECT key, person_id FROM identity_map").df()
    by_key = keys.set_index("key")["person_id"]
    person = ev["user_id"].map(by_key)
    ev["person_id"] = person.fillna(("anonymous_id:" + ev["anonymous_id"]).map(by_key))
    ev = ev[ev["person_id"].notna() & (ev["ts"] <= pd.Timestamp(clock.as_of))]
    ev = ev.drop(columns=["user_id", "anonymous_id"])
    ev["local_date"] = (ev["ts"] + clock.offset).dt.tz_localize(None).dt.normalize()

    def since(days: int) -> pd.Series:
        return ev["ts"] >= pd.Timestamp(clock.window_start(days))

    order, refund, identify = (ev["name"] == n for n in ("order_paid", "refund", "identify"))
    coupon = ev["properties"].where(order).map(lambda t: _json_text(t, "coupon_id"))
    flags = {
        "orders_count_7d": order & since(7),
        "orders_count_30d": order & since(30),
        "orders_count_365d": order & since(365),
        "orders_count_all": order,
        "refunds_count_365d": refund & since(365),
        "coupon_orders_365d": order & since(365) & coupon.notna(),
        "logins_30d": (ev["name"] == "login") & since(30),
        "messages_sent_wecom_90d": (ev["name"] == "message_sent")
        & (ev["channel"] == "wecom")
        & since(90),
        "messages_opened_wecom_90d": (ev["name"] == "message_opened")
        & (ev["channel"] == "wecom")
        & since(90),
        "messages_sent_sms_90d": (ev["name"] == "message_sent")
        & (ev["channel"] == "sms")
        & since(90),
        "unsubscribed_sms": (ev["name"] == "unsubscribe") & (ev["channel"] == "sms"),
    }
    frame = pd.DataFrame({"person_id": ev["person_id"], **flags})
    frame["orders_amount_30d"] = ev["amount"].where(order & since(30), 0.0)
    frame["orders_amount_365d"] = ev["amount"].where(order & since(365), 0.0)
    frame["refund_amount_365d"] = ev["amount"].where(refund & since(365), 0.0)
    frame["max_order_amount_365d"] = ev["amount"].where(order & since(365))
    frame["last_order_date"] = ev["local_date"].where(order)
    how = dict.fromkeys(flags, "sum") | {
        "orders_amount_30d": "sum",
        "orders_amount_365d": "sum",
        "refund_amount_365d": "sum",
        "max_order_amount_365d": "max",
        "last_order_date": "max",
    }
    how["unsubscribed_sms"] = "any"
    out = frame.groupby("person_id").agg(how)

    orders = ev[order & ev["category"].notna()].sort_values(["ts", "event_id"])
    by_person = orders.groupby("person_id")["category"]
    out["first_order_category"] = by_person.first()
    out["last_order_category"] = by_person.last()
    recent = orders[orders["ts"] >= pd.Timestamp(clock.window_start(365))]
    out["categories_bought_365d"] = recent.groupby("person_id")["category"].nunique()
    counted = (
        recent.groupby(["person_id", "category"])
        .agg(n=("event_id", "size"), last_ts=("ts", "max"))
        .reset_index()
        .sort_values(
            ["person_id", "n", "last_ts", "category"], ascending=[True, False, False, True]
        )
    )
    out["top_category_365d"] = counted.drop_duplicates("person_id").set_index("person_id")[
        "category"
    ]
    first_day = pd.Timestamp(clock.today - timedelta(days=29))
    active = ev[ev["name"].isin(ACTIVE_EVENTS) & (ev["local_date"] >= first_day)]
    out["active_days_30d"] = (
        active.drop_duplicates(["person_id", "local_date"])
        .groupby("person_id")["local_date"]
        .size()
    )
    ids = ev[identify].assign(gender=ev["properties"].where(identify).map(_gender_of))
    ids = ids[ids["gender"].notna()].sort_values(["ts", "event_id"])
    out["gender"] = ids.groupby("person_id")["gender"].last()

    people = pd.Index(keys["person_id"].unique(), name="person_id")
    out = out.reindex(people)
    zero = [c for c in out.columns if c not in TEXT | DATES | {"max_order_amount_365d"}]
    out[zero] = out[zero].fillna(0)
    out["unsubscribed_sms"] = out["unsubscribed_sms"].astype(bool)
    # Money is exact decimal in SQL; float sums carry noise that reorders equal amounts in
    # the quintiles, so drop it (amounts are whole cents).
    out["net_amount_365d"] = (out["orders_amount_365d"] - out["refund_amount_365d"]).round(2)
    out["days_since_last_order"] = (pd.Timestamp(clock.today) - out["last_order_date"]).dt.days
    share = out["orders_count_365d"].replace(0, np.nan)
    out["aov_365d"] = _round(out["orders_amount_365d"] / share, 2)
    out["coupon_order_share_365d"] = _round(out["coupon_orders_365d"] / share, 4)
    sent = out["messages_sent_wecom_90d"].replace(0, np.nan)
    out["open_rate_wecom_90d"] = _round(out["messages_opened_wecom_90d"] / sent, 4)
    buyer = out["orders_count_all"] > 0
    out["rfm_r"] = _ntile(out["days_since_last_order"], 5, desc=True)
    out["rfm_f"] = _ntile(out["orders_count_365d"].where(buyer), 5)
    out["rfm_m"] = _ntile(out["net_amount_365d"].where(buyer), 5)
    return out.reset_index()


def _gender_of(text: Any) -> str | None:
    value = _json_text(text, "gender")
    return value or None


# -- agreement -----------------------------------------------------------------------------------


def _mismatches(expected: pd.DataFrame, actual: pd.DataFrame) -> dict[str, Any]:
    """Cells that differ per tag (money to 0.005, ratios 1e-9 relative, nulls equal)."""
    left = expected.set_index("person_id").sort_index()
    right = actual.set_index("person_id").reindex(left.index)
    found: dict[str, Any] = {}
    if len(right.index) != len(actual):
        found["people"] = {"expected": len(left), "actual": len(actual)}
    for key in SUBSET:
        a, b = left[key], right[key]
        if key in TEXT:
            a, b = a.astype(object).where(a.notna()), b.astype(object).where(b.notna())
            bad = ~((a == b) | (a.isna() & b.isna()))
        else:
            if key in DATES:
                a = pd.to_datetime(a).dt.normalize()
                b = pd.to_datetime(b).dt.normalize()
                x = (a - pd.Timestamp("1970-01-01")).dt.days.to_numpy(dtype=float, na_value=np.nan)
                y = (b - pd.Timestamp("1970-01-01")).dt.days.to_numpy(dtype=float, na_value=np.nan)
            else:
                x = pd.to_numeric(a.astype(object), errors="coerce").to_numpy(
                    float, na_value=np.nan
                )
                y = pd.to_numeric(b.astype(object), errors="coerce").to_numpy(
                    float, na_value=np.nan
                )
            if key in MONEY:
                close = np.abs(x - y) <= 0.005
            elif key in RATIOS:
                close = np.abs(x - y) <= 1e-9 * np.maximum(np.abs(x), np.abs(y))
            else:
                close = x == y
            bad = pd.Series(~(close | (np.isnan(x) & np.isnan(y))), index=left.index)
        if bad.any():
            where = bad[bad].index[0]
            found[key] = {
                "cells": int(bad.sum()),
                "example": {"person_id": where, "expected": a[where], "actual": b[where]},
            }
    return found


# -- incremental ---------------------------------------------------------------------------------


def _append_new_day(con: duckdb.DuckDBPyConnection, events: EventStore, watermark: datetime) -> int:
    """~3% of people do again what they did on their last active day, one day after the
    brand's last day, received after the last refresh's watermark."""
    new_day = END_DATE + timedelta(days=1)
    rows = con.sql(f"""
        WITH resolved AS (
            SELECT e.*, coalesce(u.person_id, d.person_id) AS person_id,
                   (e.ts AT TIME ZONE '{TZ.key}')::DATE AS local_date
            FROM events e
            LEFT JOIN identity_map u ON u.key = e.user_id
            LEFT JOIN identity_map d ON d.key = 'anonymous_id:' || e.anonymous_id
            WHERE e.name NOT IN ('identify', 'alias', 'register')
        ),
        chosen AS (
            SELECT person_id, max(local_date) AS last_day FROM resolved
            WHERE person_id IS NOT NULL AND hash(person_id) % 100 < {NEW_DAY_SHARE}
            GROUP BY person_id
        ),
        copied AS (
            SELECT r.* EXCLUDE (person_id, local_date),
                   r.ts + to_days(CAST(DATE '{new_day}' - c.last_day AS INTEGER)) AS new_ts
            FROM resolved r JOIN chosen c
              ON r.person_id = c.person_id AND r.local_date = c.last_day
        )
        SELECT * EXCLUDE (new_ts) REPLACE (
            'new-' || event_id AS event_id,
            new_ts AS ts,
            greatest(new_ts + (received_at - ts),
                     TIMESTAMPTZ '{watermark.isoformat()}' + INTERVAL 1 SECOND) AS received_at
        )
        FROM copied
    """).to_arrow_table()
    return events.append(rows).inserted


def _incremental_drift(con: duckdb.DuckDBPyConnection, population: set[str]) -> dict[str, Any]:
    """Incremental vs full values over the same data: cells that differ for the people with
    new events (should be none), and for the others (stale by design: not recomputed)."""
    columns = [
        c
        for c in con.sql("SELECT * FROM tag_values LIMIT 0").columns
        if c != "person_id" and c not in population
    ]
    checks = ", ".join(
        f'count(*) FILTER (i."{c}" IS DISTINCT FROM f."{c}") AS "{c}"' for c in columns
    )
    result: dict[str, Any] = {}
    for label, condition in (("affected", "IN"), ("unaffected", "NOT IN")):
        row = con.sql(f"""
            SELECT {checks} FROM bench_incremental_values i JOIN tag_values f USING (person_id)
            WHERE person_id {condition} (SELECT person_id FROM bench_affected)
        """).fetchone()
        differing = {c: int(n) for c, n in zip(columns, row or (), strict=True) if n}
        result[label] = {"cells": sum(differing.values()), "tags": differing}
    return result


# -- run -----------------------------------------------------------------------------------------


def run(scale: Scale) -> Result:
    people = PEOPLE[scale]
    spec = DemoSpec(people=people, days=365, seed=21, end_date=END_DATE)
    figures: dict[str, Any] = {"people_generated": people}
    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
        folder = Path(tmp)
        events = open_event_store(f"duckdb:///{folder / 'events.duckdb'}")
        with phase(f"generate {people:,} people"):
            figures["events"] = write_events(spec, events)["events"]
        database = open_database(f"sqlite:///{folder / 'siyu.db'}")
        upgrade(database)
        with phase("resolve identities"), database.unit_of_work() as session:
            identity.resolve(
                db_session=session, events=events, hash_key=identity.derive_hash_key("b" * 40)
            )
        con = duckdb.connect(str(folder / "events.duckdb"))  # the store's database instance
        con.execute("SET TimeZone = 'UTC'")

        # A: the whole library.
        with PeakRss() as rss:
            full_s, full_steps, first = _refresh(database, events, as_of=AS_OF)
        figures |= {
            "people": first.people,
            "tags": len(first.tags),
            "full_s": full_s,
            "full_steps_s": full_steps,
            "full_peak_rss_mb": rss.peak_mb,
        }
        progress(f"A full refresh: {len(first.tags)} tags, {first.people:,} people, {full_s:.1f} s")
        progress(f"  steps: {full_steps}")

        # B: 30 tags three ways, in turns.
        clock = Clock(as_of=AS_OF, tz=TZ)
        sql = _sql(clock)
        frames: dict[str, pd.DataFrame] = {}
        subset_steps: dict[str, float] = {}

        def subset_refresh() -> float:
            seconds, steps, _ = _refresh(database, events, as_of=AS_OF, keys=SUBSET)
            subset_steps.update(steps)
            return seconds

        def hand_sql() -> float:
            with Stopwatch() as watch:
                con.execute(sql)
            return watch.seconds

        def plain_pandas() -> float:
            with Stopwatch() as watch:
                frames["pandas"] = _pandas_subset(con, clock)
            return watch.seconds

        timings = alternate(
            {
                "siyu": _siyu_subset(database, events),
                "siyu_refresh": subset_refresh,
                "sql": hand_sql,
                "pandas": plain_pandas,
            },
            repeat=REPEAT[scale],
        )
        columns = ", ".join(["person_id", *SUBSET])
        siyu_values = con.sql(f"SELECT {columns} FROM bench_siyu_subset").df()
        published = con.sql(f"SELECT {columns} FROM tag_values").df()
        sql_values = con.sql(f"SELECT {columns} FROM bench_sql_subset").df()
        mismatches = {
            "siyu_vs_sql": _mismatches(siyu_values, sql_values),
            "siyu_vs_pandas": _mismatches(siyu_values, frames["pandas"]),
            "siyu_vs_published": _mismatches(siyu_values, published),
        }
        for label, found in mismatches.items():
            progress(f"B {label}: {json.dumps(found, default=str, ensure_ascii=False) or 'none'}")
        best = {name: timing.best for name, timing in timings.items()}
        figures |= {
            "subset_tags": len(SUBSET),
            "subset_s": {name: timing.as_dict() for name, timing in timings.items()},
            "subset_refresh_steps_s": subset_steps,
            "mismatches": mismatches,
        }
        progress(
            f"B subset best of {REPEAT[scale]}: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in best.items())
        )

        # C: one more day of events for ~3% of people, then incremental vs full.
        # Nothing arrived since the last refresh, so its watermark is the latest arrival.
        latest = con.sql("SELECT max(received_at) FROM events").to_arrow_table()
        watermark: datetime = latest.column(0)[0].as_py()
        figures["new_day_events"] = _append_new_day(con, events, watermark)
        con.execute(f"""
            CREATE OR REPLACE TABLE bench_affected AS
            SELECT DISTINCT coalesce(u.person_id, d.person_id) AS person_id FROM events e
            LEFT JOIN identity_map u ON u.key = e.user_id
            LEFT JOIN identity_map d ON d.key = 'anonymous_id:' || e.anonymous_id
            WHERE e.received_at > TIMESTAMPTZ '{watermark.isoformat()}'
        """)
        next_day = AS_OF + timedelta(days=1)
        incremental_s, incremental_steps, inc = _refresh(
            database, events, as_of=next_day, mode="incremental"
        )
        con.execute("CREATE OR REPLACE TABLE bench_incremental_values AS FROM tag_values")
        again_s, again_steps, _ = _refresh(database, events, as_of=next_day)
        with database.unit_of_work() as session:
            population = {d.key for d in plan(tags.active_definitions(session)).population}
        drift = _incremental_drift(con, population)
        progress(
            f"C {figures['new_day_events']:,} new events, {inc.people:,} people recomputed "
            f"({inc.mode}): {incremental_s:.1f} s; full again {again_s:.1f} s; drift {drift}"
        )
        figures |= {
            "incremental_mode": inc.mode,
            "incremental_people": inc.people,
            "affected_people": con.sql("SELECT count(*) FROM bench_affected").fetchone()[0],  # type: ignore[index]
            "incremental_s": incremental_s,
            "incremental_steps_s": incremental_steps,
            "full_same_data_s": again_s,
            "full_same_data_steps_s": again_steps,
            "incremental_drift": drift,
        }
        con.close()
        database.dispose()
        events.close()

    ratios = {
        "siyu/sql (subset)": best["siyu"] / best["sql"],
        "siyu refresh/sql (subset)": best["siyu_refresh"] / best["sql"],
        "pandas/siyu (subset)": best["pandas"] / best["siyu"],
        "pandas/siyu refresh (subset)": best["pandas"] / best["siyu_refresh"],
        "incremental/full": incremental_s / again_s,
        "incremental/first full": incremental_s / full_s,
    }
    agree = not any(mismatches.values())
    figures["agree"] = agree
    targets = [
        Target("subset siyu/sql", ratios["siyu/sql (subset)"], 1.5, "<="),
        Target("subset pandas/siyu", ratios["pandas/siyu (subset)"], 10.0, ">="),
        Target("incremental/full", ratios["incremental/full"], 0.2, "<="),
        Target("subset values agree", float(agree), 1.0, ">="),
    ]
    if scale == "full":
        targets += [
            Target("full refresh s", full_s, 60.0, "<="),
            Target("full refresh peak RSS MiB", rss.peak_mb, 4096.0, "<="),
        ]
    return record(
        NAME,
        figures,
        scale=scale,
        ratios=ratios,
        targets=targets,
        headline=("people", "tags", "events", "full_s", "full_peak_rss_mb", "incremental_s"),
    )
