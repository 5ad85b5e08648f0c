"""``/v1/people`` and ``siyu people show`` on a resolved demo brand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from siyu.api import create_app
from siyu.cli import app as cli_app
from siyu.core.config import Settings, load_settings, secret_key
from siyu.demo.generator import DemoSpec
from siyu.demo.service import generate_into_stores
from siyu.events import open_event_store
from siyu.identity import service as identity
from siyu.store import open_database


@pytest.fixture(scope="module")
def brand(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, str]]:
    home = tmp_path_factory.mktemp("people")
    settings = load_settings(home=Path(home))
    generate_into_stores(
        settings, DemoSpec(people=800, days=90, seed=4, end_date=date(2026, 6, 30))
    )
    database = open_database(settings.resolved_database_url)
    with (
        open_event_store(settings.resolved_events_url) as events,
        database.unit_of_work() as session,
    ):
        identity.resolve(
            db_session=session,
            events=events,
            hash_key=identity.derive_hash_key(secret_key(settings)),
        )
        someone = (
            events.table("demo_people")
            .filter(lambda t: t.member_no.notnull() & t.openid.notnull())
            .order_by("person_key")
            .limit(1)
            .to_pyarrow()
            .to_pylist()[0]
        )
    database.dispose()
    return settings, someone


def test_find_by_any_identifier_gives_one_masked_profile(brand) -> None:
    settings, someone = brand
    phone = someone["phone"]
    with TestClient(create_app(settings)) as client:
        by_phone = client.get(
            "/v1/people",
            params={"identifier": f"phone:{phone[:3]}-{phone[3:7]}-{phone[7:]}"},
        )
        assert by_phone.status_code == 200, by_phone.text
        profile = by_phone.json()
        by_member = client.get(
            "/v1/people", params={"identifier": f"member_no:{someone['member_no']}"}
        ).json()
        # The till records phone and member number together: both find the same person.
        assert profile["person_id"] == by_member["person_id"]
        by_id = client.get(f"/v1/people/{profile['person_id']}").json()
        assert by_id == profile
    phones = [i["masked"] for i in profile["identifiers"] if i["type"] == "phone"]
    assert phones == [f"{someone['phone'][:3]}****{someone['phone'][-4:]}"]
    assert someone["phone"] not in by_phone.text
    assert profile["traits"]["name"] == someone["name"]  # the store's record is trusted for names
    assert profile["traits"]["birthday"] == str(someone["birthday"])
    assert 0 < len(profile["latest_events"]) <= 20
    times = [e["ts"] for e in profile["latest_events"]]
    assert times == sorted(times, reverse=True)


def test_bad_lookups_are_clear_errors(brand) -> None:
    settings, _ = brand
    with TestClient(create_app(settings)) as client:
        unknown = client.get("/v1/people", params={"identifier": "phone:13000000000"})
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "application/problem+json"
        for bad in ("nocolon", "colour:red", "phone:", "custom:Bad Name:1"):
            response = client.get("/v1/people", params={"identifier": bad})
            assert response.status_code == 422, bad
        assert client.get("/v1/people/p_nobody").status_code == 404
        assert (
            client.get("/v1/people", params={"identifier": "phone:" + "1" * 400}).status_code == 422
        )


def test_cli_people_show(brand, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, someone = brand
    monkeypatch.setenv("SIYU_HOME", str(settings.home_dir))
    result = CliRunner().invoke(
        cli_app, ["people", "show", f"member_no:{someone['member_no']}", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert someone["name"] in result.output
    missing = CliRunner().invoke(cli_app, ["people", "show", "phone:13000000000"])
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_the_brand_sets_how_traits_survive(brand) -> None:
    settings, someone = brand
    with open_event_store(settings.resolved_events_url) as events:
        events.append(
            pa.table(
                {
                    "event_id": ["traits-test-1"],
                    "name": ["identify"],
                    "ts": [datetime(2026, 6, 30, 12, tzinfo=UTC)],
                    "user_id": [f"member_no:{someone['member_no']}"],
                    "channel": ["web"],
                    "properties": ['{"name": "网上的昵称"}'],
                }
            )
        )
    rules = settings.home_dir / "traits.yaml"
    lookup = {"identifier": f"member_no:{someone['member_no']}"}
    try:
        with TestClient(create_app(settings)) as client:
            trusted = client.get("/v1/people", params=lookup).json()
            rules.write_text("name: latest\n", encoding="utf-8")
            latest = client.get("/v1/people", params=lookup).json()
            rules.write_text("name: [fax]\n", encoding="utf-8")
            broken = client.get(f"/v1/people/{latest['person_id']}")
        assert trusted["traits"]["name"] == someone["name"]  # the store is trusted over the web
        assert latest["traits"]["name"] == "网上的昵称"
        assert broken.status_code == 500
        assert "traits.yaml" in broken.json()["detail"]
    finally:
        rules.unlink(missing_ok=True)
