"""The webhook routes end to end: WeCom callbacks and order webhooks into the event store."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote

import pytest

from siyu.collect.webhooks import orders
from tests.collect.webhooks.conftest import ORDER_SECRET, World
from tests.collect.webhooks.test_wecom_events import BOMB, contact
from tests.collect.webhooks.vectors import SAMPLE_MESSAGE, SAMPLE_VERIFY_URL

PROBLEM = "application/problem+json"
EXTERNAL = "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA"

# -- WeCom ---------------------------------------------------------------------------------


def test_url_verification_answers_the_decrypted_echostr(world: World) -> None:
    vector = SAMPLE_VERIFY_URL
    response = world.client.get(
        f"/v1/webhooks/wecom/{world.wecom_id}",
        params={
            "msg_signature": vector.msg_signature,
            "timestamp": vector.timestamp,
            "nonce": vector.nonce,
            "echostr": vector.encrypt,
        },
    )

    assert response.status_code == 200
    assert response.content == vector.plaintext


def test_url_verification_with_a_wrong_signature_is_401(world: World) -> None:
    vector = SAMPLE_VERIFY_URL
    response = world.client.get(
        f"/v1/webhooks/wecom/{world.wecom_id}",
        params={
            "msg_signature": "0" * 40,
            "timestamp": vector.timestamp,
            "nonce": vector.nonce,
            "echostr": vector.encrypt,
        },
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert vector.plaintext.decode() not in response.text


def test_the_published_message_is_accepted_and_not_stored(world: World) -> None:
    """WeCom's sample callback is a text message: verified, answered, not an event we keep."""
    vector = SAMPLE_MESSAGE
    body = (
        f"<xml><ToUserName><![CDATA[{vector.corp_id}]]></ToUserName>\n"
        f"<Encrypt><![CDATA[{vector.encrypt}]]></Encrypt>\n"
        "<AgentID><![CDATA[1000002]]></AgentID>\n</xml>"
    )
    response = world.client.post(
        f"/v1/webhooks/wecom/{world.wecom_id}",
        params={
            "msg_signature": vector.msg_signature,
            "timestamp": vector.timestamp,
            "nonce": vector.nonce,
        },
        content=body.encode(),
    )

    assert response.status_code == 200
    assert response.text == "success"
    assert world.count() == 0


def test_contact_callback_is_stored_as_one_event(world: World) -> None:
    message = contact(
        "add_external_contact",
        "<State><![CDATA[qr_store_12]]></State><WelcomeCode><![CDATA[WC1]]></WelcomeCode>",
    )

    response = world.wecom_post(message)

    assert response.status_code == 200
    assert response.text == "success"
    [row] = world.stored()
    assert row["name"] == "wecom_add_contact"
    assert row["channel"] == "wecom"
    assert row["user_id"] == f"wecom_external_userid:{EXTERNAL}"
    assert row["ts"] == datetime.fromtimestamp(1403610513, UTC)
    assert json.loads(row["identifiers"]) == {"wecom_external_userid": EXTERNAL}
    properties = json.loads(row["properties"])
    assert properties["state"] == "qr_store_12"
    assert properties["staff_userid"] == "zhangsan"
    assert "encrypt" not in row["properties"].lower()


def test_wecom_retries_are_deduplicated(world: World) -> None:
    message = contact("add_external_contact")

    first = world.wecom_post(message, nonce="1")
    retry = world.wecom_post(message, nonce="2", timestamp="1700000005")  # new ciphertext

    assert first.status_code == retry.status_code == 200
    assert world.count() == 1


