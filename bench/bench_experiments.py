"""Experiment results: a 50/50 experiment over half of the cached generated brand (exposures
spread over 30 days), three metrics (14-day conversion to order_paid, 14-day net revenue with
a 30-day CUPED covariate, 7-day page views).

siyu assigns everybody in the engine (salted sha256), records the exposures as events, then
computes each person's metric values by a join of first exposures to the person-resolved
events and aggregates per variant (Ibis, one query) before the tests. The baseline is the same
per-variant aggregation hand-written in DuckDB SQL; both are compared figure by figure.
Target (full: 1M people, 500k exposed): results in under 5 s and at most 1.5× the SQL.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis

from bench.brand import brand_path
from bench.harness import Result, Scale, Stopwatch, Target, alternate, phase, progress, record
from siyu.analytics.common import RESULTS
from siyu.analytics.experiments import analysis, service, stats
from siyu.analytics.experiments.assignment import bucket_expr
from siyu.analytics.experiments.models import ExperimentCreate, ExperimentRead
from siyu.events import EventStore, open_event_store, system
from siyu.identity import service as identity

NAME = "experiments"
TARGET_SECONDS = 5.0
TARGET_RATIO = 1.5
KEY = "bench_exp"
FIRST_DAY = datetime(2026, 9, 1, 16, 0, tzinfo=UTC)  # 2026-09-02 00:00 Shanghai
DAYS = 30
SPEC = {
    "key": KEY,
    "name": "bench",
    "salt": "bench",
    "variants": [
        {"key": "control", "weight": 50, "control": True},
        {"key": "treatment", "weight": 50},
    ],
    "primary_metric": {"key": "ordered", "kind": "conversion", "event": "order_paid"},
    "secondary_metrics": [
        {"key": "revenue", "kind": "revenue", "window_days": 14, "covariate_days": 30},
        {"key": "views", "kind": "count", "event": "page_view", "window_days": 7},
    ],
}
BASELINE_SQL = """
WITH ev AS (
  SELECT coalesce(u.person_id, d.person_id,
                  CASE WHEN starts_with(e.user_id, 'oneid:') THEN substr(e.user_id, 7) END)
           AS person_id,
         e.name, e.ts, e.properties, CAST(coalesce(e.amount, 0) AS DOUBLE) AS amount
  FROM events e
  LEFT JOIN identity_map u ON u.key = e.user_id
  LEFT JOIN identity_map d ON d.key = 'anonymous_id:' || e.anonymous_id
  WHERE e.name IN ('experiment_exposure', 'order_paid', 'refund', 'page_view')
),
x AS (
  SELECT person_id, arg_min(json_extract_string(properties, '$.variant'), ts) AS variant,
         min(ts) AS t
  FROM ev
  WHERE name = 'experiment_exposure' AND person_id IS NOT NULL
    AND json_extract_string(properties, '$.experiment') = 'bench_exp'
  GROUP BY person_id
),
pp AS (
  SELECT x.person_id, x.variant,
    CASE WHEN count(*) FILTER (WHERE ev.name = 'order_paid' AND ev.ts >= x.t
                               AND ev.ts < x.t + INTERVAL 14 DAY) > 0 THEN 1.0 ELSE 0.0 END
      AS y0,
    coalesce(sum(ev.amount) FILTER (WHERE ev.name = 'order_paid' AND ev.ts >= x.t
                                    AND ev.ts < x.t + INTERVAL 14 DAY), 0)
    - coalesce(sum(ev.amount) FILTER (WHERE ev.name = 'refund' AND ev.ts >= x.t
                                      AND ev.ts < x.t + INTERVAL 14 DAY), 0) AS y1,
    coalesce(sum(ev.amount) FILTER (WHERE ev.name = 'order_paid'
                                    AND ev.ts >= x.t - INTERVAL 30 DAY AND ev.ts < x.t), 0)
    - coalesce(sum(ev.amount) FILTER (WHERE ev.name = 'refund'
                                      AND ev.ts >= x.t - INTERVAL 30 DAY AND ev.ts < x.t), 0)
      AS x1,
    CAST(count(*) FILTER (WHERE ev.name = 'page_view' AND ev.ts >= x.t
                          AND ev.ts < x.t + INTERVAL 7 DAY) AS DOUBLE) AS y2
  FROM x LEFT JOIN ev ON ev.person_id = x.person_id
    AND ev.ts >= x.t - INTERVAL 30 DAY AND ev.ts < x.t + INTERVAL 14 DAY
  GROUP BY x.person_id, x.variant
)
SELECT variant, count(*) AS n, sum(y0) AS y0_sum, avg(y1) AS y1_mean, var_samp(y1) AS y1_var,
       avg(x1) AS x1_mean, var_samp(x1) AS x1_var, covar_samp(y1, x1) AS xy1_cov,
       avg(y2) AS y2_mean, var_samp(y2) AS y2_var
