"""The scheduler does what is due: tags by cadence, then tiers, then segments; then nothing."""

from __future__ import annotations

from datetime import timedelta

from siyu.core.config import Settings
from siyu.events import EventStore
from siyu.scheduler import due_segments, due_tags, tick
from siyu.segments import service as segments
from siyu.segments.models import SegmentCreate
from siyu.store import Database
from siyu.tags import service as tags
from tests.tags.test_service import AS_OF, SHANGHAI, events, world

__all__ = ["events", "world"]


def test_a_tick_refreshes_what_is_due_and_a_second_does_nothing(
    settings: Settings, database: Database, world: EventStore
) -> None:
    with database.unit_of_work() as session:
        full, realtime = due_tags(session, AS_OF, settings)
        assert "orders_count_30d" in full and "rfm_segment" in full  # never refreshed
        context = segments.world(session, world, tz=SHANGHAI, now=AS_OF)
        segments.create_segment(
            session,
            context,
            SegmentCreate(key="buyers", name="买家", rule_text="tag.orders_count_all > 0"),
        )
        segments.create_segment(
            session,
            context,
            SegmentCreate(
                key="by_hand", name="手动", rule_text="tag.orders_count_all > 1", schedule="manual"
            ),
        )
    first = tick(database, world, settings, now=AS_OF)
    assert first["tags"]["mode"] == "full" and first["tiers"] is not None
    assert first["segments"] == [{"key": "buyers", "entered": 2, "exited": 0}]

    later = AS_OF + timedelta(hours=2)  # same local day: only real-time tags, incrementally
    with database.unit_of_work() as session:
        full, realtime = due_tags(session, later, settings)
        assert full == [] and "days_since_last_active" in realtime
        assert due_segments(session, later, settings) == []
    second = tick(database, world, settings, now=later)
    assert second["tags"]["mode"] == "incremental" and second["tiers"] is None
    assert second["segments"] == []

    next_day = AS_OF + timedelta(days=1, hours=1)
    with database.unit_of_work() as session:
        full, _ = due_tags(session, next_day, settings)
        weekly = [
            t.key for t in tags.list_tags(session, limit=500)[0] if t.definition.cadence == "weekly"
        ]
        assert "orders_count_30d" in full and not set(weekly) & set(full)
        assert due_segments(session, next_day, settings) == ["buyers"]


def test_alert_rules_run_once_a_day_after_one_oclock(
    settings: Settings, database: Database, world: EventStore
) -> None:
    from siyu.analytics.alerts import service as alerts
    from siyu.analytics.alerts.models import RuleCreate

    with database.unit_of_work() as session:
        alerts.create_rule(session, RuleCreate(name="订单", metric="orders"))
    midnight = AS_OF  # 00:00 local: yesterday may still be arriving
    assert tick(database, world, settings, now=midnight)["alerts"] is None
    two = AS_OF + timedelta(hours=2)
    assert tick(database, world, settings, now=two)["alerts"] is not None
    assert tick(database, world, settings, now=two + timedelta(hours=1))["alerts"] is None
