"""Schemathesis reads /openapi.json and fuzzes every operation: no 5xx, answers match the schema.

Cases are drawn from each operation's Hypothesis strategy inside a plain test (schemathesis'
fixture-based pytest loader does not run under pytest 9).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from siyu.api import create_app
from siyu.core.config import load_settings
from siyu.store import open_database
from siyu.store.migrate import upgrade

# The operations, read from the app's own OpenAPI document (building it opens nothing).
OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in create_app().openapi()["paths"].items()
    for method in item
)
# Operations whose bodies carry meaning no JSON Schema can state (a formula or a rule must
# parse, a referenced tag must exist, enum values only on enum tags): a schema-valid body may
# still get a 422 problem. They are fuzzed for everything else (no 5xx, responses match).
SEMANTIC_422 = {
    ("POST", "/v1/tags"),
    ("PUT", "/v1/tags/{key}"),
    ("PUT", "/v1/tags/{key}/assignments"),
    ("POST", "/v1/tags/refresh"),
    ("POST", "/v1/segments"),
    ("POST", "/v1/segments/count"),
    ("PUT", "/v1/segments/{key}/rule"),
    ("PUT", "/v1/segments/{key}/members"),
    # Analyses: unknown events, metrics or dimensions and periods that end before they start
    # are only known against the data.
    ("GET", "/v1/analytics/metrics"),
    ("GET", "/v1/analytics/anomalies"),
    ("POST", "/v1/analytics/alert-rules"),
    ("PATCH", "/v1/analytics/alert-rules/{rule_id}"),
    ("POST", "/v1/analytics/alerts/run"),
    ("POST", "/v1/analytics/funnels"),
    ("POST", "/v1/analytics/funnels/dropoff-segment"),
    ("POST", "/v1/analytics/paths"),
    ("POST", "/v1/analytics/retention"),
    ("POST", "/v1/analytics/cohort-ltv"),
    ("GET", "/v1/analytics/repurchase"),
    ("POST", "/v1/analytics/repurchase"),
    ("GET", "/v1/analytics/repurchase/next-purchase"),
    ("POST", "/v1/analytics/repurchase/next-purchase"),
    ("POST", "/v1/analytics/attribution"),
    ("GET", "/v1/analytics/roi"),
    ("GET", "/v1/analytics/sources"),
    ("POST", "/v1/analytics/costs"),
    ("POST", "/v1/experiments"),
    ("PATCH", "/v1/experiments/{key}"),
    ("POST", "/v1/experiments/{key}/exposures"),
    ("POST", "/v1/experiments/power"),
    ("POST", "/v1/reports/weekly"),
}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    home: Path = tmp_path_factory.mktemp("fuzz")
    app_settings = load_settings(home=home)
    database = open_database(app_settings.resolved_database_url)
    upgrade(database)
    database.dispose()
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings))
    asgi.shutdown_lifespans()  # close the app's stores before the temporary home goes


def test_every_operation_is_fuzzed() -> None:
    assert ("GET", "/healthz") in OPERATIONS
    assert ("GET", "/readyz") in OPERATIONS


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_operation_conforms_to_its_schema(
    api_schema: schemathesis.BaseSchema, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    seen: list[int] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def check(case: schemathesis.Case) -> None:
        excluded = [positive_data_acceptance] if (method, path) in SEMANTIC_422 else []
        response = case.call_and_validate(excluded_checks=excluded)
        seen.append(response.status_code)
        assert response.status_code < 500

    check()
    assert seen
