"""Saved segments over the tag store: counts, samples, evaluations with diffs, static lists,
exports; API and CLI. Real SQLite/PostgreSQL and a DuckDB file."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from siyu.api import create_app
from siyu.core.config import Settings
from siyu.core.errors import ConflictError, InvalidInputError
from siyu.events import EventStore
from siyu.identity.models import Identifier
from siyu.identity.service import derive_hash_key, key_hash
from siyu.segments import service
from siyu.segments.models import SegmentCreate
from siyu.segments.rules import RuleSyntaxError, UnknownNameError, parse
from siyu.store import Database
from tests.tags.test_service import AS_OF, SHANGHAI, append, events, refresh, row, world

__all__ = ["events", "world"]  # fixtures shared with the tag tests
HASH_KEY = derive_hash_key("k" * 40)
KEYS = ["orders_count_30d", "orders_amount_365d", "gender", "lifecycle_stage"]


@pytest.fixture
def tagged(world: EventStore, database: Database) -> EventStore:
    refresh(database, world, keys=KEYS)
    with database.unit_of_work() as session:
        digest = key_hash(HASH_KEY, "phone:+8613800135678")
        session.add(
            Identifier(type="phone", key_hash=digest, masked="138****5678", person_id="p_a")
        )
    return world


def context(database: Database, events: EventStore) -> Iterator[service.TagWorld]:
    with database.unit_of_work() as session:
        yield service.world(session, events, tz=SHANGHAI, now=AS_OF)


def members(database: Database, events: EventStore, text: str) -> list[str]:
    for ctx in context(database, events):
        rule = parse(text)
        return sorted(r["person_id"] for r in service.sample(ctx, rule, size=100))
    raise AssertionError


def test_rules_count_over_tags_traits_and_events(tagged: EventStore, database: Database) -> None:
    assert members(database, tagged, "tag.orders_count_30d >= 2") == ["p_a"]
    assert members(database, tagged, "trait.gender = 'female'") == ["p_a"]
    assert members(database, tagged, "event(order_paid, last 30d).count >= 1") == ["p_a"]
    assert members(database, tagged, "did not event(order_paid)") == ["p_c"]
    assert members(database, tagged, "not consent.sms") == ["p_a", "p_b", "p_c"]
    for ctx in context(database, tagged):
        assert service.count(ctx, parse("tag.orders_amount_365d > 0")) == 2


def test_unknown_tags_and_syntax_errors_are_named(tagged: EventStore, database: Database) -> None:
    for ctx in context(database, tagged):
        with pytest.raises(UnknownNameError) as unknown:
            service.count(ctx, parse("tag.not_refreshed_or_unknown = 1"))
        assert "not_refreshed_or_unknown" in unknown.value.render("en")
    with pytest.raises(RuleSyntaxError) as syntax:
        parse("tag.x = ")
    assert syntax.value.position == 8


def test_saved_segments_nest_and_refuse_cycles(tagged: EventStore, database: Database) -> None:
    for ctx in context(database, tagged):
        service.create_segment(
            ctx.db_session,
            ctx,
            SegmentCreate(key="buyers", name="买家", rule_text="tag.orders_amount_365d > 0"),
        )
        service.create_segment(
            ctx.db_session,
            ctx,
            SegmentCreate(
                key="quiet",
                name="沉默买家",
                rule_text="segment.buyers and not tag.orders_count_30d >= 1",
            ),
        )
        assert sorted(r["person_id"] for r in service.sample(ctx, parse("segment.quiet"))) == [
            "p_b"
        ]
        with pytest.raises(InvalidInputError):
            service.update_rule(ctx.db_session, ctx, "buyers", parse("segment.quiet"))
        with pytest.raises(ConflictError):
            service.create_segment(
                ctx.db_session,
                ctx,
                SegmentCreate(key="buyers", name="x", rule_text="tag.gender = 'f'"),
            )


def test_evaluations_record_who_entered_and_exited(tagged: EventStore, database: Database) -> None:
    for ctx in context(database, tagged):
        service.create_segment(
            ctx.db_session,
            ctx,
            SegmentCreate(
                key="recent", name="近30天下单", rule_text="event(order_paid, last 30d).count >= 1"
            ),
        )
        first = service.evaluate(ctx, "recent")
        assert (first.members, first.entered, first.exited) == (1, 1, 0)
    append(tagged, row("member_no:B", "order_paid", 1, amount="10.00"))
    later = AS_OF + timedelta(days=20)
    with database.unit_of_work() as session:
        ctx = service.world(session, tagged, tz=SHANGHAI, now=later)
        second = service.evaluate(ctx, "recent")
    # 20 days on, A's orders (3 and 10 days before) are still in; B's new one too.
    assert (second.members, second.entered, second.exited) == (2, 1, 0)
    with database.unit_of_work() as session:
        ctx = service.world(session, tagged, tz=SHANGHAI, now=later + timedelta(days=60))
        third = service.evaluate(ctx, "recent")
        assert (third.members, third.entered, third.exited) == (0, 0, 2)
        exited = service.changes(tagged, "recent", change="exited")
        assert sorted(r["person_id"] for r in exited) == ["p_a", "p_b"]
        assert [e.members for e in service.evaluations(session, "recent")] == [0, 2, 1]
    emitted = tagged.table().filter(lambda t: t.name.startswith("segment_")).to_pyarrow()
    names = sorted(zip(emitted["name"].to_pylist(), emitted["user_id"].to_pylist(), strict=True))
    assert names == [
        ("segment_entered", "oneid:p_a"),
        ("segment_entered", "oneid:p_b"),
        ("segment_exited", "oneid:p_a"),
        ("segment_exited", "oneid:p_b"),
    ]


def test_static_lists_keep_known_people_only(tagged: EventStore, database: Database) -> None:
    for ctx in context(database, tagged):
        service.create_segment(
            ctx.db_session, ctx, SegmentCreate(key="vip_list", name="名单", kind="static")
        )
        lines = ["phone:138 0013 5678", "p_c", "ghost", "p_a", "phone:13900000000"]
        ids = service.people_from_lines(ctx.db_session, HASH_KEY, lines)
        assert ids == ["p_a", "p_c", "ghost", "p_a", "phone:13900000000"]
        result = service.upload_members(ctx.db_session, tagged, "vip_list", ids)
        assert result == {"given": 4, "members": 2, "unknown": 2}
        assert sorted(r["person_id"] for r in service.sample(ctx, parse("segment.vip_list"))) == [
            "p_a",
            "p_c",
        ]
        with pytest.raises(InvalidInputError):
            service.update_rule(ctx.db_session, ctx, "vip_list", parse("tag.gender = 'x'"))


def test_export_masks_identifiers_and_defuses_formulas(
    tagged: EventStore, database: Database, tmp_path: Path
) -> None:
    for ctx in context(database, tagged):
        service.create_segment(
            ctx.db_session,
            ctx,
            SegmentCreate(key="all_buyers", name="买家", rule_text="tag.orders_amount_365d > 0"),
        )
        data = service.export_rows(ctx, "all_buyers", columns=["orders_amount_365d", "gender"])
        with pytest.raises(InvalidInputError):
            service.export_rows(ctx, "all_buyers", columns=["nope"])
    out = tmp_path / "buyers.csv"
    service.write_export(data, out, "csv")
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [r["person_id"] for r in rows] == ["p_a", "p_b"]
    assert rows[0]["identifiers"] == "phone:138****5678"
    assert "13800" not in out.read_text(encoding="utf-8-sig")
    assert service._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"


@pytest.fixture
def client(settings: Settings, database: Database, tagged: EventStore) -> Iterator[TestClient]:
    settings = settings.model_copy(update={"database_url": str(database.engine.url)})
    with TestClient(create_app(settings, events=tagged)) as test_client:
        yield test_client


def test_api_counts_creates_evaluates_exports(client: TestClient) -> None:
    counted = client.post(
        "/v1/segments/count", json={"rule_text": "tag.orders_amount_365d>0", "sample": 5}
    )
    assert counted.status_code == 200
    body = counted.json()
    assert body["count"] == 2 and body["rule_text"] == "tag.orders_amount_365d > 0"
    assert [m["person_id"] for m in body["sample"]] == ["p_a", "p_b"]
    bad = client.post("/v1/segments/count", json={"rule_text": "tag.x = "})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem")
    unknown = client.post("/v1/segments/count", json={"rule_text": "tag.nope = 1"})
    assert unknown.status_code == 422
    both = client.post("/v1/segments/count", json={"rule_text": "tag.x = 1", "rule": {}})
    assert both.status_code == 422
    created = client.post(
        "/v1/segments",
        json={"key": "buyers", "name": "买家", "rule_text": "tag.orders_amount_365d > 0"},
    )
    assert created.status_code == 201, created.text
    assert client.get("/v1/segments/buyers/count").json()["count"] == 2
    evaluated = client.post("/v1/segments/buyers/evaluate").json()
    assert evaluated["entered"] == 2
    exported = client.get("/v1/segments/buyers/export", params={"columns": ["gender"]})
    assert exported.status_code == 200
    assert exported.text.splitlines()[0].lstrip("\ufeff") == "person_id,gender,identifiers"
    assert client.get("/v1/segments/nope").status_code == 404
    listed = client.get("/v1/segments").json()
    assert listed["total"] == 1 and listed["items"][0]["members"] == 2


def test_cli_counts_an_unsaved_rule(
    settings: Settings,
    database: Database,
    tagged: EventStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from siyu.cli import app
    from siyu.core.config import get_settings

    tagged.close()
    monkeypatch.setenv("SIYU_HOME", str(settings.home))
    monkeypatch.setenv("SIYU_DATABASE_URL", database.engine.url.render_as_string(False))
    monkeypatch.setenv("SIYU_EVENTS_URL", f"duckdb:///{tmp_path / 'events.duckdb'}")
    monkeypatch.setenv("SIYU_LANG", "en")
    get_settings.cache_clear()
    runner = CliRunner()
    counted = runner.invoke(
        app, ["segments", "count", "--rule", "tag.orders_count_30d >= 2", "--json"]
    )
    assert counted.exit_code == 0, counted.output
    document: dict[str, Any] = json.loads(counted.output)
    assert document["count"] == 1
    wrong = runner.invoke(app, ["segments", "count", "--rule", "tag.orders_count_30d >= "])
    assert wrong.exit_code == 2 and "column" in wrong.output
    get_settings.cache_clear()
