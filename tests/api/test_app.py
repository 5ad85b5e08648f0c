"""The app: health, readiness, request ids, languages, compression and problem+json everywhere."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from siyu import __version__
from siyu.api import create_app
from siyu.core.config import Settings
from siyu.store import open_database
from siyu.store.migrate import upgrade

PROBLEM = "application/problem+json"


def migrate(settings: Settings) -> None:
    database = open_database(settings.resolved_database_url)
    try:
        upgrade(database)
    finally:
        database.dispose()


class Order(BaseModel):
    order_id: str = Field(min_length=3)
    quantity: int = Field(ge=1)
    tags: list[str] = Field(default_factory=list, max_length=2)


def _test_router() -> APIRouter:
    """Routes that exist only in these tests, to reach the error paths."""
    router = APIRouter(prefix="/_test")

    @router.post("/orders")
    def create_order(order: Order) -> dict[str, str]:
        return {"order_id": order.order_id}

    @router.get("/boom")
    def boom() -> dict[str, str]:
        raise RuntimeError("the database password is hunter2")

    @router.get("/big")
    def big() -> dict[str, list[str]]:
        return {"items": ["私域运营"] * 2000}

    return router


def build_app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    app.include_router(_test_router())
    return app


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    migrate(settings)
    with TestClient(build_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


def test_readyz_before_and_after_upgrade(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        before = client.get("/readyz", headers={"Accept-Language": "en"})

        assert before.status_code == 503
        assert before.headers["content-type"] == PROBLEM
        body = before.json()
        assert body["status"] == 503
        assert body["code"] == "not_ready"
        assert body["title"] == "Not ready"
        assert body["checks"]["database"]["status"] == "failing"
        assert "siyu db upgrade" in body["checks"]["database"]["hint"]
        assert body["checks"]["events"] == {"status": "ok"}
        assert body["detail"].startswith("database: ")

        migrate(settings)
        after = client.get("/readyz")

        assert after.status_code == 200
        assert after.json() == {
            "status": "ready",
            "checks": {
                "database": {"status": "ok", "reason": None, "hint": None},
                "events": {"status": "ok", "reason": None, "hint": None},
            },
        }


def test_readyz_reports_a_corrupt_event_store_and_the_app_still_starts(settings: Settings) -> None:
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    events_file = settings.home_dir / "events.duckdb"
    events_file.write_bytes(b"\x00\xffnot duckdb" * 5000)
    migrate(settings)

    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz", headers={"Accept-Language": "en"})

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == {"status": "ok"}
    assert checks["events"]["status"] == "failing"
    assert str(events_file) in checks["events"]["reason"]
    assert "damaged" in checks["events"]["reason"]


def test_unknown_route_is_a_problem(client: TestClient) -> None:
    response = client.get("/no/such/route", headers={"Accept-Language": "en"})

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 404
    assert body["title"] == "Not found"
    assert body["instance"] == "/no/such/route"
    assert body["type"] == "urn:siyu:problem:not_found"
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["request_id"].startswith("req_")


def test_wrong_method_is_a_problem_with_allow(client: TestClient) -> None:
    response = client.delete("/healthz")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert "GET" in response.headers["allow"]
    assert response.json()["title"] == "不支持该请求方法"


def test_request_id_is_echoed_when_valid(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "trace-42.a:b_c"})
    assert response.headers["x-request-id"] == "trace-42.a:b_c"


@pytest.mark.parametrize("bad", ["a" * 500, "has spaces in it", "semi;colon", "新的"])
def test_request_id_is_replaced_when_invalid(client: TestClient, bad: str) -> None:
    response = client.get("/no/such/route", headers={"X-Request-ID": bad.encode()})
    echoed = response.headers["x-request-id"]
    assert echoed != bad
    assert echoed.startswith("req_")
    assert response.json()["request_id"] == echoed


def test_each_response_gets_a_new_request_id(client: TestClient) -> None:
    ids = {client.get("/healthz").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


def test_language_follows_accept_language(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        english = client.get("/readyz", headers={"Accept-Language": "en-US,en;q=0.9"})
        chinese = client.get("/readyz", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
        default = client.get("/readyz")

    assert english.headers["content-language"] == "en"
    assert chinese.headers["content-language"] == "zh-CN"
    assert default.headers["content-language"] == "zh-CN"
    assert english.json()["title"] == "Not ready"
    assert chinese.json()["title"] == "服务未就绪"
    assert "is at revision empty" in english.json()["detail"]
    assert "业务数据库当前版本为 empty" in chinese.json()["detail"]
    assert chinese.json()["checks"]["database"]["hint"] == "请运行 `siyu db upgrade`。"
    assert default.json()["title"] == chinese.json()["title"]


def test_big_responses_are_compressed(client: TestClient) -> None:
    response = client.get("/_test/big", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) < len(response.content)  # decoded by the client
    assert response.json()["items"][0] == "私域运营"


def test_openapi_is_valid_json_with_health_paths_and_gzipped(client: TestClient) -> None:
    with client.stream("GET", "/openapi.json", headers={"Accept-Encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == "gzip"
    document = json.loads(gzip.decompress(raw))

    assert document["openapi"].startswith("3.")
    assert {"/healthz", "/readyz"} <= set(document["paths"])
    assert document["info"]["version"] == __version__
    assert "503" in document["paths"]["/readyz"]["get"]["responses"]


def test_small_responses_are_not_compressed(client: TestClient) -> None:
    response = client.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in response.headers


def test_validation_errors_list_each_field_with_a_pointer(client: TestClient) -> None:
    response = client.post(
        "/_test/orders",
        json={"order_id": "x", "quantity": 0, "tags": ["a", "b", "c"]},
        headers={"Accept-Language": "en"},
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == "validation_failed"
    assert body["title"] == "Invalid request"
    assert body["detail"] == "The request has 3 invalid fields"
    pointers = {error["pointer"]: error for error in body["errors"]}
    assert set(pointers) == {"/body/order_id", "/body/quantity", "/body/tags"}
    assert pointers["/body/quantity"]["field"] == "quantity"
    assert pointers["/body/quantity"]["type"] == "greater_than_equal"
    assert all(error["reason"] for error in body["errors"])


def test_nested_validation_pointer(client: TestClient) -> None:
    response = client.post(
        "/_test/orders", json={"order_id": "abc", "quantity": 1, "tags": ["ok", 5]}
    )
    body = response.json()
    assert response.status_code == 422
    assert [error["pointer"] for error in body["errors"]] == ["/body/tags/1"]
    assert body["detail"] == "请求中有 1 个字段无效"


def test_missing_body_is_a_validation_problem(client: TestClient) -> None:
    response = client.post("/_test/orders")
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["pointer"] == "/body"


def test_malformed_json_is_a_422_problem(client: TestClient) -> None:
    response = client.post(
        "/_test/orders",
        content=b'{"order_id": "abc", ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    errors = response.json()["errors"]
    assert len(errors) == 1
    assert errors[0]["pointer"] == "/body"
    assert errors[0]["type"] == "json_invalid"


def test_a_body_that_is_not_utf8_is_a_422_problem(client: TestClient) -> None:
    response = client.post(
        "/_test/orders",
        content='{"order_id": "订单号", "quantity": 1}'.encode("gb18030"),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["pointer"] == "/body"
    assert "UTF-8" in response.json()["errors"][0]["reason"]


def test_an_unexpected_error_is_a_500_problem_without_internals(client: TestClient) -> None:
    response = client.get(
        "/_test/boom", headers={"X-Request-ID": "boom-1", "Accept-Language": "en"}
    )

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["x-request-id"] == "boom-1"
    assert response.headers["content-language"] == "en"
    body = response.json()
    assert body["request_id"] == "boom-1"
    assert body["code"] == "internal_error"
    assert body["title"] == "Internal error"
    assert "request id" in body["detail"]
    text = response.text
    for leak in ("Traceback", "RuntimeError", "hunter2", ".py"):
        assert leak not in text


def test_the_app_starts_with_the_secret_key_and_home(tmp_path: Path, settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
    assert (settings.home_dir / "secret.key").exists()
    assert (settings.home_dir / "events.duckdb").exists()
