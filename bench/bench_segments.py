"""Segment count: a 5-condition rule over a generated brand, as operators preview it.

siyu parses the rule, checks it against the tag catalogue and counts its members through the
compiled Ibis expression (tags, a trait, two event conditions with windows, not-consent). The
baseline is one hand-written DuckDB query computing the same count from the same tables.
Target (full: 1M people, ~20M events): the count in under 1 s.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.harness import Result, Scale, Stopwatch, Target, phase, progress, record
from siyu.demo.generator import DemoSpec
from siyu.demo.service import write_events
from siyu.events import open_event_store
from siyu.identity import service as identity
from siyu.segments import service as segments
from siyu.segments.rules import parse
from siyu.store import open_database
from siyu.store.migrate import upgrade
from siyu.tags import service as tags

NAME = "segments"
PEOPLE: dict[Scale, int] = {"small": 100_000, "full": 1_000_000}
TARGET_SECONDS = 1.0
SHANGHAI = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)  # local midnight after the last day
RULE = (
    "tag.rfm_segment in ('重要价值客户', '重要保持客户') and trait.gender = 'female' "
    "and event(order_paid, last 90d).count >= 2 and not event(page_view, last 7d).days >= 3 "
    "and not consent.sms"
)
TAGS = ["rfm_segment", "gender"]
# The same count, written by hand. Today is 2026-11-23 local; the last 90 days start at local
# midnight of 2026-08-26 (16:00 UTC the day before), the last 7 at 2026-11-17.
BASELINE_SQL = """
WITH ev AS (
  SELECT coalesce(u.person_id, d.person_id) AS person_id, e.name, e.ts
  FROM events e
  LEFT JOIN identity_map u ON u.key = e.user_id
  LEFT JOIN identity_map d ON d.key = 'anonymous_id:' || e.anonymous_id
  WHERE e.name IN ('order_paid', 'page_view', 'consent_granted', 'consent_revoked', 'unsubscribe')
    AND e.ts <= TIMESTAMPTZ '2026-11-22 16:00:00+00'
),
per_person AS (
  SELECT person_id,
    count(*) FILTER (WHERE name = 'order_paid'
                     AND ts >= TIMESTAMPTZ '2026-08-25 16:00:00+00') AS orders_90d,
    count(DISTINCT CAST(ts + INTERVAL 8 HOUR AS DATE)) FILTER (
      WHERE name = 'page_view' AND ts >= TIMESTAMPTZ '2026-11-16 16:00:00+00') AS view_days_7d
  FROM ev WHERE person_id IS NOT NULL GROUP BY person_id
)
SELECT count(*) FROM tag_values t
LEFT JOIN per_person p USING (person_id)
WHERE t.rfm_segment IN ('重要价值客户', '重要保持客户') AND t.gender = 'female'
  AND coalesce(p.orders_90d, 0) >= 2 AND NOT coalesce(p.view_days_7d, 0) >= 3
"""


def run(scale: Scale) -> Result:
    people = PEOPLE[scale]
    spec = DemoSpec(people=people, days=365, seed=21, end_date=date(2026, 11, 22))
    with tempfile.TemporaryDirectory(prefix="siyu-bench-") as tmp:
        folder = Path(tmp)
        events = open_event_store(f"duckdb:///{folder / 'events.duckdb'}")
        database = open_database(f"sqlite:///{folder / 'siyu.db'}")
        upgrade(database)
        with phase(f"generate {people:,} people, resolve, refresh {len(TAGS)} tags"):
            write_events(spec, events)
            with database.unit_of_work() as session:
                identity.resolve(
                    db_session=session, events=events, hash_key=identity.derive_hash_key("b" * 40)
                )
            with database.unit_of_work() as session:
                tags.refresh(
                    db_session=session,
                    events=events,
                    options=tags.RefreshOptions(tz=SHANGHAI, as_of=AS_OF, keys=TAGS),
                )
        rule = parse(RULE)
        siyu_runs, baseline_runs, counts = [], [], set()
        with database.unit_of_work() as session:
            for _ in range(3):
                with Stopwatch() as watch:
                    context = segments.world(session, events, tz=SHANGHAI, now=AS_OF)
                    counts.add(segments.count(context, rule))
                siyu_runs.append(watch.seconds)
                started = time.perf_counter()
                baseline = events.table("tag_values").sql(BASELINE_SQL).to_pyarrow()  # type: ignore[attr-defined]
                baseline_runs.append(time.perf_counter() - started)
                counts.add(int(baseline.column(0)[0].as_py()))
        progress(f"counts: {sorted(counts)}")
        database.dispose()
        events.close()
    siyu_s, baseline_s = min(siyu_runs), min(baseline_runs)
    figures = {
        "people": people,
        "members": min(counts),
        "counts_agree": len(counts) == 1,
        "siyu_count_s": siyu_s,
        "baseline_sql_s": baseline_s,
    }
    targets = [Target("same count as the SQL (1 = yes)", float(len(counts) == 1), 1.0, ">=")]
    if scale == "full":
        targets.append(Target("count s", siyu_s, TARGET_SECONDS, "<"))
    return record(
        NAME,
        figures,
        scale=scale,
        ratios={"siyu/hand-written SQL (time)": siyu_s / baseline_s},
        targets=targets,
        headline=("people", "members", "counts_agree", "siyu_count_s", "baseline_sql_s"),
    )
