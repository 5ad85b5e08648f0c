"""Tier movement: up at once, down only with a reason; history, events, movement matrix."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from siyu.api import create_app
from siyu.core.config import Settings
from siyu.core.errors import InvalidInputError
from siyu.events import EventStore
from siyu.identity.service import events_of, person_events
from siyu.segments import tiers
from siyu.store import Database
from tests.tags.test_service import AS_OF, SHANGHAI, append, events, refresh, row, world

__all__ = ["events", "world"]
KEYS = [
    "net_amount_365d",
    "avg_repurchase_interval",
    "active_days_30d",
    "orders_count_365d",
    "days_since_last_order",
    "days_since_last_active",
]


def tiers_at(database: Database, store: EventStore, days: float) -> tiers.TierRun:
    moment = AS_OF + timedelta(days=days)
    refresh(database, store, keys=KEYS, as_of=moment)
    return tiers.evaluate(store, tz=SHANGHAI, as_of=moment)


def current(store: EventStore) -> dict[str, str]:
    rows = store.table(tiers.CURRENT_TABLE).to_pyarrow().to_pylist()
    return {r["person_id"]: r["tier"] for r in rows}


def test_tiers_move_up_at_once_and_down_only_for_a_reason(
    world: EventStore, database: Database
) -> None:
    first = tiers_at(database, world, 0)
    assert current(world) == {"p_a": "ordinary", "p_b": "ordinary", "p_c": "prospect"}
    assert first.changes == 3 and first.upgrades == 0  # first assignments are not moves

    append(world, row("member_no:B", "order_paid", -1, amount="3000.00"))
    second = tiers_at(database, world, 1)
    assert current(world)["p_b"] == "sapphire"
    assert second.upgrades == 1

    # A refund drops B's spend below sapphire, but B bought 45 days ago (< 90) and was idle
    # for 45 (>= 30): one step down, not straight to the target.
    append(world, row("member_no:B", "refund", -2, amount="2500.00"))
    tiers_at(database, world, 46)
    assert current(world)["p_b"] == "platinum"

    # 400 days on, nobody bought for 90+ days: everyone drops to their target, flagged.
    tiers_at(database, world, 400)
    rows = {r["person_id"]: r for r in world.table(tiers.CURRENT_TABLE).to_pyarrow().to_pylist()}
    assert rows["p_b"]["tier"] == "prospect" and rows["p_b"]["win_back"] is True

    history = world.table(tiers.HISTORY_TABLE).to_pyarrow().to_pylist()
    reasons = [(r["person_id"], r["from_tier"], r["to_tier"], r["reason"]) for r in history]
    assert ("p_b", "ordinary", "sapphire", "qualified") in reasons
    assert ("p_b", "sapphire", "platinum", "no_interaction") in reasons
    assert ("p_b", "platinum", "prospect", "no_purchase") in reasons

    # Each real change is a tier_changed event that resolves to the person.
    mine = events_of(world, "p_b")
    changed = person_events(world).filter(lambda t: t.name == "tier_changed")
    by_person = changed.group_by("person_id").aggregate(n=changed.count()).to_pyarrow()
    counts = dict(zip(by_person["person_id"].to_pylist(), by_person["n"].to_pylist(), strict=True))
    assert counts["p_b"] == 3
    assert mine.count().to_pyarrow().as_py() >= 3


def test_movement_matrix_between_two_dates(world: EventStore, database: Database) -> None:
    tiers_at(database, world, 0)
    append(world, row("member_no:B", "order_paid", -1, amount="3000.00"))
    tiers_at(database, world, 1)
    scheme = tiers.DEFAULT_SCHEME
    matrix = tiers.movement_matrix(
        world, scheme, AS_OF + timedelta(hours=1), AS_OF + timedelta(days=2)
    )
    assert matrix == {"ordinary": {"ordinary": 1, "sapphire": 1}, "prospect": {"prospect": 1}}


def test_rules_on_missing_tags_are_refused(world: EventStore, database: Database) -> None:
    refresh(database, world, keys=["orders_count_30d"])
    with pytest.raises(InvalidInputError) as caught:
        tiers.evaluate(world, tz=SHANGHAI, as_of=AS_OF)
    assert "net_amount_365d" in caught.value.render("en")


def test_scheme_from_yaml(tmp_path: Path) -> None:
    assert tiers.load_scheme(tmp_path) is tiers.DEFAULT_SCHEME
    (tmp_path / "tiers.yaml").write_text(
        "levels:\n  - {key: gold, name_zh: 金卡, name_en: Gold, rule: 'orders_count_365d > 3'}\n"
        "  - {key: basic, name_zh: 普卡, name_en: Basic, rule: 'True'}\n",
        encoding="utf-8",
    )
    assert [level.key for level in tiers.load_scheme(tmp_path).levels] == ["gold", "basic"]
    (tmp_path / "tiers.yaml").write_text("levels: 3\n", encoding="utf-8")
    with pytest.raises(InvalidInputError):
        tiers.load_scheme(tmp_path)


def test_api_evaluates_and_reads_tiers(
    settings: Settings, database: Database, world: EventStore
) -> None:
    refresh(database, world, keys=KEYS)
    settings = settings.model_copy(update={"database_url": str(database.engine.url)})
    with TestClient(create_app(settings, events=world)) as client:
        assert client.get("/v1/tiers/scheme").json()["levels"][0]["name_zh"] == "钻石"
        assert client.get("/v1/tiers/touch-frequency").json()["流失"] == {
            "times": 1,
            "per": "month",
        }
        run = client.post("/v1/tiers/evaluate")
        assert run.status_code == 200 and run.json()["people"] == 3
        assert client.get("/v1/people/p_c/tier").json()["tier"]["tier"] == "prospect"
        assert client.get("/v1/people/nobody/tier").status_code == 404
        bad = client.get("/v1/tiers/movement", params={"start": "x", "end": "y"})
        assert bad.status_code == 422
