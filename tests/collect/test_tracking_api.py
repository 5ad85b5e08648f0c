"""The tracking API end to end: Segment's example payloads, auth, dedup, group commit."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

from fastapi.testclient import TestClient

from siyu.api import create_app
from siyu.collect import service as sources
from siyu.store import open_database
from tests.collect.tracking import PROBLEM, World, basic, client, dead_letters, stored, world

__all__ = ["client", "world"]

# Shapes from Segment's HTTP Tracking API reference (messageIds added: libraries send them).
IDENTIFY = {
    "userId": "019mr8mf4r",
    "traits": {"email": "pgibbons@example.com", "name": "Peter Gibbons", "industry": "Technology"},
    "context": {"ip": "24.5.68.47"},
    "timestamp": "2012-12-02T00:30:08.276Z",
}
TRACK = {
    "userId": "019mr8mf4r",
    "event": "Item Purchased",
    "properties": {"name": "Leap to Conclusions Mat", "revenue": 14.99},
    "context": {"ip": "24.5.68.47"},
    "timestamp": "2012-12-02T00:30:12.984Z",
}
PAGE = {
    "userId": "019mr8mf4r",
    "name": "Tracking HTTP API",
    "timestamp": "2012-12-02T00:31:29.738Z",
}
ALIAS = {
    "previousId": "39239-239239-239239-23923",
    "userId": "019mr8mf4r",
    "timestamp": "2012-12-02T00:30:08.276Z",
}
BATCH = {
    "batch": [
        {
            "type": "identify",
            "messageId": "b-1",
            "userId": "019mr8mf4r",
            "traits": {"email": "jake@yahoo.com", "name": "Jake Peterson", "age": 26},
            "timestamp": "2012-12-02T00:30:08.276Z",
        },
        {
            "type": "track",
            "messageId": "b-2",
            "userId": "019mr8mf4r",
            "event": "Song Played",
            "properties": {"name": "Fallin for You", "artist": "Dierks Bentley"},
            "timestamp": "2012-12-02T00:30:12.984Z",
        },
        {
            "type": "track",
            "messageId": "b-3",
            "userId": "971mj8mk7p",
            "event": "Song Played",
            "properties": {"name": "Fallin for You", "artist": "Dierks Bentley"},
            "timestamp": "2012-12-02T00:30:12.984Z",
        },
    ],
    "context": {"device": {"type": "phone", "name": "Apple iPhone 6"}},
}


def test_segment_single_calls_each_store_one_row(client: TestClient, world: World) -> None:
    for path, body in (
        ("identify", IDENTIFY),
        ("track", TRACK),
        ("page", PAGE),
        ("alias", ALIAS),
        ("screen", {"anonymousId": "dev-1", "name": "首页", "messageId": "s-1"}),
    ):
        response = client.post(
            f"/v1/{path}", json={**body, "messageId": f"m-{path}"}, headers=world.auth
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"success": True, "accepted": 1, "duplicates": 0, "rejected": []}

    rows = {row["event_id"]: row for row in stored(client)}
    assert set(rows) == {"m-identify", "m-track", "m-page", "m-alias", "m-screen"}
    identify = rows["m-identify"]
    assert identify["name"] == "identify"
    assert identify["user_id"] == "member_no:019mr8mf4r"
    assert json.loads(identify["identifiers"]) == {
        "member_no": "019mr8mf4r",
        "email": "pgibbons@example.com",
    }
    assert json.loads(identify["properties"])["industry"] == "Technology"
    assert identify["ts"].isoformat() == "2012-12-02T00:30:08.276000+00:00"
    assert identify["source"] == world.source_id
    track = rows["m-track"]
    assert track["name"] == "Item Purchased"
    assert track["amount"] == Decimal("14.99")
    assert track["channel"] == "web"
    assert json.loads(rows["m-page"]["properties"]) == {"name": "Tracking HTTP API"}
    assert rows["m-page"]["name"] == "page_view"
    assert json.loads(rows["m-alias"]["properties"]) == {"previous_id": "39239-239239-239239-23923"}
    assert rows["m-screen"]["channel"] == "app"
    assert rows["m-screen"]["anonymous_id"] == "dev-1"


def test_segment_batch_and_order_columns(client: TestClient, world: World) -> None:
    response = client.post("/v1/batch", json=BATCH, headers=world.auth)
    assert response.json() == {"success": True, "accepted": 3, "duplicates": 0, "rejected": []}

    order = {
        "type": "track",
        "messageId": "o-1",
        "userId": "M0001",
        "event": "Order Completed",
        "properties": {
            "order_id": 50314,
            "total": "27.50",
            "revenue": 25,
            "currency": "cny",
            "sku": "SKU-1",
            "category": "护肤",
            "quantity": 2,
        },
        "context": {
            "channel": "miniprogram",
            "campaign": {"source": "moments", "medium": "social", "name": "双11预热"},
            "miniprogram": {"scene": 1089, "openid": "oX1234567890", "unionid": "uN1234567890"},
            "identifiers": {"phone": "+86 138 0013 8000", "custom:crm_id": "C-9"},
            "externalIds": [{"id": "wmABCDEF123", "type": "wecom_external_userid"}],
        },
    }
    response = client.post("/v1/batch", json={"batch": [order]}, headers=world.auth)
    assert response.json()["accepted"] == 1
    row = next(row for row in stored(client) if row["event_id"] == "o-1")
    assert row["name"] == "order_paid"
    assert (row["order_id"], row["amount"], row["currency"]) == ("50314", Decimal("27.50"), "CNY")
    assert (row["sku"], row["category"], row["quantity"]) == ("SKU-1", "护肤", 2)
    assert (row["channel"], row["scene"]) == ("miniprogram", "1089")
    assert (row["utm_source"], row["utm_medium"], row["utm_campaign"]) == (
        "moments",
        "social",
        "双11预热",
    )
    assert json.loads(row["identifiers"]) == {
        "member_no": "M0001",
        "phone": "+86 138 0013 8000",
        "custom:crm_id": "C-9",
        "openid": "oX1234567890",
        "unionid": "uN1234567890",
        "wecom_external_userid": "wmABCDEF123",
    }


def test_auth_none_wrong_revoked_and_rotated(client: TestClient, world: World) -> None:
    body = {**TRACK, "messageId": "a-1"}
    for headers in (
        {},
        basic("not-a-key"),
        {"Authorization": "Bearer x"},
        {"Authorization": "Basic %%%"},
    ):
        response = client.post("/v1/track", json=body, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"].startswith("Basic")
        assert response.json()["code"] == "write_key_invalid"

    database = open_database(world.settings.resolved_database_url)
    try:
        with database.unit_of_work() as db_session:
            _, new_key = sources.rotate(db_session=db_session, source_id=world.source_id)
        assert client.post("/v1/track", json=body, headers=world.auth).status_code == 401
        assert client.post("/v1/track", json=body, headers=basic(new_key)).status_code == 200
        with database.unit_of_work() as db_session:
            sources.revoke(db_session=db_session, source_id=world.source_id)
    finally:
        database.dispose()
    assert client.post("/v1/track", json=body, headers=basic(new_key)).status_code == 401
    assert [row["event_id"] for row in stored(client)] == ["a-1"]


def test_duplicates_across_batches_inside_a_batch_and_after_a_restart(world: World) -> None:
    first = {"batch": [{**item, "messageId": f"d-{n}"} for n, item in enumerate(BATCH["batch"])]}
    with TestClient(create_app(world.settings)) as client:
        assert client.post("/v1/batch", json=first, headers=world.auth).json()["accepted"] == 3
        again = client.post("/v1/batch", json=first, headers=world.auth).json()
        assert (again["accepted"], again["duplicates"]) == (0, 3)
        twice = {"batch": [first["batch"][0] | {"messageId": "d-new"}] * 2}
        inside = client.post("/v1/batch", json=twice, headers=world.auth).json()
        assert (inside["accepted"], inside["duplicates"]) == (1, 1)
    with TestClient(create_app(world.settings)) as client:
        after = client.post("/v1/batch", json=first, headers=world.auth).json()
        assert (after["accepted"], after["duplicates"]) == (0, 3)
        assert len(stored(client)) == 4


def test_concurrent_requests_share_appends_and_all_are_acknowledged(
    client: TestClient, world: World
) -> None:
    def send(n: int) -> dict[str, int]:
        batch = [
            {"type": "track", "messageId": f"c-{n}-{k}", "anonymousId": f"a{n}", "event": "tap"}
            for k in range(50)
        ]
        # Every request also repeats one message of request 0, to count duplicates right.
        batch.append({"type": "track", "messageId": "c-0-0", "anonymousId": "a0", "event": "tap"})
        return client.post("/v1/batch", json={"batch": batch}, headers=world.auth).json()

    writer = client.app.state.collect_writer  # type: ignore[attr-defined]
    before = writer.appends
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(40)))
    assert sum(answer["accepted"] for answer in answers) == 40 * 50
    assert sum(answer["duplicates"] for answer in answers) == 40
    assert len(stored(client)) == 40 * 50
    assert writer.appends - before < 40  # requests were grouped into fewer appends


def test_single_call_refused_is_400_with_fields_and_dead_lettered(
    client: TestClient, world: World
) -> None:
    response = client.post(
        "/v1/identify",
        json={"userId": "M1", "messageId": "x-1", "traits": {"phone": "abc"}},
        headers=world.auth,
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == "invalid_message"
    assert problem["errors"] == [
        {"index": 0, "field": "traits.phone", "reason": "is not a valid phone"}
    ]
    [letter] = dead_letters(world.settings)
    assert letter.field == "traits.phone"
    assert json.loads(letter.payload)["type"] == "identify"
    assert stored(client) == []


def test_single_call_without_message_id_gets_one(client: TestClient, world: World) -> None:
    body = dict(TRACK)
    assert client.post("/v1/track", json=body, headers=world.auth).json()["accepted"] == 1
    assert client.post("/v1/track", json=body, headers=world.auth).json()["accepted"] == 1
    ids = [row["event_id"] for row in stored(client)]
    assert len(set(ids)) == 2
    assert all(event_id.startswith("msg_") for event_id in ids)


def test_events_store_unavailable_is_503(world: World, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.duckdb"
    damaged.write_bytes(b"not a duckdb file" * 1000)
    settings = world.settings.model_copy(update={"events_url": f"duckdb:///{damaged}"})
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/track", json=TRACK, headers=world.auth)
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
