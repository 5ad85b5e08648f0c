"""Schemathesis over the /v1 tracking endpoints, authenticated: never a 5xx, answers match
the OpenAPI document (the body schemas are documented by hand, see siyu.collect.router)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from siyu.api import create_app
from tests.collect.tracking import World, make_world

PATHS = ["/v1/track", "/v1/identify", "/v1/alias", "/v1/page", "/v1/screen", "/v1/batch"]


@pytest.fixture(scope="module")
def fuzz_world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[World, schemathesis.BaseSchema]]:
    home: Path = tmp_path_factory.mktemp("collect-fuzz")
    world = make_world(home)
    yield world, schemathesis.openapi.from_asgi("/openapi.json", create_app(world.settings))
    asgi.shutdown_lifespans()


@pytest.mark.parametrize("path", PATHS)
def test_tracking_endpoint_never_fails_on_generated_input(
    fuzz_world: tuple[World, schemathesis.BaseSchema], path: str
) -> None:
    world, api_schema = fuzz_world
    operation = api_schema[path]["POST"]
    seen: list[int] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def check(case: schemathesis.Case) -> None:
        # Schema-valid is not always acceptable here: a message is refused for what JSON
        # Schema cannot say (an unknown userId type, a date in 1970): that is a 400, not a bug.
        response = case.call_and_validate(
            headers=world.auth, excluded_checks=[positive_data_acceptance]
        )
        seen.append(response.status_code)
        assert response.status_code < 500

    check()
    assert seen
    assert 200 in seen or 400 in seen
