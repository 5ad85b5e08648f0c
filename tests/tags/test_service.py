"""Tag definitions, refresh (full, incremental, subsets), history, stats; API and CLI.

Real SQLite/PostgreSQL for definitions, a real DuckDB file for values.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from siyu.api import create_app
from siyu.core.config import Settings
from siyu.core.errors import ConflictError, InvalidInputError, NotFoundError
from siyu.events import EventStore, open_event_store
from siyu.events.base import conform
from siyu.identity.models import Person
from siyu.store import Database
from siyu.tags import service
from siyu.tags.definitions import (
    Aggregate,
    Assigned,
    Category,
    Formula,
    Function,
    TagDefinition,
    ValueType,
    definitions_from_yaml,
    definitions_to_yaml,
)
from siyu.tags.library import builtin_tags
from siyu.tags.service import RefreshOptions

SHANGHAI = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)  # local midnight starting 2026-11-23
_ids = itertools.count()
SMALL = ["orders_count_30d", "orders_amount_365d", "lifecycle_stage", "rfm_segment", "gender"]


def row(user: str, name: str, days_ago: float, **extra: Any) -> dict[str, Any]:
    ts = AS_OF - timedelta(days=days_ago)
    return {
        "event_id": f"e-{next(_ids)}",
        "name": name,
        "ts": ts,
        "received_at": extra.pop("received_at", ts),
        "user_id": user,
        "channel": extra.pop("channel", "miniprogram"),
        **extra,
    }


def append(events: EventStore, *rows: dict[str, Any]) -> None:
    columns = sorted({k for r in rows for k in r})  # from_pylist reads keys off row one only
    events.append(conform(pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])))


def people(events: EventStore, db: Database, mapping: dict[str, str]) -> None:
    events.replace_table(
        "identity_map",
        pa.table({"key": list(mapping), "person_id": list(mapping.values())}),
    )
    with db.unit_of_work() as session:
        for person_id in sorted(set(mapping.values())):
            if session.get(Person, person_id) is None:
                session.add(Person(id=person_id))


@pytest.fixture
def events(tmp_path: Path) -> Iterator[EventStore]:
    store = open_event_store(f"duckdb:///{tmp_path / 'events.duckdb'}")
    yield store
    store.close()


@pytest.fixture
def world(events: EventStore, database: Database) -> EventStore:
    """Three people: a two-key buyer, a one-order buyer, a browser who never bought."""
    people(
        events,
        database,
        {
            "member_no:A": "p_a",
            "anonymous_id:dev-a": "p_a",
            "member_no:B": "p_b",
            "member_no:C": "p_c",
        },
    )
    append(
        events,
        row("member_no:A", "identify", 100, properties=json.dumps({"gender": "female"})),
        row("member_no:A", "order_paid", 3, amount="120.50", category="skincare", order_id="o1"),
        row("anonymous_id:dev-a", "order_paid", 10, amount="80.00", category="skincare")
        | {"user_id": None, "anonymous_id": "dev-a"},
        row("member_no:A", "order_paid", 200, amount="300.00", category="makeup"),
        row("member_no:B", "order_paid", 40, amount="50.00", category="bodycare"),
        row("member_no:C", "page_view", 1),
    )
    return events


def refresh(db: Database, events: EventStore, **options: Any) -> Any:
    with db.unit_of_work() as session:
        return service.refresh(
            db_session=session,
            events=events,
            options=RefreshOptions(tz=SHANGHAI, as_of=options.pop("as_of", AS_OF), **options),
        )


def values(events: EventStore) -> dict[str, dict[str, Any]]:
    rows = events.table(service.VALUES_TABLE).to_pyarrow().to_pylist()
    return {r["person_id"]: r for r in rows}


# -- definitions ---------------------------------------------------------------------------------


def test_builtin_library_has_200_unique_tags_in_every_category() -> None:
    tags = builtin_tags()
    keys = [t.key for t in tags]
    assert len(tags) >= 200
    assert len(set(keys)) == len(keys)
    assert {t.category for t in tags} == set(Category)
    for required in ("orders_count_30d", "aov_365d", "days_since_last_order", "rfm_r", "rfm_f"):
        assert required in keys
    for required in ("rfm_m", "rfm_segment", "lifecycle_stage", "tier", "churn_risk_level"):
        assert required in keys
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in t.name_zh) for t in tags)


def test_yaml_round_trip_of_the_whole_library() -> None:
    tags = builtin_tags()
    again = definitions_from_yaml(definitions_to_yaml(tags))
    assert [t.model_dump(mode="json") for t in again] == [t.model_dump(mode="json") for t in tags]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("tags: [{key: x}]", "not valid"),
        ("{{{", "could not be read"),
        ("tags: 3", "list of tags"),
    ],
)
def test_bad_yaml_is_a_clear_error(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        definitions_from_yaml(text)
    assert fragment in caught.value.render("en")


def custom(key: str, expression: str, value_type: ValueType = ValueType.NUMBER) -> TagDefinition:
    return TagDefinition(
        key=key,
        name_zh="自定义",
        name_en="Custom",
        category=Category.VALUE,
        value_type=value_type,
        compute=Formula(expression=expression),
    )


def test_create_update_retire_restore_keep_versions(database: Database) -> None:
    with database.unit_of_work() as session:
        service.ensure_builtin(session)
        tag = service.create_tag(session, custom("double_spend", "orders_amount_365d * 2"))
        assert tag.version == 1 and not tag.builtin
        with pytest.raises(ConflictError):
            service.create_tag(session, custom("double_spend", "1"))
        updated = service.update_tag(
            session, "double_spend", custom("double_spend", "orders_amount_365d * 3")
        )
        assert updated.version == 2
        service.create_tag(session, custom("triple", "double_spend + 1"))
        with pytest.raises(ConflictError) as used:
            service.retire_tag(session, "double_spend")
        assert "triple" in used.value.render("en")
        service.retire_tag(session, "triple")
        assert service.retire_tag(session, "double_spend").status == "retired"
        assert service.restore_tag(session, "double_spend").status == "active"
        changes = [v.change for v in service.versions(session, "double_spend")]
        assert changes == ["restore", "retire", "update", "create"]
        page, total = service.list_tags(session, search="double", status=None)
        assert [t.key for t in page] == ["double_spend"] and total == 1


def test_unknown_reference_and_cycles_are_refused(database: Database) -> None:
    with database.unit_of_work() as session:
        service.ensure_builtin(session)
        with pytest.raises(InvalidInputError) as unknown:
            service.create_tag(session, custom("bad", "no_such_tag + 1"))
        assert "no_such_tag" in unknown.value.render("en")
        service.create_tag(session, custom("loop_a", "orders_count_30d"))
        service.create_tag(session, custom("loop_b", "loop_a + 1"))
        with pytest.raises(InvalidInputError) as cycle:
            service.update_tag(session, "loop_a", custom("loop_a", "loop_b + 1"))
        assert "cycle" in cycle.value.render("en")
        with pytest.raises(InvalidInputError):
            service.create_tag(session, custom("evil", "__import__('os').system('echo')"))


def test_editing_a_builtin_marks_it_customised_and_upgrades_leave_it(database: Database) -> None:
    with database.unit_of_work() as session:
        service.ensure_builtin(session)
        original = service.get_tag(session, "aov_90d").definition
        edited = original.model_copy(update={"description": "运营口径"})
        service.update_tag(session, "aov_90d", edited)
        assert service.ensure_builtin(session) == 0
        tag = service.get_tag(session, "aov_90d")
        assert not tag.builtin and tag.definition.description == "运营口径"


# -- refresh -------------------------------------------------------------------------------------


def test_refresh_computes_values_across_merged_keys(world: EventStore, database: Database) -> None:
    run = refresh(database, world, keys=SMALL)
    assert run.status == "done" and run.people == 3
    got = values(world)
    assert got["p_a"]["orders_count_30d"] == 2  # one order under each of the two keys
    assert got["p_a"]["orders_amount_365d"] == pytest.approx(500.50)
    assert got["p_b"]["orders_count_30d"] == 0
    assert got["p_c"]["orders_amount_365d"] == 0
    assert got["p_a"]["gender"] == "female" and got["p_b"]["gender"] is None
    assert got["p_c"]["lifecycle_stage"] == "prospect"
    assert got["p_c"]["rfm_segment"] is None  # not a buyer: no RFM


def test_subset_refresh_keeps_other_columns(world: EventStore, database: Database) -> None:
    refresh(database, world, keys=SMALL)
    refresh(database, world, keys=["orders_count_7d"])
    got = values(world)
    assert got["p_a"]["orders_count_7d"] == 1
    assert got["p_a"]["orders_count_30d"] == 2  # carried over


def test_history_records_changes_and_answers_who_became(
    world: EventStore, database: Database
) -> None:
    refresh(database, world, keys=SMALL)
    append(world, row("member_no:C", "order_paid", 0.5, amount="20.00", category="makeup"))
    run = refresh(database, world, keys=SMALL)
    assert run.changes >= 1
    became = service.history(world, key="lifecycle_stage", value="new")
    assert [r["person_id"] for r in became] == ["p_c"]
    assert became[0]["old_value"] == "prospect"
    assert service.history(world, key="lifecycle_stage", since=AS_OF + timedelta(days=1)) == []
    emitted = world.table().filter(lambda t: t.name == "lifecycle_changed").to_pyarrow()
    assert emitted["user_id"].to_pylist() == ["oneid:p_c"]
    assert json.loads(emitted["properties"][0].as_py()) == {
        "tag": "lifecycle_stage",
        "from": "prospect",
        "to": "new",
    }


def test_incremental_refresh_equals_full_refresh(world: EventStore, database: Database) -> None:
    keys = ["orders_count_30d", "orders_amount_365d", "rfm_segment", "days_since_last_order"]
    refresh(database, world, keys=keys)
    later = AS_OF + timedelta(hours=1)
    append(
        world,
        row("member_no:B", "order_paid", 0, amount="999.00", category="makeup")
        | {"received_at": later},
    )
    run = refresh(database, world, mode="incremental", keys=keys)
    assert run.mode == "incremental"
    incremental = values(world)
    refresh(database, world, mode="full", keys=keys)
    full = values(world)
    for person in full:
        for key in keys:
            assert incremental[person][key] == full[person][key], (person, key)
    assert full["p_b"]["orders_amount_365d"] == pytest.approx(1049.0)


def test_stats_give_coverage_and_distribution(world: EventStore, database: Database) -> None:
    refresh(database, world, keys=SMALL)
    (stats,) = service.stats(world, "lifecycle_stage")
    assert stats["people"] == 3 and stats["covered"] == 3
    top = {d["value"]: d["people"] for d in stats["distribution"]["top"]}
    assert sum(top.values()) == 3
    (amount,) = service.stats(world, "orders_amount_365d")
    assert amount["distribution"]["max"] == pytest.approx(500.5)


def test_manual_tags_take_typed_values_only(world: EventStore, database: Database) -> None:
    vip = TagDefinition(
        key="vip_note",
        name_zh="手工VIP",
        name_en="Manual VIP",
        category=Category.VALUE,
        value_type=ValueType.BOOL,
        compute=Assigned(kind="manual"),
    )
    with database.unit_of_work() as session:
        service.ensure_builtin(session)
        service.create_tag(session, vip)
        assert service.assign(session, "vip_note", {"p_b": True}) == 1
        with pytest.raises(InvalidInputError):
            service.assign(session, "vip_note", {"p_a": "yes"})
        with pytest.raises(InvalidInputError):
            service.assign(session, "orders_count_30d", {"p_a": 3})
    refresh(database, world, keys=["vip_note"])
    got = values(world)
    assert got["p_b"]["vip_note"] is True and got["p_a"]["vip_note"] is False


def test_a_failed_refresh_leaves_the_published_values(
    world: EventStore, database: Database
) -> None:
    refresh(database, world, keys=SMALL)
    before = values(world)
    broken = TagDefinition(
        key="broken",
        name_zh="坏标签",
        name_en="Broken",
        category=Category.VALUE,
        value_type=ValueType.NUMBER,
        compute=Aggregate(events=("order_paid",), function=Function.SUM, field="properties.x"),
    )
    with database.unit_of_work() as session:
        service.create_tag(session, broken)
    world.replace_table("identity_map", pa.table({"key": ["x"], "wrong": ["y"]}))
    with pytest.raises(Exception):  # noqa: B017,PT011 - any engine error will do
        refresh(database, world, keys=["broken"])
    assert values(world) == before
    assert not world.has_table("tag_values_stage_person")


def test_unknown_tag_in_refresh_is_named(world: EventStore, database: Database) -> None:
    with pytest.raises(InvalidInputError) as caught:
        refresh(database, world, keys=["nope"])
    assert "nope" in caught.value.render("en")


# -- API and CLI -----------------------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings, database: Database, world: EventStore) -> Iterator[TestClient]:
    settings = settings.model_copy(update={"database_url": str(database.engine.url)})
    with TestClient(create_app(settings, events=world)) as test_client:
        yield test_client


def test_api_lists_shows_creates_and_refreshes(client: TestClient) -> None:
    page = client.get("/v1/tags", params={"category": "value", "limit": 5})
    assert page.status_code == 200
    body = page.json()
    assert body["total"] >= 40 and len(body["items"]) == 5
    assert client.get("/v1/tags/rfm_segment").json()["definition"]["name_zh"] == "RFM客户分群"
    assert client.get("/v1/tags/nope").status_code == 404
    created = client.post(
        "/v1/tags", json=custom("spend_x2", "orders_amount_365d * 2").model_dump(mode="json")
    )
    assert created.status_code == 201
    run = client.post("/v1/tags/refresh", json={"tags": ["spend_x2", "orders_count_30d"]})
    assert run.status_code == 202 and run.json()["status"] == "queued"
    assert wait_for(client, run.json()["id"])["status"] == "done"
    assert client.get("/v1/tags/refreshes").json()[0]["id"] == run.json()["id"]
    assert client.get("/v1/tags/refreshes/999999").status_code == 404
    unknown = client.post("/v1/tags/refresh", json={"tags": ["no_such_tag"]})
    assert unknown.status_code == 422
    tags = client.get("/v1/people/p_a/tags").json()["tags"]
    assert tags["spend_x2"] == pytest.approx(1001.0)
    assert client.get("/v1/people/nobody/tags").status_code == 404
    assert client.get("/v1/tags/spend_x2/stats").json()["covered"] == 3  # 0 is a value


def wait_for(client: TestClient, run_id: int) -> dict[str, Any]:
    for _ in range(600):
        run: dict[str, Any] = client.get(f"/v1/tags/refreshes/{run_id}").json()
        if run["status"] in ("done", "failed"):
            return run
        time.sleep(0.1)
    raise AssertionError("the refresh did not finish")


@pytest.mark.parametrize(
    "payload",
    [
        {
            "key": "Bad Key",
            "name_zh": "x",
            "name_en": "x",
            "category": "value",
            "value_type": "number",
            "compute": {"kind": "formula", "expression": "1"},
        },
        {
            "key": "ok",
            "name_zh": "x",
            "name_en": "x",
            "category": "nonsense",
            "value_type": "number",
            "compute": {"kind": "formula", "expression": "1"},
        },
        {
            "key": "ok",
            "name_zh": "x",
            "name_en": "x",
            "category": "value",
            "value_type": "number",
            "compute": {"kind": "aggregate", "events": [], "function": "count"},
        },
        {
            "key": "ok",
            "name_zh": "x",
            "name_en": "x",
            "category": "value",
            "value_type": "number",
            "compute": {"kind": "formula", "expression": "1 +"},
        },
        {"key": "ok"},
    ],
)
def test_api_bad_definitions_get_problem_json(client: TestClient, payload: dict[str, Any]) -> None:
    answer = client.post("/v1/tags", json=payload)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_cli_list_show_export_import_refresh(
    settings: Settings,
    database: Database,
    world: EventStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from siyu.cli import app
    from siyu.core.config import get_settings

    world.close()  # the CLI opens the store itself
    monkeypatch.setenv("SIYU_HOME", str(settings.home))
    monkeypatch.setenv("SIYU_DATABASE_URL", str(database.engine.url.render_as_string(False)))
    monkeypatch.setenv("SIYU_EVENTS_URL", f"duckdb:///{tmp_path / 'events.duckdb'}")
    monkeypatch.setenv("SIYU_LANG", "en")
    get_settings.cache_clear()
    runner = CliRunner()
    listed = runner.invoke(app, ["tags", "list", "--category", "lifecycle", "--json"])
    assert listed.exit_code == 0, listed.output
    assert "lifecycle_stage" in [i["key"] for i in json.loads(listed.output)["items"]]
    out = tmp_path / "tags.yaml"
    assert runner.invoke(app, ["tags", "export", "aov_90d", "--out", str(out)]).exit_code == 0
    out.write_text(out.read_text().replace("key: aov_90d", "key: aov_90d_copy"))
    created = runner.invoke(app, ["tags", "create", "--file", str(out)])
    assert created.exit_code == 0, created.output
    again = runner.invoke(app, ["tags", "create", "--file", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output
    run = runner.invoke(
        app, ["tags", "refresh", "--tags", "aov_90d_copy", "--as-of", AS_OF.isoformat(), "--json"]
    )
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["status"] == "done"
    shown = runner.invoke(app, ["tags", "show", "aov_90d_copy", "--json"])
    assert json.loads(shown.output)["stats"]["covered"] == 2
    missing = runner.invoke(app, ["tags", "show", "nope"])
    assert missing.exit_code == 2 and "No tag nope" in missing.output
    get_settings.cache_clear()


def test_not_found_is_not_found(database: Database) -> None:
    with database.unit_of_work() as session, pytest.raises(NotFoundError):
        service.get_tag(session, "nope")


def test_incremental_on_a_new_day_is_a_full_refresh(world: EventStore, database: Database) -> None:
    keys = ["orders_count_7d", "days_since_last_order"]
    refresh(database, world, keys=keys)
    next_day = AS_OF + timedelta(days=5)
    run = refresh(database, world, mode="incremental", keys=keys, as_of=next_day)
    assert run.mode == "full"  # windows moved for everybody: only a full refresh is exact
    got = values(world)
    assert got["p_b"]["days_since_last_order"] == 45  # was 40, nobody had new events
    assert got["p_a"]["orders_count_7d"] == 0
