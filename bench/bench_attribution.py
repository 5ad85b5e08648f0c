"""Attribution: 90 days of conversions credited linearly over a 30-day lookback.

siyu compiles the rule-based models to one Ibis query (touchpoints with their visit repeats
dropped, conversions joined to them in the window, window functions for the weights); the
baseline is the same linear attribution written by hand in DuckDB SQL, in the same run, and
the two must agree per channel. Target (full: 1M people, ~20M events): under 10 s and at most
1.5× the hand-written SQL.
"""

from __future__ import annotations

import time
from datetime import date
from zoneinfo import ZoneInfo

from bench.brand import END, open_brand
from bench.harness import Result, Scale, Stopwatch, Target, progress, record
from siyu.analytics.attribution import AttributionQuery, Model, attribute
from siyu.analytics.common import RESULTS
from siyu.analytics.common import local_midnight as midnight

NAME = "attribution"
TARGET_SECONDS = 10.0
TARGET_RATIO = 1.5
SHANGHAI = ZoneInfo("Asia/Shanghai")
START = date(2026, 8, 25)  # 90 days ending on the brand's last day

LO = midnight(START, SHANGHAI).isoformat()
HI = midnight(date(2026, 11, 23), SHANGHAI).isoformat()
BASELINE_SQL = f"""
WITH ev AS (
  SELECT coalesce(u.person_id, d.person_id) AS person_id, e.*
  FROM events e
  LEFT JOIN identity_map u ON u.key = e.user_id
  LEFT JOIN identity_map d ON d.key = 'anonymous_id:' || e.anonymous_id
  WHERE e.ts >= TIMESTAMPTZ '{LO}' - INTERVAL 30 DAY - INTERVAL 30 MINUTE
    AND e.ts < TIMESTAMPTZ '{HI}'
),
keyed AS (
  SELECT person_id, event_id, ts, name, amount,
    CASE
      WHEN name = 'message_clicked' THEN coalesce(nullif(properties->>'channel', ''),
        nullif(channel, ''), 'message')
      WHEN name = 'ad_click' THEN coalesce(nullif(properties->>'channel', ''),
        nullif(properties->>'source', ''), nullif(properties->>'platform', ''),
        nullif(utm_source, ''), 'ad')
      WHEN nullif(utm_source, '') IS NOT NULL OR nullif(utm_campaign, '') IS NOT NULL
        THEN coalesce(nullif(utm_source, ''), nullif(channel, ''), '(unknown)')
      WHEN nullif(scene, '') IS NOT NULL
        THEN coalesce(nullif(channel, ''), '(unknown)') || ':' || scene
    END AS source,
    CASE
      WHEN name = 'message_clicked' THEN coalesce(nullif(properties->>'campaign_id', ''),
        nullif(properties->>'campaign', ''), nullif(properties->>'journey_id', ''),
        nullif(properties->>'journey', ''), nullif(utm_campaign, ''))
      WHEN name = 'ad_click' THEN coalesce(nullif(properties->>'campaign_id', ''),
        nullif(properties->>'campaign', ''), nullif(utm_campaign, ''))
      ELSE nullif(utm_campaign, '')
    END AS campaign
  FROM ev
  WHERE person_id IS NOT NULL AND (channel IS NULL OR channel <> 'system')
),
raw AS (
  SELECT *, lag(ts) OVER w AS prev_ts, lag(source) OVER w AS prev_source,
    lag(campaign) OVER w AS prev_campaign
  FROM keyed WHERE source IS NOT NULL
  WINDOW w AS (PARTITION BY person_id ORDER BY ts, event_id)
),
touches AS (
  SELECT person_id, event_id, ts, source FROM raw
  WHERE NOT (prev_ts IS NOT NULL AND prev_source = source
             AND coalesce(prev_campaign, '') = coalesce(campaign, '')
             AND ts - prev_ts <= INTERVAL 30 MINUTE)
    AND ts >= TIMESTAMPTZ '{LO}' - INTERVAL 30 DAY
),
conv AS (
  SELECT person_id, event_id, ts, coalesce(CAST(amount AS DOUBLE), 0) AS revenue
  FROM ev WHERE name = 'order_paid' AND person_id IS NOT NULL
    AND ts >= TIMESTAMPTZ '{LO}' AND ts < TIMESTAMPTZ '{HI}'
),
pairs AS (
  SELECT c.event_id AS cid, c.revenue, t.source,
    count(*) OVER (PARTITION BY c.event_id) AS n
  FROM conv c JOIN touches t ON t.person_id = c.person_id
    AND t.ts <= c.ts AND t.ts >= c.ts - INTERVAL 30 DAY
)
SELECT source AS channel, sum(1.0 / n) AS conversions, sum(revenue / n) AS revenue
FROM pairs GROUP BY source
UNION ALL
SELECT '(direct)', count(*), sum(revenue) FROM conv
WHERE event_id NOT IN (SELECT cid FROM pairs)
"""


def run(scale: Scale) -> Result:
    events = open_brand(scale)
    query = AttributionQuery(start=START, end=END, models=[Model.linear], window="30d")
    siyu_runs, baseline_runs = [], []
    agree = True
    for _ in range(3):
        RESULTS.clear()
        with Stopwatch() as watch:
            result = attribute(events, query, tz=SHANGHAI)
        siyu_runs.append(watch.seconds)
        started = time.perf_counter()
        baseline = events.table().sql(BASELINE_SQL).to_pyarrow().to_pylist()
        baseline_runs.append(time.perf_counter() - started)
        mine = {r.channel: r.credits[Model.linear] for r in result.channels}
        theirs = {r["channel"]: (r["conversions"], r["revenue"]) for r in baseline}
        agree = agree and set(mine) == set(theirs)
        for channel, (count, revenue) in theirs.items():
            credit = mine.get(channel)
            agree = agree and credit is not None
            if credit is not None:
                agree = agree and abs(credit.conversions - float(count)) < 1e-3
                agree = agree and abs(credit.revenue - float(revenue)) < 0.05 * max(1, len(mine))
    progress(f"{result.conversions:,} conversions, {len(result.channels)} channels")
    events.close()
    siyu_s, baseline_s = min(siyu_runs), min(baseline_runs)
    figures = {
        "conversions": result.conversions,
        "touched": result.touched_conversions,
        "channels": len(result.channels),
        "agree": agree,
        "siyu_s": siyu_s,
        "baseline_sql_s": baseline_s,
    }
    ratio = siyu_s / baseline_s
    targets = [Target("same credit as the SQL (1 = yes)", float(agree), 1.0, ">=")]
    if scale == "full":
        targets.append(Target("90-day linear attribution s", siyu_s, TARGET_SECONDS, "<"))
        targets.append(Target("siyu/hand-written SQL", ratio, TARGET_RATIO, "<="))
    return record(
        NAME,
        figures,
        scale=scale,
        ratios={"siyu/hand-written SQL (time)": ratio},
        targets=targets,
        headline=("conversions", "channels", "agree", "siyu_s", "baseline_sql_s"),
    )
