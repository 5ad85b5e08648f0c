"""Sources and dead letters through the CLI, and the collect migration on both dialects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect
from typer.testing import CliRunner

from siyu.api import create_app
from siyu.cli import app
from siyu.collect import messages
from siyu.store import Database
from siyu.store.migrate import pending_changes
from tests.collect.tracking import basic, make_world, stored_in

runner = CliRunner()


def test_migration_creates_the_tables_and_matches_the_models(database: Database) -> None:
    tables = set(inspect(database.engine).get_table_names())
    assert {"source", "dead_letter"} <= tables
    assert pending_changes(database) == []


def _run(home: Path, *args: str) -> str:
    result = runner.invoke(app, list(args), env={"SIYU_HOME": str(home), "SIYU_LANG": "en"})
    assert result.exit_code == 0, result.output
    return result.output


def test_sources_create_list_rotate_revoke(tmp_path: Path) -> None:
    world = make_world(tmp_path)  # migrated home
    created = json.loads(
        _run(tmp_path, "sources", "create", "小程序", "--user-id-type", "openid", "--json")
    )
    source_id, key = created["source"]["id"], created["write_key"]
    assert created["source"]["user_id_type"] == "openid"
    assert created["source"]["key_prefix"] == key[:8]

    listed = json.loads(_run(tmp_path, "sources", "list", "--json"))
    assert {row["id"] for row in listed} == {world.source_id, source_id}
    assert "write_key" not in json.dumps(listed) and key not in json.dumps(listed)

    body = {"userId": "oABCDEF123", "event": "e", "messageId": "1"}
    rotated = json.loads(_run(tmp_path, "sources", "rotate", source_id, "--json"))["write_key"]
    with TestClient(create_app(world.settings)) as client:
        assert client.post("/v1/track", json=body, headers=basic(key)).status_code == 401
        assert client.post("/v1/track", json=body, headers=basic(rotated)).status_code == 200
        _run(tmp_path, "sources", "revoke", source_id)
        assert client.post("/v1/track", json=body, headers=basic(rotated)).status_code == 401

    bad = runner.invoke(
        app,
        ["sources", "create", "x", "--user-id-type", "qq"],
        env={"SIYU_HOME": str(tmp_path), "SIYU_LANG": "en"},
    )
    assert bad.exit_code == 2
    assert "not an identifier type" in bad.output


def test_dead_letters_list_and_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_world(tmp_path)
    future = {
        "type": "track",
        "messageId": "late",
        "userId": "M1",
        "event": "e",
        "timestamp": "2099-01-01T00:00:00Z",
    }
    with TestClient(create_app(world.settings)) as client:
        answer = client.post("/v1/batch", json={"batch": [future]}, headers=world.auth).json()
    assert answer["accepted"] == 0

    letters = json.loads(_run(tmp_path, "collect", "dead-letters", "list", "--json"))
    assert [letter["field"] for letter in letters] == ["timestamp"]
    assert (
        json.loads(
            _run(tmp_path, "collect", "dead-letters", "list", "--source", "src_other", "--json")
        )
        == []
    )

    # Still refused under today's rules.
    result = json.loads(_run(tmp_path, "collect", "dead-letters", "replay", "--all", "--json"))
    assert result == {"replayed": 0, "duplicates": 0, "still_rejected": 1}
    # The rules change (here: any future is allowed): the replay stores it, once.
    monkeypatch.setattr(messages, "MAX_FUTURE", messages.timedelta(days=365 * 100))
    result = json.loads(
        _run(tmp_path, "collect", "dead-letters", "replay", "--id", letters[0]["id"], "--json")
    )
    assert result == {"replayed": 1, "duplicates": 0, "still_rejected": 0}
    again = json.loads(_run(tmp_path, "collect", "dead-letters", "replay", "--all", "--json"))
    assert again == {"replayed": 0, "duplicates": 0, "still_rejected": 0}
    assert [row["event_id"] for row in stored_in(world.settings)] == ["late"]
    listed = json.loads(_run(tmp_path, "collect", "dead-letters", "list", "--json"))
    assert listed[0]["replayed_at"] is not None
