"""One vocabulary of identifier types, shared by collection, webhooks, import and identity."""

from __future__ import annotations

from siyu.collect.importer.mapping import IDENTIFIER_TYPES as IMPORT_TYPES
from siyu.collect.models import USER_ID_TYPES
from siyu.collect.webhooks.orders import IDENTIFIER_TYPES as ORDER_TYPES
from siyu.events.schema import IDENTIFIER_TYPES
from siyu.identity.rules import KNOWN_TYPES, PRIORITY


def test_every_module_speaks_the_event_store_vocabulary() -> None:
    assert set(PRIORITY) == set(IDENTIFIER_TYPES) == set(KNOWN_TYPES) == set(USER_ID_TYPES)
    assert set(IMPORT_TYPES) == set(IDENTIFIER_TYPES) - {"anonymous_id"}
    assert set(ORDER_TYPES) <= set(IDENTIFIER_TYPES)
