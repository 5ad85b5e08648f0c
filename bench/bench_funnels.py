"""Funnel: product_view → add_to_cart → checkout → order_paid within 7 days, entries in
October 2026, over the cached generated brand, as operators run it.

siyu compiles the funnel to window functions over the person-resolved events (furthest step
from any entry, ties in funnel order). The baseline is one hand-written DuckDB query of the
same funnel: each step found by an ASOF join (the first event of the next step at or after
the previous one), per person the furthest step. With four distinct step names the two
definitions agree exactly. Target (full: 1M people, ~20M events): under 3 s and at most 1.5×
the hand-written SQL.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from bench.brand import open_brand
from bench.harness import Result, Scale, Stopwatch, Target, alternate, phase, progress, record
from siyu.analytics import funnels
from siyu.analytics.common import RESULTS
from siyu.events import EventStore

NAME = "funnels"
TARGET_SECONDS = 3.0
TARGET_RATIO = 1.5
SHANGHAI = ZoneInfo("Asia/Shanghai")
STEPS = ["product_view", "add_to_cart", "checkout", "order_paid"]
DEFINITION = funnels.FunnelDefinition.model_validate(
    {
        "steps": [{"event": name} for name in STEPS],
        "window": "7d",
        "start": date(2026, 10, 1),
        "end": date(2026, 10, 31),
    }
)
# 2026-10-01 00:00 Shanghai is 2026-09-30 16:00 UTC; the period ends 2026-10-31 16:00 UTC and
# later steps may come up to 7 days after that.
BASELINE_SQL = """
WITH ev AS (
  SELECT coalesce(u.person_id, d.person_id) AS person_id, e.name, e.ts
  FROM events e
  LEFT JOIN identity_map u ON u.key = e.user_id
  LEFT JOIN identity_map d ON d.key = 'anonymous_id:' || e.anonymous_id
  WHERE e.name IN ('product_view', 'add_to_cart', 'checkout', 'order_paid')
    AND e.ts >= TIMESTAMPTZ '2026-09-30 16:00:00+00'
    AND e.ts < TIMESTAMPTZ '2026-11-07 16:00:00+00'
),
s1 AS (SELECT person_id, ts AS t1 FROM ev WHERE person_id IS NOT NULL
       AND name = 'product_view' AND ts < TIMESTAMPTZ '2026-10-31 16:00:00+00'),
s2 AS (SELECT person_id, ts FROM ev WHERE person_id IS NOT NULL AND name = 'add_to_cart'),
s3 AS (SELECT person_id, ts FROM ev WHERE person_id IS NOT NULL AND name = 'checkout'),
s4 AS (SELECT person_id, ts FROM ev WHERE person_id IS NOT NULL AND name = 'order_paid'),
c2 AS (SELECT s1.person_id, s1.t1, s2.ts AS t2 FROM s1
       ASOF LEFT JOIN s2 ON s1.person_id = s2.person_id AND s2.ts >= s1.t1),
c3 AS (SELECT c2.*, s3.ts AS t3 FROM c2
       ASOF LEFT JOIN s3 ON c2.person_id = s3.person_id AND s3.ts >= c2.t2),
c4 AS (SELECT c3.*, s4.ts AS t4 FROM c3
       ASOF LEFT JOIN s4 ON c3.person_id = s4.person_id AND s4.ts >= c3.t3),
attempts AS (
  SELECT person_id,
    CASE WHEN NOT ok2 THEN 1 WHEN NOT ok3 THEN 2 WHEN NOT ok4 THEN 3 ELSE 4 END AS reached
  FROM (
    SELECT person_id,
      coalesce(t2 <= t1 + INTERVAL 7 DAY, false) AS ok2,
      coalesce(t3 <= t1 + INTERVAL 7 DAY, false) AS ok3,
      coalesce(t4 <= t1 + INTERVAL 7 DAY, false) AS ok4
    FROM c4
  )
),
people AS (SELECT person_id, max(reached) AS reached FROM attempts GROUP BY person_id)
SELECT count(*) AS c1, count(*) FILTER (WHERE reached >= 2) AS c2,
  count(*) FILTER (WHERE reached >= 3) AS c3, count(*) FILTER (WHERE reached >= 4) AS c4
FROM people
"""


def _siyu(events: EventStore, found: set[tuple[int, ...]]) -> float:
    RESULTS.clear()
    with Stopwatch() as watch:
        result = funnels.compute(events, DEFINITION, tz=SHANGHAI)
    found.add(tuple(step.count for step in result.steps))
    return watch.seconds


def _baseline(events: EventStore, found: set[tuple[int, ...]]) -> float:
    with Stopwatch() as watch:
        table = events.table().sql(BASELINE_SQL).to_pyarrow()
    found.add(tuple(int(table.column(c)[0].as_py()) for c in ("c1", "c2", "c3", "c4")))
    return watch.seconds


def run(scale: Scale) -> Result:
    with phase("open the cached brand"):
        events = open_brand(scale)
    siyu_counts: set[tuple[int, ...]] = set()
    baseline_counts: set[tuple[int, ...]] = set()
    try:
        timings = alternate(
            {
                "siyu": lambda: _siyu(events, siyu_counts),
                "baseline": lambda: _baseline(events, baseline_counts),
            },
            repeat=3,
        )
    finally:
        events.close()
    agree = siyu_counts == baseline_counts and len(siyu_counts) == 1
    progress(f"siyu {sorted(siyu_counts)} / hand-written {sorted(baseline_counts)}")
    siyu_s, baseline_s = timings["siyu"].best, timings["baseline"].best
    counts = min(siyu_counts)
    figures = {
        "entered": counts[0],
        "converted": counts[-1],
        "step_counts": list(counts),
        "counts_agree": agree,
        "siyu_funnel_s": siyu_s,
        "baseline_sql_s": baseline_s,
    }
    ratio = siyu_s / baseline_s
    targets = [Target("same step counts as the SQL (1 = yes)", float(agree), 1.0, ">=")]
    if scale == "full":
        targets.append(Target("funnel s", siyu_s, TARGET_SECONDS, "<"))
        targets.append(Target("siyu/hand-written SQL", ratio, TARGET_RATIO, "<="))
    return record(
        NAME,
        figures,
        scale=scale,
        ratios={"siyu/hand-written SQL (time)": ratio},
        targets=targets,
        headline=("entered", "converted", "counts_agree", "siyu_funnel_s", "baseline_sql_s"),
    )
