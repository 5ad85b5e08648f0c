"""A running app with a WeCom and an order endpoint, and helpers to sign deliveries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from siyu.api import create_app
from siyu.collect.webhooks import orders, service
from siyu.collect.webhooks.models import OrderEndpointCreate, WecomEndpointCreate
from siyu.collect.webhooks.secrets import secret_box
from siyu.collect.webhooks.wecom_crypto import WeComCrypto
from siyu.core.config import Settings, secret_key
from siyu.events import EventStore
from siyu.store import open_database
from siyu.store.migrate import upgrade
from tests.collect.webhooks.vectors import SAMPLE_MESSAGE

ORDER_SECRET = "order-secret-0123456789abcdef"


@dataclass
class World:
    client: TestClient
    wecom_id: str
    crypto: WeComCrypto
    youzan_id: str
    shopify_id: str
    custom_id: str

    @property
    def events(self) -> EventStore:
        store = self.client.app.state.context.events  # type: ignore[attr-defined]
        assert store is not None
        return store

    def count(self) -> int:
        return self.events.count()

    def stored(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = (
            self.events.table().order_by("event_id").to_pyarrow().to_pylist()
        )
        return rows

    def wecom_post(
        self, message: bytes, *, timestamp: str = "1700000000", nonce: str = "42", **query: str
    ) -> Any:
        encrypt = self.crypto.encrypt(message)
        params = {
            "msg_signature": self.crypto.sign(timestamp, nonce, encrypt),
            "timestamp": timestamp,
            "nonce": nonce,
            **query,
        }
        body = (
            f"<xml><ToUserName><![CDATA[{self.crypto.receive_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>"
        )
        return self.client.post(
            f"/v1/webhooks/wecom/{self.wecom_id}", params=params, content=body.encode()
        )

    def order_post(
        self,
        endpoint_id: str,
        payload: Any,
        *,
        headers: dict[str, str] | None = None,
        shopify: bool = False,
    ) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        signed = (
            {orders.SHOPIFY_SIGNATURE_HEADER: orders.sign_shopify(ORDER_SECRET, body)}
            if shopify
            else {orders.SIGNATURE_HEADER: orders.sign(ORDER_SECRET, body)}
        )
        return self.client.post(
            f"/v1/webhooks/orders/{endpoint_id}",
            content=body,
            headers={"Content-Type": "application/json", **signed, **(headers or {})},
        )


CUSTOM_MAPPING = {
    "order_id": "data.no",
    "amount": "data.pay.total",
    "currency": "data.pay.currency",
    "paid_at": "data.paid_at",
    "sku": "data.items[*].sku",
    "category": "data.items[*].category",
    "quantity": "data.items[*].qty",
    "identifiers": {"member_no": "data.member.no", "phone": "data.member.mobile"},
    "refund_when": {"path": "event", "in": ["refunded"]},
    "properties": {"store": "data.store"},
    "timezone": "Asia/Shanghai",
}


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    database = open_database(settings.resolved_database_url)
    box = secret_box(secret_key(settings))
    try:
        upgrade(database)
        with database.unit_of_work() as session:
            crypto = WeComCrypto(
                SAMPLE_MESSAGE.token, SAMPLE_MESSAGE.encoding_aes_key, SAMPLE_MESSAGE.corp_id
            )
            wecom = service.create_wecom(
                db_session=session,
                endpoint_in=WecomEndpointCreate(
                    name="wecom-main",
                    corp_id=crypto.receive_id,
                    token=crypto.token,
                    encoding_aes_key=crypto.encoding_aes_key,
                ),
                box=box,
            )
            ids = {}
            for name, mapping in (
                ("youzan", orders.YOUZAN.model_dump(mode="json", by_alias=True)),
                ("shopify", orders.SHOPIFY.model_dump(mode="json", by_alias=True)),
                ("custom", CUSTOM_MAPPING),
            ):
                endpoint = service.create_order(
                    db_session=session,
                    endpoint_in=OrderEndpointCreate(
                        name=name, secret=ORDER_SECRET, field_mapping=mapping
                    ),
                    box=box,
                )
                ids[name] = endpoint.id
            wecom_id = wecom.id
    finally:
        database.dispose()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield World(
            client=client,
            wecom_id=wecom_id,
            crypto=crypto,
            youzan_id=ids["youzan"],
            shopify_id=ids["shopify"],
            custom_id=ids["custom"],
        )