FROM pp GROUP BY variant
"""
COMPARED = ("n", "y0_sum", "y1_mean", "y1_var", "x1_mean", "x1_var", "xy1_cov", "y2_mean", "y2_var")


def _expose_half(events: EventStore, experiment: ExperimentRead) -> int:
    """Half of everybody (by a second hash), each on one of 30 days, recorded as the service
    records exposures (one ``experiment_exposure`` event per person)."""
    people = identity.people(events)
    chosen = people.mutate(day=bucket_expr(people.person_id, "pick", KEY) % (2 * DAYS)).filter(
        ibis._.day < DAYS
    )
    assigned = service.assignments(chosen, experiment).to_pyarrow().to_pylist()
    by_day: dict[int, list[dict[str, Any]]] = {}
    for row in assigned:
        by_day.setdefault(int(row["day"]), []).append(row)
    for day, rows in sorted(by_day.items()):
        system.record(
            events,
            name=service.EXPOSURE_EVENT,
            source=service.SOURCE,
            at=FIRST_DAY + timedelta(days=day, hours=3),
            person_ids=[r["person_id"] for r in rows],
            properties=[{"experiment": KEY, "variant": r["variant"]} for r in rows],
            id_parts=[f"{KEY}:{r['person_id']}" for r in rows],
        )
    return len(assigned)


def _siyu(events: EventStore, experiment: ExperimentRead, found: list[Any]) -> float:
    RESULTS.clear()
    with Stopwatch() as watch:
        results = analysis.results(events, experiment)
    found.append(results)
    return watch.seconds


def _baseline(events: EventStore, found: list[dict[str, dict[str, Any]]]) -> float:
    with Stopwatch() as watch:
        rows = events.table().sql(BASELINE_SQL).to_pyarrow().to_pylist()
    found.append({r["variant"]: r for r in rows})
    return watch.seconds


def _agree(ours: dict[str, dict[str, Any]], theirs: dict[str, dict[str, Any]]) -> bool:
    if set(ours) != set(theirs):
        return False
    return all(
        math.isclose(float(ours[v][k]), float(theirs[v][k]), rel_tol=1e-9, abs_tol=1e-9)
        for v in ours
        for k in COMPARED
    )


def run(scale: Scale) -> Result:
    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
        copy = Path(tmp) / "events.duckdb"
        with phase("copy the cached brand"):
            shutil.copyfile(brand_path(scale), copy)
        events = open_event_store(f"duckdb:///{copy}")
        try:
            spec = ExperimentCreate.model_validate(SPEC)
            now = datetime.now(UTC)
            experiment = ExperimentRead.model_validate(
                {**spec.model_dump(), "status": "running", "created_at": now, "updated_at": now}
            )
            with phase("assign everybody in the engine, record exposures") as exposing:
                exposed = _expose_half(events, experiment)
            ours: list[Any] = []
            theirs: list[dict[str, dict[str, Any]]] = []
            timings = alternate(
                {
                    "siyu": lambda: _siyu(events, experiment, ours),
                    "baseline": lambda: _baseline(events, theirs),
                },
                repeat=3,
            )
            moments = analysis.variant_moments(events, experiment)
        finally:
            events.close()
    result = ours[0]
    sql = theirs[0]
    from_sql = stats.two_proportions(
        int(sql["treatment"]["y0_sum"]),
        int(sql["treatment"]["n"]),
        int(sql["control"]["y0_sum"]),
        int(sql["control"]["n"]),
    )
    agree = _agree(moments, sql) and math.isclose(
        result.metrics[0].comparisons[0].p_value or -1.0, from_sql.p_value or -2.0, rel_tol=1e-9
    )
    progress(f"{exposed:,} exposed; SRM p = {result.srm.p_value:.3g}")
    siyu_s, baseline_s = timings["siyu"].best, timings["baseline"].best
    primary = result.metrics[0].comparisons[0]
    figures = {
        "exposed": exposed,
        "srm_p": result.srm.p_value,
        "conversion_lift": primary.lift,
        "conversion_p": primary.p_value,
        "cuped_variance_reduction": result.metrics[1].cuped.variance_reduction
        if result.metrics[1].cuped
        else None,
        "figures_agree": agree,
        "exposures_s": exposing.seconds,
        "siyu_results_s": siyu_s,
        "baseline_sql_s": baseline_s,
    }
    ratio = siyu_s / baseline_s
    targets = [Target("same figures as the SQL (1 = yes)", float(agree), 1.0, ">=")]
    if scale == "full":
        targets.append(Target("results s", siyu_s, TARGET_SECONDS, "<"))
        targets.append(Target("siyu/hand-written SQL", ratio, TARGET_RATIO, "<="))
    return record(
        NAME,
        figures,
        scale=scale,
        ratios={"siyu/hand-written SQL (time)": ratio},
        targets=targets,
        headline=("exposed", "figures_agree", "siyu_results_s", "baseline_sql_s"),
    )
