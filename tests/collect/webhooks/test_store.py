"""The webhook_endpoint table: migration matches the model, secrets are sealed at rest."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from siyu.collect.webhooks import orders, service
from siyu.collect.webhooks.exceptions import WebhookConfigError, WebhookSecretError
from siyu.collect.webhooks.models import OrderEndpointCreate, WecomEndpointCreate
from siyu.collect.webhooks.secrets import MASK, SecretBox
from siyu.core.errors import ConflictError
from siyu.store import Database
from siyu.store.migrate import pending_changes

BOX = SecretBox("k" * 48)
TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
SECRET = "shop-secret-abcdefghijklmnop"


def test_migration_creates_the_table_and_matches_the_model(database: Database) -> None:
    assert "webhook_endpoint" in inspect(database.engine).get_table_names()
    assert pending_changes(database) == []


def test_secrets_are_encrypted_at_rest(database: Database) -> None:
    with database.unit_of_work() as session:
        wecom = service.create_wecom(
            db_session=session,
            endpoint_in=WecomEndpointCreate(
                name="w", corp_id="ww1", token=TOKEN, encoding_aes_key=AES_KEY
            ),
            box=BOX,
        )
        order = service.create_order(
            db_session=session,
            endpoint_in=OrderEndpointCreate(
                name="o", secret=SECRET, field_mapping={"order_id": "id"}
            ),
            box=BOX,
        )
        ids = (wecom.id, order.id)

    with database.engine.connect() as connection:
        raw = connection.execute(
            text("SELECT token, encoding_aes_key, secret FROM webhook_endpoint")
        ).all()
    stored = " ".join(str(value) for row in raw for value in row)
    for secret in (TOKEN, AES_KEY, SECRET):
        assert secret not in stored
    with database.unit_of_work() as session:
        endpoint = service.get(db_session=session, endpoint_id=ids[0])
        assert endpoint is not None
        assert service.wecom_crypto(endpoint, BOX).token == TOKEN
        read = service.to_read(endpoint)
        assert read.token == read.encoding_aes_key == MASK
        assert TOKEN not in read.model_dump_json()


def test_another_secret_key_cannot_open_the_secrets(database: Database) -> None:
    with database.unit_of_work() as session:
        endpoint = service.create_wecom(
            db_session=session,
            endpoint_in=WecomEndpointCreate(
                name="w", corp_id="ww1", token=TOKEN, encoding_aes_key=AES_KEY
            ),
            box=BOX,
        )
        with pytest.raises(WebhookSecretError):
            service.wecom_crypto(endpoint, SecretBox("z" * 48))


def test_a_sealed_value_opens_only_in_its_own_column() -> None:
    sealed = BOX.seal(SECRET, field="secret")
    assert BOX.open(sealed, field="secret") == SECRET
    assert BOX.seal(SECRET, field="secret") != sealed  # fresh nonce each time
    with pytest.raises(WebhookSecretError):
        BOX.open(sealed, field="token")


def test_names_are_unique_and_mappings_validated(database: Database) -> None:
    with database.unit_of_work() as session:
        endpoint_in = OrderEndpointCreate(
            name="o", secret=SECRET, field_mapping=orders.SHOPIFY.model_dump(by_alias=True)
        )
        service.create_order(db_session=session, endpoint_in=endpoint_in, box=BOX)
        with pytest.raises(ConflictError):
            service.create_order(db_session=session, endpoint_in=endpoint_in, box=BOX)
        with pytest.raises(WebhookConfigError) as caught:
            service.create_order(
                db_session=session,
                endpoint_in=OrderEndpointCreate(
                    name="p", secret=SECRET, field_mapping={"identifiers": {"qq": "x"}}
                ),
                box=BOX,
            )
        fields = {error["field"] for error in caught.value.errors}
        assert {"order_id", "identifiers"} <= fields


def test_remove(database: Database) -> None:
    with database.unit_of_work() as session:
        endpoint = service.create_order(
            db_session=session,
            endpoint_in=OrderEndpointCreate(
                name="o", secret=SECRET, field_mapping={"order_id": "id"}
            ),
            box=BOX,
        )
        service.delete(db_session=session, endpoint_id=endpoint.id)
        assert service.list_endpoints(db_session=session) == []
