"""Metric overview: the 17 overview metrics for October 2026 with the previous period and the
same month last year, and a daily series for each, as the console's overview asks for them.

siyu computes every measure in one fused two-level aggregation per scan (per person, then per
period or day), first-seen dates and active person-days once for the history metrics. The
baseline is hand-written DuckDB SQL producing the same numbers: one query over the three
periods, one for the daily series, one for first-seen, retention and churn. The two must
agree on the current values. Target (full: 1M people, ~20M events): under 5 s and at most
1.5× the hand-written SQL.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.brand import END, open_brand
from bench.harness import Result, Scale, Stopwatch, Target, alternate, phase, progress, record
from siyu.analytics import metrics
from siyu.analytics.common import RESULTS, Period
from siyu.events import EventStore

NAME = "metrics"
TARGET_SECONDS = 5.0
TARGET_RATIO = 1.5
SHANGHAI = ZoneInfo("Asia/Shanghai")
PERIOD = Period(date(2026, 10, 1), date(2026, 10, 31), SHANGHAI)
CHECKED = (
    "total_people", "new_people", "dau", "mau", "net_contacts", "open_rate", "click_rate",
    "visit_to_order", "coupon_redemption", "retention_d7", "repurchase_rate", "churn_rate",
    "gmv", "orders", "aov", "arpu", "private_gmv_share",
)  # fmt: skip


def _periods() -> list[tuple[str, date, date]]:
    previous, year_ago = PERIOD.previous(), PERIOD.year_ago()
    return [
        ("current", PERIOD.start, PERIOD.end),
        ("previous", previous.start, previous.end),
        ("year_ago", year_ago.start, year_ago.end),
    ]


def _values_sql() -> str:
    periods = ", ".join(
        f"('{label}', DATE '{first}', DATE '{last}', {(last - first).days + 1}, "
        f"{len({(first + timedelta(d)).replace(day=1) for d in range((last - first).days + 1)})})"
        for label, first, last in _periods()
    )
    private = ", ".join(f"'{c}'" for c in metrics.PRIVATE_CHANNELS)
    return f"""
WITH ev AS (
  SELECT coalesce(u.person_id, d.person_id) AS person_id, e.name, e.channel, e.amount,
         CAST(e.ts + INTERVAL 8 HOUR AS DATE) AS day
  FROM events e
  LEFT JOIN identity_map u ON u.key = e.user_id
  LEFT JOIN identity_map d ON d.key = 'anonymous_id:' || e.anonymous_id
  WHERE e.channel IS NULL OR e.channel <> 'system'
),
periods(label, first, last, n_days, n_months) AS (VALUES {periods}),
pp AS (
  SELECT p.label, p.n_days, p.n_months, e.person_id,
    count(DISTINCT e.day) AS days,
    count(DISTINCT date_trunc('month', e.day)) AS months,
    count(DISTINCT e.day) FILTER (WHERE e.name IN ('page_view', 'product_view', 'search',
                                                   'login')) AS visit_days,
    count(*) FILTER (WHERE e.name = 'order_paid') AS orders,
    coalesce(sum(e.amount) FILTER (WHERE e.name = 'order_paid'), 0) AS gmv,
    coalesce(sum(e.amount) FILTER (WHERE e.name = 'order_paid'
                                   AND e.channel IN ({private})), 0) AS private_gmv,
    count(*) FILTER (WHERE e.name = 'wecom_add_contact') AS adds,
    count(*) FILTER (WHERE e.name = 'wecom_delete_contact') AS removes,
    count(*) FILTER (WHERE e.name = 'message_delivered') AS delivered,
    count(*) FILTER (WHERE e.name = 'message_opened') AS opened,
    count(*) FILTER (WHERE e.name = 'message_clicked') AS clicked,
    count(*) FILTER (WHERE e.name = 'coupon_claim') AS claimed,
    count(*) FILTER (WHERE e.name = 'coupon_use') AS used
  FROM ev e JOIN periods p ON e.day BETWEEN p.first AND p.last
  WHERE e.person_id IS NOT NULL
  GROUP BY ALL
)
SELECT label,
  sum(days) / any_value(n_days) AS dau,
  sum(months) / any_value(n_months) AS mau,
  sum(adds) - sum(removes) AS net_contacts,
  sum(opened) / nullif(sum(delivered), 0) AS open_rate,
  sum(clicked) / nullif(sum(delivered), 0) AS click_rate,
  count(*) FILTER (WHERE orders > 0) / nullif(count(*) FILTER (WHERE visit_days > 0), 0)
    AS visit_to_order,
  sum(used) / nullif(sum(claimed), 0) AS coupon_redemption,
  count(*) FILTER (WHERE orders >= 2) / nullif(count(*) FILTER (WHERE orders > 0), 0)
    AS repurchase_rate,
  sum(gmv) AS gmv, sum(orders) AS orders, sum(gmv) / nullif(sum(orders), 0) AS aov,
  sum(gmv) / nullif(count(*) FILTER (WHERE days > 0), 0) AS arpu,
  sum(private_gmv) / nullif(sum(gmv), 0) AS private_gmv_share
FROM pp GROUP BY label
"""


def _history_sql() -> str:
    """New and total people, D7 retention of the new ones, churn: current period."""
    previous = PERIOD.previous()
    until = min(PERIOD.end, END) - timedelta(days=7)
    return f"""
