"""Retention: 12-week retention of weekly cohorts (first event ever → any later event), cohorts
of the 13 weeks ending on the brand's last day, over the cached generated brand.

siyu finds each person's first occurrence by a group-by over the person-resolved events and
the returns by a join on the person with week arithmetic (Ibis, one query). The baseline is the
same analysis hand-written in DuckDB SQL. Both are compared cell by cell (cohort sizes and every
complete period). Target (full: 1M people, ~20M events): under 3 s and at most 1.5× the SQL.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from bench.brand import END, open_brand
from bench.harness import Result, Scale, Stopwatch, Target, alternate, phase, progress, record
from siyu.analytics import retention
from siyu.analytics.common import RESULTS, Grain
from siyu.events import EventStore

NAME = "retention"
TARGET_SECONDS = 3.0
TARGET_RATIO = 1.5
SHANGHAI = ZoneInfo("Asia/Shanghai")
PERIODS = 12
START = date(2026, 8, 24)  # a Monday; the brand ends on Sunday 2026-11-22
QUERY = retention.RetentionQuery(grain=Grain.week, periods=PERIODS, start=START, end=END)
# Cohorts: first event ever in [2026-08-24, 2026-11-22] local, i.e. UTC
# [2026-08-23 16:00, 2026-11-22 16:00). Returns: any later event (not the first itself).
BASELINE_SQL = """
WITH ev AS (
  SELECT coalesce(u.person_id, d.person_id,
                  CASE WHEN starts_with(e.user_id, 'oneid:') THEN substr(e.user_id, 7) END)
           AS person_id,
         e.event_id, e.ts
  FROM events e
  LEFT JOIN identity_map u ON u.key = e.user_id
  LEFT JOIN identity_map d ON d.key = 'anonymous_id:' || e.anonymous_id
  WHERE coalesce(e.channel, '') <> 'system'
),
firsts AS (
  SELECT person_id, min(ts) AS first_ts, arg_min(event_id, (ts, event_id)) AS first_id
  FROM ev
  WHERE person_id IS NOT NULL AND ts < TIMESTAMPTZ '2026-11-22 16:00:00+00'
  GROUP BY person_id
),
cohort AS (
  SELECT person_id, first_ts, first_id,
         date_trunc('week', CAST(timezone('Asia/Shanghai', first_ts) AS DATE)) AS cohort
  FROM firsts WHERE first_ts >= TIMESTAMPTZ '2026-08-23 16:00:00+00'
),
hits AS (
  SELECT DISTINCT c.person_id, c.cohort,
    date_diff('day', c.cohort,
              date_trunc('week', CAST(timezone('Asia/Shanghai', ev.ts) AS DATE))) // 7 AS k
  FROM ev JOIN cohort c ON ev.person_id = c.person_id
  WHERE ev.ts >= TIMESTAMPTZ '2026-08-23 16:00:00+00'
    AND ev.ts >= c.first_ts AND ev.event_id <> c.first_id
)
SELECT CAST(cohort AS DATE) AS cohort, -1 AS k, count(*) AS n FROM cohort GROUP BY 1
UNION ALL
SELECT CAST(cohort AS DATE), k, count(*) FROM hits WHERE k <= 12 GROUP BY 1, 2
"""
Cells = dict[tuple[date, int], int]


def _complete(cohort: date, k: int) -> bool:
    return cohort + timedelta(weeks=k, days=6) <= END


def _siyu(events: EventStore, found: list[Cells]) -> float:
    RESULTS.clear()
    with Stopwatch() as watch:
        result = retention.retention(events, QUERY, tz=SHANGHAI)
    cells: Cells = {}
    for row in result.cohorts:
        cells[(row.cohort, -1)] = row.size
        for cell in row.periods:
            if cell.count is not None:
                cells[(row.cohort, cell.period)] = cell.count
    found.append(cells)
    return watch.seconds


def _baseline(events: EventStore, found: list[Cells]) -> float:
    with Stopwatch() as watch:
        table = events.table().sql(BASELINE_SQL).to_pyarrow()
    raw = {(r["cohort"], int(r["k"])): int(r["n"]) for r in table.to_pylist()}
    cohorts = {cohort for cohort, k in raw if k == -1}
    cells: Cells = {(c, -1): raw[(c, -1)] for c in cohorts}
    for cohort in cohorts:
        for k in range(PERIODS + 1):
            if _complete(cohort, k):
                cells[(cohort, k)] = raw.get((cohort, k), 0)
    found.append(cells)
    return watch.seconds


def run(scale: Scale) -> Result:
    with phase("open the cached brand"):
        events = open_brand(scale)
    siyu_cells: list[Cells] = []
    baseline_cells: list[Cells] = []
    try:
        timings = alternate(
            {
                "siyu": lambda: _siyu(events, siyu_cells),
                "baseline": lambda: _baseline(events, baseline_cells),
            },
            repeat=3,
        )
    finally:
        events.close()
    agree = all(cells == baseline_cells[0] for cells in siyu_cells + baseline_cells)
    first = siyu_cells[0]
    people = sum(n for (_cohort, k), n in first.items() if k == -1)
    week1 = sum(n for (_cohort, k), n in first.items() if k == 1)
    week1_size = sum(first[(c, -1)] for (c, k) in first if k == 1)
    progress(f"{people:,} people in {len(first) and sum(1 for _c, k in first if k == -1)} cohorts")
    siyu_s, baseline_s = timings["siyu"].best, timings["baseline"].best
    figures = {
        "cohort_people": people,
        "week1_retention": week1 / week1_size if week1_size else None,
        "cells": len(first),
        "cells_agree": agree,
        "siyu_retention_s": siyu_s,
        "baseline_sql_s": baseline_s,
    }
    ratio = siyu_s / baseline_s
    targets = [Target("same cells as the SQL (1 = yes)", float(agree), 1.0, ">=")]
    if scale == "full":
        targets.append(Target("retention s", siyu_s, TARGET_SECONDS, "<"))
        targets.append(Target("siyu/hand-written SQL", ratio, TARGET_RATIO, "<="))
    return record(
        NAME,
        figures,
        scale=scale,
        ratios={"siyu/hand-written SQL (time)": ratio},
        targets=targets,
        headline=("cohort_people", "cells_agree", "siyu_retention_s", "baseline_sql_s"),
    )
