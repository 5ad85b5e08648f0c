"""Bad input: each bad message is refused alone (dead-lettered, field named), the rest of its
batch is stored, and nothing stored before is lost; a bad body as a whole is 400/413/415."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.collect.tracking import PROBLEM, World, client, dead_letters, stored, world

__all__ = ["client", "world"]

INJECTION = "'; DROP TABLE events; -- <script>alert(1)</script> {{7*7}} ${jndi:x}"


def good(message_id: str) -> dict[str, Any]:
    return {"type": "track", "messageId": message_id, "userId": "M1", "event": "tap"}


BAD_ITEMS: list[tuple[str, Any, str]] = [
    ("not an object", "hello", "message"),
    ("unknown type", {**good("x"), "type": "group"}, "type"),
    ("missing type", {k: v for k, v in good("x").items() if k != "type"}, "type"),
    ("missing event name", {k: v for k, v in good("x").items() if k != "event"}, "event"),
    ("empty event name", {**good("x"), "event": ""}, "event"),
    ("event name not a string", {**good("x"), "event": ["a"]}, "event"),
    ("missing messageId", {k: v for k, v in good("x").items() if k != "messageId"}, "messageId"),
    ("no user", {"type": "track", "messageId": "x", "event": "tap"}, "userId"),
    ("properties not an object", {**good("x"), "properties": [1, 2]}, "properties"),
    ("negative amount", {**good("x"), "properties": {"revenue": -5}}, "properties.revenue"),
    ("amount not a number", {**good("x"), "properties": {"amount": "ten"}}, "properties.amount"),
    ("boolean amount", {**good("x"), "properties": {"total": True}}, "properties.total"),
    ("NaN amount as string", {**good("x"), "properties": {"revenue": "NaN"}}, "properties.revenue"),
    ("huge amount", {**good("x"), "properties": {"revenue": 1e20}}, "properties.revenue"),
    ("negative quantity", {**good("x"), "properties": {"quantity": -1}}, "properties.quantity"),
    ("bad currency", {**good("x"), "properties": {"currency": "人民币"}}, "properties.currency"),
    ("timestamp in 1970", {**good("x"), "timestamp": "1970-01-01T00:00:00Z"}, "timestamp"),
    ("timestamp in 2099", {**good("x"), "timestamp": "2099-01-01T00:00:00Z"}, "timestamp"),
    ("timestamp not a date", {**good("x"), "timestamp": "yesterday"}, "timestamp"),
    ("timestamp a number", {**good("x"), "timestamp": 1700000000}, "timestamp"),
    (
        "phone not digits",
        {**good("x"), "type": "identify", "traits": {"phone": "abc"}},
        "traits.phone",
    ),
    (
        "email without @",
        {**good("x"), "type": "identify", "traits": {"email": "nobody"}},
        "traits.email",
    ),
    (
        "unknown identifier type",
        {**good("x"), "context": {"identifiers": {"qq": "1"}}},
        "context.identifiers.qq",
    ),
    (
        "openid too short",
        {**good("x"), "context": {"miniprogram": {"openid": "o1"}}},
        "context.miniprogram.openid",
    ),
    ("unknown channel", {**good("x"), "context": {"channel": "fax"}}, "context.channel"),
    ("context not an object", {**good("x"), "context": "web"}, "context"),
    ("alias without previousId", {"type": "alias", "messageId": "x", "userId": "M1"}, "previousId"),
    ("control character in userId", {**good("x"), "userId": "M\u00001"}, "userId"),
    ("lone surrogate", {**good("x"), "event": "\ud800"}, "event"),
    ("properties over 32 KB", {**good("x"), "properties": {"blob": "x" * 40_000}}, "properties"),
]


@pytest.mark.parametrize(
    ("case", "item", "field"), BAD_ITEMS, ids=[case for case, _, _ in BAD_ITEMS]
)
def test_a_bad_message_is_refused_alone(
    client: TestClient, world: World, case: str, item: Any, field: str
) -> None:
    before = client.post("/v1/batch", json={"batch": [good("earlier")]}, headers=world.auth)
    assert before.json()["accepted"] == 1

    body = {"batch": [good("first"), item, good("last")]}
    # ASCII escapes, so a lone surrogate travels as the JSON text \ud800.
    response = client.post("/v1/batch", content=json.dumps(body), headers=world.auth)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 2
    assert [(r["index"], r["field"]) for r in answer["rejected"]] == [(1, field)]
    assert [row["event_id"] for row in stored(client)] == ["earlier", "first", "last"]
    [letter] = dead_letters(world.settings)
    assert (letter.field, letter.source_id) == (field, world.source_id)


def test_nan_and_infinity_literals_refuse_only_their_message(
    client: TestClient, world: World
) -> None:
    raw = (
        '{"batch": [' + json.dumps(good("a")) + ","
        '{"type": "track", "messageId": "b", "userId": "M1", "event": "e",'
        ' "properties": {"revenue": NaN}},'
        '{"type": "track", "messageId": "c", "userId": "M1", "event": "e",'
        ' "properties": {"x": Infinity}}]}'
    )
    answer = client.post("/v1/batch", content=raw, headers=world.auth).json()
    assert answer["accepted"] == 1
    assert [(r["index"], r["field"]) for r in answer["rejected"]] == [
        (1, "properties.revenue"),
        (2, "properties"),
    ]


def test_injection_strings_are_stored_verbatim(client: TestClient, world: World) -> None:
    item = {
        "type": "track",
        "messageId": INJECTION,
        "userId": INJECTION,
        "event": INJECTION,
        "properties": {INJECTION: INJECTION, "order_id": INJECTION},
    }
    assert (
        client.post("/v1/batch", json={"batch": [item]}, headers=world.auth).json()["accepted"] == 1
    )
    [row] = stored(client)
    assert row["event_id"] == row["name"] == row["order_id"] == INJECTION
    assert row["user_id"] == f"member_no:{INJECTION}"
    assert json.loads(row["properties"])[INJECTION] == INJECTION


def test_duplicate_message_ids_inside_a_batch_keep_the_first(
    client: TestClient, world: World
) -> None:
    batch = [good("same") | {"event": "first"}, good("same") | {"event": "second"}, good("other")]
    answer = client.post("/v1/batch", json={"batch": batch}, headers=world.auth).json()
    assert (answer["accepted"], answer["duplicates"]) == (2, 1)
    assert [row["name"] for row in stored(client)] == ["tap", "first"]


BAD_BODIES: list[tuple[str, bytes, dict[str, str], int]] = [
    ("not JSON", b'{"batch": [', {}, 400),
    ("not an object", b"[1, 2]", {}, 400),
    ("batch not a list", b'{"batch": {"a": 1}}', {}, 400),
    ("no batch", b"{}", {}, 400),
    ("not UTF-8", b'{"batch": ["\xff\xfe"]}', {}, 400),
    ("deeply nested", b'{"batch": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", {}, 400),
    ("10 MB string", b'{"batch": [{"event": "' + b"x" * 10_000_000 + b'"}]}', {}, 413),
    ("1001 messages", json.dumps({"batch": [good(str(n)) for n in range(1001)]}).encode(), {}, 413),
    ("bad batch sentAt", b'{"batch": [], "sentAt": "soon"}', {}, 400),
    ("gzip bomb", gzip.compress(b" " * 60_000_000), {"Content-Encoding": "gzip"}, 413),
    ("truncated gzip", gzip.compress(b'{"batch": []}')[:-10], {"Content-Encoding": "gzip"}, 400),
    ("not gzip", b'{"batch": []}', {"Content-Encoding": "gzip"}, 400),
    ("brotli", b'{"batch": []}', {"Content-Encoding": "br"}, 415),
]


@pytest.mark.parametrize(
    ("case", "body", "headers", "status"), BAD_BODIES, ids=[case for case, *_ in BAD_BODIES]
)
def test_a_bad_body_is_refused_whole_and_loses_nothing(
    client: TestClient, world: World, case: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    assert (
        client.post("/v1/batch", json={"batch": [good("kept")]}, headers=world.auth).json()[
            "accepted"
        ]
        == 1
    )

    response = client.post("/v1/batch", content=body, headers=world.auth | headers)

    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert [row["event_id"] for row in stored(client)] == ["kept"]
    [letter] = dead_letters(world.settings)
    assert letter.field == "body"
    assert len(letter.payload) <= 64 * 1024


def test_gzip_bodies_are_accepted(client: TestClient, world: World) -> None:
    body = gzip.compress(json.dumps({"batch": [good("z1"), good("z2")]}).encode())
    response = client.post(
        "/v1/batch", content=body, headers=world.auth | {"Content-Encoding": "gzip"}
    )
    assert response.json()["accepted"] == 2


def test_single_call_with_a_mismatched_type_is_refused(client: TestClient, world: World) -> None:
    response = client.post("/v1/track", json=good("t") | {"type": "identify"}, headers=world.auth)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "type"