WITH ev AS (
  SELECT coalesce(u.person_id, d.person_id) AS person_id,
         CAST(e.ts + INTERVAL 8 HOUR AS DATE) AS day
  FROM events e
  LEFT JOIN identity_map u ON u.key = e.user_id
  LEFT JOIN identity_map d ON d.key = 'anonymous_id:' || e.anonymous_id
  WHERE (e.channel IS NULL OR e.channel <> 'system')
    AND e.ts < TIMESTAMPTZ '{PERIOD.end_utc.isoformat()}' + INTERVAL 30 DAY
),
known AS (SELECT DISTINCT person_id, day FROM ev WHERE person_id IS NOT NULL),
first AS (SELECT person_id, min(day) AS first_day FROM known GROUP BY 1),
cohort AS (SELECT * FROM first WHERE first_day BETWEEN DATE '{PERIOD.start}' AND DATE '{until}'),
before AS (SELECT DISTINCT person_id FROM known
           WHERE day BETWEEN DATE '{previous.start}' AND DATE '{previous.end}'),
now AS (SELECT DISTINCT person_id FROM known
        WHERE day BETWEEN DATE '{PERIOD.start}' AND DATE '{PERIOD.end}')
SELECT
  (SELECT count(*) FROM first WHERE first_day <= DATE '{PERIOD.end}') AS total_people,
  (SELECT count(*) FROM first WHERE first_day BETWEEN DATE '{PERIOD.start}'
                                                  AND DATE '{PERIOD.end}') AS new_people,
  (SELECT count(*) FROM cohort c JOIN known k
     ON k.person_id = c.person_id AND k.day = c.first_day + 7)
   / nullif((SELECT count(*) FROM cohort), 0) AS retention_d7,
  (SELECT count(*) FROM before b WHERE b.person_id NOT IN (SELECT person_id FROM now))
   / nullif((SELECT count(*) FROM before), 0) AS churn_rate
"""


def _series_sql() -> str:
    return f"""
WITH ev AS (
  SELECT coalesce(u.person_id, d.person_id) AS person_id, e.name, e.amount,
         CAST(e.ts + INTERVAL 8 HOUR AS DATE) AS day
  FROM events e
  LEFT JOIN identity_map u ON u.key = e.user_id
  LEFT JOIN identity_map d ON d.key = 'anonymous_id:' || e.anonymous_id
  WHERE (e.channel IS NULL OR e.channel <> 'system')
    AND e.ts >= TIMESTAMPTZ '{PERIOD.start_utc.isoformat()}'
    AND e.ts < TIMESTAMPTZ '{PERIOD.end_utc.isoformat()}'
)
SELECT day, count(DISTINCT person_id) AS dau,
  count(*) FILTER (WHERE name = 'order_paid') AS orders,
  sum(amount) FILTER (WHERE name = 'order_paid') AS gmv
FROM ev WHERE person_id IS NOT NULL GROUP BY day ORDER BY day
"""


def _siyu(events: EventStore, found: list[dict[str, Any]]) -> float:
    RESULTS.clear()  # time the computation, not the cache
    with Stopwatch() as watch:
        result = metrics.compute(events, PERIOD, metrics.MetricQuery(metrics=list(CHECKED)),
                                 last_day=END)  # fmt: skip
    found.append({m.key: m.value for m in result.metrics})
    return watch.seconds


def _baseline(events: EventStore, found: list[dict[str, Any]]) -> float:
    table = events.table()
    with Stopwatch() as watch:
        values = table.sql(_values_sql()).to_pyarrow().to_pylist()  # type: ignore[attr-defined]
        history = table.sql(_history_sql()).to_pyarrow().to_pylist()  # type: ignore[attr-defined]
        table.sql(_series_sql()).to_pyarrow()  # type: ignore[attr-defined]
    current = next(row for row in values if row["label"] == "current")
    found.append({**current, **history[0]})
    return watch.seconds


def _agree(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    wrong = []
    for key in CHECKED:
        a, b = ours.get(key), theirs.get(key)
        if a is None or b is None:
            if (a is None) != (b is None):
                wrong.append(key)
        elif abs(float(a) - float(b)) > 1e-9 * max(1.0, abs(float(b))):
            wrong.append(key)
    return wrong


def run(scale: Scale) -> Result:
    with phase("open the cached brand"):
        events = open_brand(scale)
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    try:
        timings = alternate(
            {"siyu": lambda: _siyu(events, ours), "baseline": lambda: _baseline(events, theirs)},
            repeat=3,
        )
    finally:
        events.close()
    wrong = _agree(ours[0], theirs[0])
    progress(f"metrics that differ from the SQL: {wrong or 'none'}")
    siyu_s, baseline_s = timings["siyu"].best, timings["baseline"].best
    ratio = siyu_s / baseline_s
    figures = {
        "metrics": len(CHECKED),
        "gmv": float(ours[0]["gmv"] or 0),
        "dau": float(ours[0]["dau"] or 0),
        "values_agree": not wrong,
        "siyu_overview_s": siyu_s,
        "baseline_sql_s": baseline_s,
    }
    targets = [Target("same values as the SQL (1 = yes)", float(not wrong), 1.0, ">=")]
    if scale == "full":
        targets.append(Target("overview s", siyu_s, TARGET_SECONDS, "<"))
        targets.append(Target("siyu/hand-written SQL", ratio, TARGET_RATIO, "<="))
    return record(
        NAME,
        figures,
        scale=scale,
        ratios={"siyu/hand-written SQL (time)": ratio},
        targets=targets,
        headline=("metrics", "values_agree", "siyu_overview_s", "baseline_sql_s"),
    )