def test_bad_signature_is_401_logged_and_nothing_stored(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    message = contact("add_external_contact")
    encrypt = world.crypto.encrypt(message)
    body = f"<xml><ToUserName>x</ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"

    with caplog.at_level(logging.WARNING, logger="siyu.collect.webhooks"):
        response = world.client.post(
            f"/v1/webhooks/wecom/{world.wecom_id}",
            params={"msg_signature": "f" * 40, "timestamp": "1700000000", "nonce": "1"},
            content=body.encode(),
            headers={"X-Request-ID": "req-bad-sig-1"},
        )

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "webhook_signature_invalid"
    assert world.count() == 0
    [line] = [r.getMessage() for r in caplog.records if r.name == "siyu.collect.webhooks"]
    assert world.wecom_id in line
    assert "signature_mismatch" in line
    assert "req-bad-sig-1" in line
    assert encrypt not in line


def test_missing_signature_is_401(world: World) -> None:
    response = world.client.post(
        f"/v1/webhooks/wecom/{world.wecom_id}", content=b"<xml><Encrypt>x</Encrypt></xml>"
    )
    assert response.status_code == 401


def test_xml_bomb_is_refused_without_expansion(world: World) -> None:
    response = world.client.post(
        f"/v1/webhooks/wecom/{world.wecom_id}",
        params={"msg_signature": "0" * 40, "timestamp": "1", "nonce": "1"},
        content=BOMB,
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert "lollol" not in response.text
    assert world.count() == 0


def test_bomb_inside_the_encrypted_message_is_refused(world: World) -> None:
    response = world.wecom_post(BOMB)
    assert response.status_code == 400
    assert world.count() == 0


def test_malformed_xml_is_400(world: World) -> None:
    response = world.client.post(
        f"/v1/webhooks/wecom/{world.wecom_id}",
        params={"msg_signature": "0" * 40, "timestamp": "1", "nonce": "1"},
        content=b"<xml><Encrypt>",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "webhook_payload_invalid"


def test_unknown_endpoint_and_wrong_kind_are_404(world: World) -> None:
    unknown = world.client.post("/v1/webhooks/wecom/wh_nope", content=b"<xml/>")
    wrong_kind = world.client.post(f"/v1/webhooks/wecom/{world.youzan_id}", content=b"<xml/>")
    order_on_wecom = world.order_post(world.wecom_id, {"id": 1})

    for response in (unknown, wrong_kind, order_on_wecom):
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == "webhook_endpoint_not_found"


def test_oversized_body_is_413(world: World) -> None:
    big = b"<xml>" + b"a" * (1024 * 1024) + b"</xml>"
    response = world.client.post(f"/v1/webhooks/wecom/{world.wecom_id}", content=big)
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    order = world.order_post(world.custom_id, big)
    assert order.status_code == 413


# -- orders --------------------------------------------------------------------------------


def custom_order(**changes: object) -> dict[str, object]:
    data = {
        "no": "SO-1001",
        "pay": {"total": "199.90", "currency": "cny"},
        "paid_at": "2026-03-01 10:00:00",
        "items": [
            {"sku": "TEA-01", "category": "tea", "qty": 2},
            {"sku": "CUP-02", "category": "cup", "qty": 1},
        ],
        "member": {"no": "M0042", "mobile": "13800138000"},
        "store": "shanghai-1",
    }
    data.update(changes)
    return {"event": "paid", "data": data}


def test_custom_mapping_order(world: World) -> None:
    response = world.order_post(world.custom_id, custom_order())

    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    [row] = world.stored()
    assert row["event_id"] == f"order:{world.custom_id}:SO-1001:order_paid"
    assert row["name"] == "order_paid"
    assert row["order_id"] == "SO-1001"
    assert row["amount"] == Decimal("199.90")
    assert row["currency"] == "CNY"
    assert row["sku"] == "TEA-01"
    assert row["category"] == "tea"
    assert row["quantity"] == 3
    assert row["ts"] == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 Beijing time
    assert row["user_id"] == "member_no:M0042"
    assert json.loads(row["identifiers"]) == {"member_no": "M0042", "phone": "13800138000"}
    properties = json.loads(row["properties"])
    assert properties["store"] == "shanghai-1"
    assert properties["skus"] == ["TEA-01", "CUP-02"]


def test_order_retries_dedup_and_refund_is_its_own_event(world: World) -> None:
    world.order_post(world.custom_id, custom_order())
    world.order_post(world.custom_id, custom_order())
    refund = custom_order()
    refund["event"] = "refunded"
    world.order_post(world.custom_id, refund)

    assert [r["name"] for r in world.stored()] == ["order_paid", "refund"]


def test_order_bad_signature_is_401_and_not_stored(world: World) -> None:
    body = json.dumps(custom_order()).encode()
    for headers in (
        {orders.SIGNATURE_HEADER: orders.sign("another-secret-0123456789", body)},
        {orders.SIGNATURE_HEADER: "sha256=" + "0" * 64},
        {orders.SIGNATURE_HEADER: "md5=abc"},
        {},
        # Shopify's header is only for endpoints with the shopify preset.
        {orders.SHOPIFY_SIGNATURE_HEADER: orders.sign_shopify(ORDER_SECRET, body)},
    ):
        response = world.client.post(
            f"/v1/webhooks/orders/{world.custom_id}", content=body, headers=headers
        )
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == PROBLEM
    assert world.count() == 0


def test_order_signature_covers_the_raw_body(world: World) -> None:
    body = json.dumps(custom_order()).encode()
    signature = orders.sign(ORDER_SECRET, body)
    tampered = body.replace(b"199.90", b"1.00")
    response = world.client.post(
        f"/v1/webhooks/orders/{world.custom_id}",
        content=tampered,
        headers={orders.SIGNATURE_HEADER: signature},
    )
    assert response.status_code == 401


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"data": {}}'])
def test_malformed_order_payload_is_400(world: World, body: bytes) -> None:
    response = world.order_post(world.custom_id, body)
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert world.count() == 0


def youzan_push(kind: str, msg: dict[str, object]) -> dict[str, object]:
    return {
        "client_id": "c1",
        "kdt_id": 160,
        "id": "E20260301",
        "type": kind,
        "status": "TRADE_PAID",
        "msg": quote(json.dumps(msg, ensure_ascii=False)),
        "version": 1,
    }


def test_youzan_preset(world: World) -> None:
    paid = youzan_push(
        "trade_TradePaid",
        {
            "full_order_info": {
                "order_info": {"tid": "E20260301", "pay_time": "2026-03-01 20:30:00"},
                "buyer_info": {"buyer_phone": "13900139000", "yz_open_id": "yz_1"},
                "pay_info": {"payment": "88.00", "total_fee": "98.00"},
                "orders": [{"outer_sku_id": "SKU-9", "num": 2, "title": "龙井"}],
            }
        },
    )
    refund = youzan_push(
        "trade_refund_RefundSuccess",
        {
            "tid": "E20260301",
            "refund_id": "R77",
            "refunded_fee": "44.00",
            "update_time": "2026-03-02 09:00:00",
        },
    )
    created = youzan_push("trade_TradeCreate", {"tid": "E20260301"})

    assert world.order_post(world.youzan_id, paid).status_code == 200
    assert world.order_post(world.youzan_id, refund).status_code == 200
    ignored = world.order_post(world.youzan_id, created)

    assert ignored.json() == {"status": "ignored"}
    order_row, refund_row = sorted(world.stored(), key=lambda r: r["name"])
    assert order_row["name"] == "order_paid"
    assert order_row["order_id"] == "E20260301"
    assert order_row["amount"] == Decimal("88.00")
    assert order_row["currency"] == "CNY"
    assert order_row["sku"] == "SKU-9"
    assert order_row["quantity"] == 2
    assert order_row["ts"] == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert order_row["user_id"] == "phone:13900139000"
    assert json.loads(order_row["properties"])["title"] == "龙井"
    assert refund_row["name"] == "refund"
    assert refund_row["event_id"] == f"order:{world.youzan_id}:E20260301:refund:R77"
    assert refund_row["amount"] == Decimal("44.00")


def test_shopify_preset(world: World) -> None:
    order = {
        "id": 820982911946154508,
        "name": "#1001",
        "email": "jon@example.com",
        "currency": "USD",
        "total_price": "254.98",
        "processed_at": "2026-03-01T10:00:00-05:00",
        "customer": {"id": 115310627314723954, "email": "jon@example.com", "phone": None},
        "line_items": [{"sku": "IPOD-342", "quantity": 1}, {"sku": "CASE-1", "quantity": 2}],
    }
    refund = {
        "id": 929361464,
        "order_id": 820982911946154508,
        "processed_at": "2026-03-03T10:00:00-05:00",
        "transactions": [{"amount": "41.94", "currency": "USD", "kind": "refund"}],
        "refund_line_items": [{"quantity": 1, "line_item": {"sku": "CASE-1"}}],
    }

    paid = world.order_post(
        world.shopify_id, order, shopify=True, headers={"X-Shopify-Topic": "orders/paid"}
    )
    refunded = world.order_post(
        world.shopify_id, refund, shopify=True, headers={"X-Shopify-Topic": "refunds/create"}
    )
    other = world.order_post(
        world.shopify_id, order, shopify=True, headers={"X-Shopify-Topic": "orders/create"}
    )

    assert paid.status_code == refunded.status_code == other.status_code == 200
    assert other.json() == {"status": "ignored"}
    order_row, refund_row = sorted(world.stored(), key=lambda r: r["name"])
    assert order_row["order_id"] == "820982911946154508"
    assert order_row["amount"] == Decimal("254.98")
    assert order_row["currency"] == "USD"
    assert order_row["quantity"] == 3
    assert order_row["ts"] == datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
    assert order_row["user_id"] == "email:jon@example.com"
    assert json.loads(order_row["properties"])["order_name"] == "#1001"
    assert refund_row["name"] == "refund"
    assert refund_row["order_id"] == "820982911946154508"
    assert refund_row["amount"] == Decimal("41.94")
    assert refund_row["sku"] == "CASE-1"
    assert refund_row["event_id"].endswith(":refund:929361464")


def test_shopify_endpoint_also_accepts_the_siyu_signature(world: World) -> None:
    order = {"id": 5, "total_price": "1.00", "currency": "USD"}
    response = world.order_post(world.shopify_id, order, headers={"X-Shopify-Topic": "orders/paid"})
    assert response.status_code == 200
    assert world.count() == 1


def test_no_secret_in_any_response(world: World) -> None:
    responses = [
        world.order_post(world.custom_id, b"{bad"),
        world.client.post(f"/v1/webhooks/orders/{world.custom_id}", content=b"{}"),
        world.client.get(f"/v1/webhooks/wecom/{world.wecom_id}", params={"echostr": "x"}),
        world.client.get("/openapi.json"),
    ]
    for response in responses:
        assert ORDER_SECRET not in response.text
        assert world.crypto.token not in response.text
        assert world.crypto.encoding_aes_key not in response.text
