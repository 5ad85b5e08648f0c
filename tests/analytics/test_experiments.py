"""Experiments end to end: definitions, salted-hash assignment (Python = engine), exposures
with per-item errors, per-person metric values against a brute-force reference, results,
edge cases, the API and the CLI. Real SQLite (and PostgreSQL) plus a DuckDB file."""

from __future__ import annotations

import hashlib
import json
import math
import random
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from siyu.analytics.common import AnalysisError
from siyu.analytics.experiments import analysis, service
from siyu.analytics.experiments import stats as xstats
from siyu.analytics.experiments.assignment import bucket_of, variant_of
from siyu.analytics.experiments.models import (
    ExperimentCreate,
    ExperimentRead,
    ExperimentUpdate,
    PowerRequest,
    VariantSpec,
)
from siyu.api import create_app
from siyu.core.config import Settings
from siyu.core.errors import ConflictError, NotFoundError
from siyu.events import EventStore, open_event_store, system
from siyu.identity.models import Identifier, Person
from siyu.identity.service import derive_hash_key, key_hash
from siyu.segments import service as segments
from siyu.segments.models import SegmentCreate
from siyu.store import Database
from tests.analytics.conftest import SHANGHAI, at, event_table, write_identity

HASH_KEY = derive_hash_key("k" * 40)
SECRET = "s" * 48
EXPOSED_1 = "2026-03-10 00:00"  # Shanghai midnight
EXPOSED_2 = "2026-03-12 15:30"
PEOPLE = [f"u{i:02d}" for i in range(48)]


def definition(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "key": "new_coupon",
        "name": "新人券",
        "hypothesis": "A bigger coupon makes more first orders.",
        "variants": [
            {"key": "control", "weight": 50, "control": True},
            {"key": "big", "name": "大额券", "weight": 50},
        ],
        "salt": "s1",
        "start_at": "2026-03-01T00:00:00+08:00",
        "primary_metric": {
            "key": "ordered",
            "kind": "conversion",
            "event": "order_paid",
            "window_days": 7,
        },
        "secondary_metrics": [
            {"key": "revenue", "kind": "revenue", "window_days": 7, "covariate_days": 30},
            {"key": "views", "kind": "count", "event": "page_view", "window_days": 3},
        ],
    }
    spec.update(changes)
    return spec


# -- a small world --------------------------------------------------------------------------------


def world_rows(seed: int = 5) -> list[dict[str, Any]]:
    """Orders, refunds and views around each person's exposure, with the edges: at the very
    exposure instant, a second before the window ends, exactly at its end, before it."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for index, person in enumerate([*PEOPLE, "m"]):
        exposed = datetime.fromisoformat(EXPOSED_1 if index % 2 == 0 else EXPOSED_2)
        user = "m2" if person == "m" else person
        offsets = rng.sample([-40.0, -29.5, -3.0, 0.0, 0.25, 6.99999, 7.0, 10.0], rng.randint(0, 4))
        for offset in offsets:
            ts = exposed + timedelta(days=offset)
            amount = rng.choice([19.9, 99.0, 250.5])
            rows.append({"user": user, "name": "order_paid", "ts": ts, "amount": amount})
            if rng.random() < 0.3:
                rows.append(
                    {"user": user, "name": "refund", "ts": ts + timedelta(days=2), "amount": amount}
                )
        for _ in range(rng.randint(0, 3)):
            ts = exposed + timedelta(hours=rng.choice([-5, 0, 1, 30, 71.99, 72, 100]))
            rows.append({"user": user, "name": "page_view", "ts": ts})
    for row in rows:
        row["ts"] = row["ts"].replace(tzinfo=SHANGHAI).astimezone(UTC)
    return rows


def identity_map() -> dict[str, str]:
    mapping = {f"member_no:{p}": p for p in PEOPLE}
    mapping |= {"member_no:m1": "m", "member_no:m2": "m"}  # one person, two member numbers
    return mapping


@pytest.fixture
def world(store: EventStore) -> EventStore:
    store.append(event_table(list[Mapping[str, Any]](world_rows())))
    write_identity(store, identity_map())
    return store


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    with database.unit_of_work() as db_session:
        db_session.add(Person(id="u01"))
        db_session.flush()
        digest = key_hash(HASH_KEY, "phone:+8613800135678")
        db_session.add(
            Identifier(type="phone", key_hash=digest, masked="138****5678", person_id="u01")
        )
        db_session.flush()
        yield db_session


def expose(session: Session, events: EventStore, key: str, people: list[str], when: str) -> Any:
    return service.expose(session, events, key, people, hash_key=HASH_KEY, tz=SHANGHAI, at=at(when))


# -- brute force ----------------------------------------------------------------------------------


def brute_values(
    rows: Sequence[Mapping[str, Any]], mapping: Mapping[str, str], exposed: Mapping[str, datetime]
) -> dict[str, dict[str, float]]:
    """Per exposed person, each metric of :func:`definition` by plain Python."""
    values: dict[str, dict[str, float]] = {}
    for person, t in exposed.items():
        mine = [r for r in rows if mapping.get(f"member_no:{r['user']}") == person]

        def within(name: str, start: datetime, end: datetime, rows: list[Any] = mine) -> list[Any]:
            return [r for r in rows if r["name"] == name and start <= r["ts"] < end]

        week = t + timedelta(days=7)
        pre = t - timedelta(days=30)
        values[person] = {
            "ordered": 1.0 if within("order_paid", t, week) else 0.0,
            "revenue": sum(float(r["amount"]) for r in within("order_paid", t, week))
            - sum(float(r["amount"]) for r in within("refund", t, week)),
            "revenue_pre": sum(float(r["amount"]) for r in within("order_paid", pre, t))
            - sum(float(r["amount"]) for r in within("refund", pre, t)),
            "views": float(len(within("page_view", t, t + timedelta(days=3)))),
        }
    return values


# -- assignment -----------------------------------------------------------------------------------


def test_bucket_is_the_first_eight_bytes_of_sha256_mod_10000() -> None:
    digest = hashlib.sha256(b"salt:exp:person-1").digest()
    assert bucket_of("salt", "exp", "person-1") == int(digest[:8].hex(), 16) % 10_000
    variants = [VariantSpec(key="a", weight=0.01, control=True), VariantSpec(key="b", weight=99.99)]
    wanted = "a" if bucket_of("salt", "exp", "person-1") < 1 else "b"
    assert variant_of("salt", "exp", variants, "person-1") == wanted


@hypothesis_settings(max_examples=20)
@given(
    st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=40, unique=True),
    st.text(alphabet="abcxyz019_-", min_size=1, max_size=8),
)
def test_engine_assignment_equals_python(people: list[str], salt: str) -> None:
    experiment = read(definition(salt=salt, variants=three_variants()))
    table = ibis.memtable(pa.table({"person_id": pa.array(people, pa.string())}))
    rows = service.assignments(table, experiment).to_pyarrow().to_pylist()
    assert {r["person_id"]: r["variant"] for r in rows} == {
        p: service.assign(experiment, p) for p in people
    }


def three_variants() -> list[dict[str, Any]]:
    return [
        {"key": "control", "weight": 33.33, "control": True},
        {"key": "b", "weight": 33.33},
        {"key": "c", "weight": 33.34},
    ]


def read(spec: Mapping[str, Any]) -> ExperimentRead:
    created = ExperimentCreate.model_validate(spec)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    return ExperimentRead.model_validate(
        {
            **created.model_dump(),
            "salt": created.salt or "s",
            "status": "running",
            "created_at": now,
            "updated_at": now,
        }
    )


def test_assignment_splits_by_weight_and_is_stable() -> None:
    experiment = read(definition(variants=three_variants()))
    people = [f"p{i}" for i in range(30_000)]
    table = ibis.memtable(pa.table({"person_id": people}))
    counted = service.assignments(table, experiment).variant.value_counts().to_pyarrow()
    observed = dict(zip(*(counted.column(i).to_pylist() for i in (0, 1)), strict=True))
    srm = xstats.sample_ratio([observed[k] for k in ("control", "b", "c")], [33.33, 33.33, 33.34])
    assert srm is not None and not srm.flagged
    assert service.assign(experiment, "p1") == service.assign(experiment, "p1")
    reshuffled = read(definition(variants=three_variants(), salt="other"))
    moved = sum(
        service.assign(experiment, p) != service.assign(reshuffled, p) for p in people[:300]
    )
    assert 150 < moved < 250  # a new salt reassigns about two thirds


# -- definitions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"variants": [{"key": "a", "weight": 50, "control": True}]}, "at least 2"),
        (
            {"variants": [{"key": "a", "weight": 60, "control": True}, {"key": "b", "weight": 30}]},
            "sum to 100",
        ),
        ({"variants": [{"key": "a", "weight": 50}, {"key": "b", "weight": 50}]}, "control"),
        (
            {"variants": [{"key": "a", "weight": 50, "control": True}, {"key": "a", "weight": 50}]},
            "unique",
        ),
        (
            {
                "variants": [
                    {"key": f"v{i}", "weight": 100 / 11, "control": i == 0} for i in range(11)
                ]
            },
            "at most 10",
        ),
        ({"kind": "tag_effect"}, "target_segment"),
        ({"primary_metric": {"key": "x", "kind": "conversion"}}, "needs an event"),
        ({"end_at": "2026-02-01T00:00:00+08:00"}, "after start_at"),
    ],
)
def test_invalid_definitions_are_refused(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        ExperimentCreate.model_validate(definition(**changes))


def test_definitions_lifecycle(session: Session, world: EventStore) -> None:
    created = service.create(session, world, ExperimentCreate.model_validate(definition()))
    assert created.status == "draft" and created.primary_metric.event == "order_paid"
    assert created.secondary_metrics[0].event == "order_paid"  # revenue's default event
    with pytest.raises(ConflictError):
        service.create(session, world, ExperimentCreate.model_validate(definition()))
    with pytest.raises(AnalysisError) as unknown:
        service.create(
            session,
            world,
            ExperimentCreate.model_validate(
                definition(
                    key="typo", primary_metric={"key": "o", "kind": "count", "event": "ordr"}
                )
            ),
        )
    assert unknown.value.context["field"] == "primary_metric.event"
    with pytest.raises(AnalysisError):
        service.create(
            session,
            world,
            ExperimentCreate.model_validate(
                definition(key="tagged", kind="tag_effect", target_segment="nope")
            ),
        )
    salt = service.get_or_raise(session, "new_coupon").salt
    changed = service.update(session, world, "new_coupon", ExperimentUpdate(name="新券"))
    assert changed.name == "新券" and changed.salt == salt
    with pytest.raises(AnalysisError):
        service.update(
            session,
            world,
            "new_coupon",
            ExperimentUpdate(
                variants=[VariantSpec(key="a", weight=50), VariantSpec(key="b", weight=50)]
            ),
        )
    service.create(session, world, ExperimentCreate.model_validate(definition(key="other")))
    page = service.list_experiments(session, status="draft", limit=1)
    assert page.total == 2 and [i.key for i in page.items] == ["new_coupon"]
    started = service.start(session, "new_coupon", now=at("2026-03-02 00:00"))
    assert started.status == "running" and started.start_at == at("2026-03-01 00:00")
    with pytest.raises(ConflictError):
        service.update(session, world, "new_coupon", ExperimentUpdate(name="x"))
    with pytest.raises(ConflictError):
        service.delete(session, "new_coupon")
    with pytest.raises(ConflictError):
        service.start(session, "new_coupon")
    assert service.list_experiments(session, status="running").total == 1
    stopped = service.stop(session, "new_coupon", now=at("2026-04-01 00:00"))
    assert stopped.status == "stopped" and stopped.end_at == at("2026-04-01 00:00")
    with pytest.raises(ConflictError):
        expose(session, world, "new_coupon", ["u01"], "2026-03-20 00:00")
    assert service.delete(session, "other").key == "other"
    with pytest.raises(NotFoundError):
        service.get_or_raise(session, "other")


# -- exposures and results ------------------------------------------------------------------------


def test_exposures_resolve_people_and_keep_the_first(session: Session, world: EventStore) -> None:
    service.create(session, world, ExperimentCreate.model_validate(definition()))
    service.start(session, "new_coupon", now=at("2026-03-05 00:00"))
    first = expose(
        session, world, "new_coupon", ["u00", "phone:+8613800135678", "ghost", "u00"], EXPOSED_1
    )
    assert [i.status for i in first.items] == [
        "exposed",
        "exposed",
        "unknown_person",
        "already_exposed",
    ]
    assert first.items[1].person_id == "u01"
    assert (first.exposed, first.already_exposed, first.errors) == (2, 1, 1)
    experiment = service.get_or_raise(session, "new_coupon")
    assert first.items[0].variant == service.assign(experiment, "u00")
    again = expose(session, world, "new_coupon", ["u01"], EXPOSED_2)
    assert again.items[0].status == "already_exposed"
    assert again.items[0].variant == service.assign(experiment, "u01")
    rows = service.exposures(world, "new_coupon").to_pyarrow().to_pylist()
    assert {r["person_id"]: r["exposed_at"] for r in rows} == {
        "u00": at(EXPOSED_1),
        "u01": at(EXPOSED_1),
    }
    with pytest.raises(AnalysisError):
        expose(session, world, "new_coupon", ["u02"], "2026-02-01 00:00")  # before the start


def test_target_segment_limits_who_is_assigned(session: Session, world: EventStore) -> None:
    context = segments.world(session, world, tz=SHANGHAI)
    segments.create_segment(session, context, SegmentCreate(key="vip", name="VIP", kind="static"))
    segments.upload_members(session, world, "vip", ["u00", "u02"])
    spec = definition(key="vip_effect", kind="tag_effect", target_segment="vip")
    service.create(session, world, ExperimentCreate.model_validate(spec))
    service.start(session, "vip_effect", now=at("2026-03-05 00:00"))
    found = expose(session, world, "vip_effect", ["u00", "u01", "u02"], EXPOSED_1)
    assert [i.status for i in found.items] == ["exposed", "not_in_segment", "exposed"]
    assert found.items[1].variant is None


def run_world(session: Session, world: EventStore, spec: dict[str, Any]) -> ExperimentRead:
    service.create(session, world, ExperimentCreate.model_validate(spec))
    service.start(session, spec["key"], now=at("2026-03-05 00:00"))
    everybody = [*PEOPLE, "m"]
    expose(session, world, spec["key"], everybody[0::2], EXPOSED_1)
    expose(session, world, spec["key"], everybody[1::2], EXPOSED_2)
    return service.get_or_raise(session, spec["key"])


def test_metric_values_per_person_match_brute_force(session: Session, world: EventStore) -> None:
    experiment = run_world(session, world, definition())
    everybody = [*PEOPLE, "m"]
    exposed = {p: at(EXPOSED_1 if i % 2 == 0 else EXPOSED_2) for i, p in enumerate(everybody)}
    expected = brute_values(world_rows(), identity_map() | {"member_no:m": "m"}, exposed)
    rows = analysis.person_values(world, experiment).to_pyarrow().to_pylist()
    found = {r["person_id"]: r for r in rows}
    assert set(found) == set(everybody)
    for person, values in expected.items():
        row = found[person]
        assert row["variant"] == service.assign(experiment, person)
        assert row["y0"] == values["ordered"], person
        assert row["y1"] == pytest.approx(values["revenue"]), person
        assert row["x1"] == pytest.approx(values["revenue_pre"]), person
        assert row["y2"] == values["views"], person


def test_results_match_a_reference_built_from_the_same_values(
    session: Session, world: EventStore
) -> None:
    experiment = run_world(session, world, definition())
    found = analysis.results(world, experiment)
    everybody = [*PEOPLE, "m"]
    exposed = {p: at(EXPOSED_1 if i % 2 == 0 else EXPOSED_2) for i, p in enumerate(everybody)}
    values = brute_values(world_rows(), identity_map(), exposed)
    groups = {
        v: [p for p in everybody if service.assign(experiment, p) == v] for v in ("control", "big")
    }
    assert found.exposed == len(everybody)
    assert {v.key: v.people for v in found.variants} == {k: len(g) for k, g in groups.items()}
    ordered = {k: [values[p]["ordered"] for p in g] for k, g in groups.items()}
    conversion = found.metrics[0]
    assert [v.total for v in conversion.variants] == [sum(ordered["control"]), sum(ordered["big"])]
    comparison = conversion.comparisons[0]
    assert comparison.test == "z_test"
    s_t, n_t = sum(ordered["big"]), len(ordered["big"])
    s_c, n_c = sum(ordered["control"]), len(ordered["control"])
    pooled = (s_t + s_c) / (n_t + n_c)
    z = (s_t / n_t - s_c / n_c) / math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    assert comparison.statistic == pytest.approx(z)
    assert comparison.p_value == pytest.approx(2 * scipy_stats.norm.sf(abs(z)))
    views = found.metrics[2]
    expected_views = scipy_stats.ttest_ind(
        [values[p]["views"] for p in groups["big"]],
        [values[p]["views"] for p in groups["control"]],
        equal_var=False,
    )
    assert views.comparisons[0].test == "welch_t"
    assert views.comparisons[0].p_value == pytest.approx(expected_views.pvalue)
    revenue = found.metrics[1]
    assert revenue.cuped is not None and revenue.comparisons[0].test == "welch_t_cuped"
    y = {k: [values[p]["revenue"] for p in g] for k, g in groups.items()}
    x = {k: [values[p]["revenue_pre"] for p in g] for k, g in groups.items()}
    all_y, all_x = y["control"] + y["big"], x["control"] + x["big"]
    mean_x = sum(all_x) / len(all_x)
    mean_y = sum(all_y) / len(all_y)
    cov = sum((a - mean_y) * (b - mean_x) for a, b in zip(all_y, all_x, strict=True))
    theta = cov / sum((b - mean_x) ** 2 for b in all_x)
    assert revenue.cuped.theta == pytest.approx(theta)
    adjusted = {k: [a - theta * (b - mean_x) for a, b in zip(y[k], x[k], strict=True)] for k in y}
    expected_cuped = scipy_stats.ttest_ind(adjusted["big"], adjusted["control"], equal_var=False)
    assert revenue.comparisons[0].p_value == pytest.approx(expected_cuped.pvalue)
    assert revenue.variants[1].adjusted_mean == pytest.approx(
        sum(adjusted["big"]) / len(adjusted["big"])
    )
    p_values = [m.comparisons[0].p_value for m in found.metrics]
    holm = xstats.holm(p_values)
    assert [m.comparisons[0].p_adjusted for m in found.metrics] == pytest.approx(holm)
    assert found.srm is not None and found.srm.observed == {k: len(g) for k, g in groups.items()}
    json.dumps(found.model_dump(mode="json"), allow_nan=False)  # never NaN


def test_more_than_two_variants_get_a_chi_square(session: Session, world: EventStore) -> None:
    experiment = run_world(session, world, definition(key="three", variants=three_variants()))
    found = analysis.results(world, experiment)
    conversion = found.metrics[0]
    assert len(conversion.comparisons) == 2 and conversion.omnibus is not None
    table = [[round(v.total), v.people - round(v.total)] for v in conversion.variants]
    expected = scipy_stats.chi2_contingency(table, correction=False)
    assert conversion.omnibus.p_value == pytest.approx(expected[1])
    assert conversion.omnibus.dof == 2


def test_empty_and_degenerate_results_are_labelled(session: Session, world: EventStore) -> None:
    service.create(session, world, ExperimentCreate.model_validate(definition()))
    experiment = service.get_or_raise(session, "new_coupon")
    nothing = analysis.results(world, experiment)
    assert nothing.note == "no_exposures" and nothing.exposed == 0 and nothing.srm is None
    assert all(
        c.note == "no_data" and c.p_value is None for m in nothing.metrics for c in m.comparisons
    )
    json.dumps(nothing.model_dump(mode="json"), allow_nan=False)
    service.start(session, "new_coupon", now=at("2026-03-05 00:00"))
    control = [p for p in PEOPLE if service.assign(experiment, p) == "control"][:3]
    expose(session, world, "new_coupon", control, EXPOSED_1)
    one_sided = analysis.results(world, service.get_or_raise(session, "new_coupon"))
    assert one_sided.exposed == 3 and one_sided.note is None
    assert one_sided.srm is not None
    assert all(c.note == "no_data" for m in one_sided.metrics for c in m.comparisons)
    json.dumps(one_sided.model_dump(mode="json"), allow_nan=False)


@hypothesis_settings(max_examples=15)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.sampled_from(["order_paid", "refund", "page_view"]),
            st.integers(-20 * 24, 20 * 24),  # hours from 2026-03-10 00:00 local
            st.sampled_from([Decimal("1.50"), Decimal("10.00"), Decimal("99.99")]),
        ),
        max_size=25,
    ),
    st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(0, 96)), max_size=8),
)
def test_engine_matches_brute_force_on_random_events(
    happened: list[tuple[str, str, int, Decimal]], seen: list[tuple[str, int]]
) -> None:
    base = at("2026-03-10 00:00")
    rows: list[Mapping[str, Any]] = [
        {"user": u, "name": n, "ts": base + timedelta(hours=h), "amount": a}
        for u, n, h, a in happened
    ]
    experiment = read(definition())
    with (
        tempfile.TemporaryDirectory() as folder,
        open_event_store(f"duckdb:///{Path(folder) / 'events.duckdb'}") as events,
    ):
        if rows:
            events.append(event_table(rows))
        write_identity(events, {f"member_no:{p}": p for p in "abcde"})
        exposed: dict[str, datetime] = {}
        for person, hours in seen:  # several exposures: the first one counts
            when = base + timedelta(hours=hours)
            exposed[person] = min(when, exposed.get(person, when))
            system.record(
                events,
                name=service.EXPOSURE_EVENT,
                source="test",
                at=when,
                person_ids=[person],
                properties=[{"experiment": experiment.key, "variant": "big"}],
                id_parts=[f"{person}:{hours}"],
            )
        found = analysis.person_values(events, experiment).to_pyarrow().to_pylist()
    expected = brute_values(rows, {f"member_no:{p}": p for p in "abcde"}, exposed)
    assert {r["person_id"] for r in found} == set(expected)
    for row in found:
        values = expected[row["person_id"]]
        assert row["exposed_at"] == exposed[row["person_id"]]
        assert (row["y0"], row["y2"]) == (values["ordered"], values["views"])
        assert row["y1"] == pytest.approx(values["revenue"])
        assert row["x1"] == pytest.approx(values["revenue_pre"])


def test_power_plans_and_refuses_nonsense() -> None:
    planned = analysis.plan(
        PowerRequest(kind="proportion", baseline=0.1, mde=0.2, relative=True, daily_people=500)
    )
    assert planned.treatment_value == pytest.approx(0.12)
    expected = xstats.sample_size_proportions(0.1, 0.12)
    assert (planned.control, planned.per_treatment) == (expected.control, expected.treatment)
    assert planned.total == 2 * expected.control
    assert planned.days == math.ceil(planned.total / 500)
    means = analysis.plan(PowerRequest(kind="mean", baseline=100, mde=5, sd=40, variants=3))
    assert means.total == means.control + 2 * means.per_treatment
    for bad in (
        PowerRequest(kind="mean", baseline=100, mde=5),  # no sd
        PowerRequest(kind="proportion", baseline=0.95, mde=0.1),  # above 1
        PowerRequest(kind="proportion", baseline=0, mde=0.1, relative=True),
        PowerRequest(kind="proportion", baseline=0.1, mde=0.1, alpha=0.3, power=0.2),
        PowerRequest(kind="mean", baseline=1, mde=1e-9, sd=1e6),
        PowerRequest(kind="mean", baseline=1e12, mde=1e11, sd=5e-324, relative=True),  # inf
    ):
        with pytest.raises(AnalysisError):
            analysis.plan(bad)


# -- API and CLI ----------------------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings, database: Database, world: EventStore) -> Iterator[TestClient]:
    settings = settings.model_copy(
        update={"database_url": str(database.engine.url.render_as_string(False))}
    )
    with TestClient(create_app(settings, events=world)) as test_client:
        yield test_client


def test_api(client: TestClient) -> None:
    created = client.post("/v1/experiments", json=definition())
    assert created.status_code == 201, created.text
    assert client.post("/v1/experiments", json=definition()).status_code == 409
    bad = client.post("/v1/experiments", json=definition(key="b2", variants=[]))
    assert bad.status_code == 422
    typo = client.post(
        "/v1/experiments",
        json=definition(key="b3", primary_metric={"key": "o", "kind": "count", "event": "ordr"}),
    )
    assert typo.status_code == 422
    assert typo.headers["content-type"].startswith("application/problem+json")
    listed = client.get("/v1/experiments", params={"status": "draft", "limit": 10}).json()
    assert listed["total"] == 1 and listed["items"][0]["key"] == "new_coupon"
    patched = client.patch("/v1/experiments/new_coupon", json={"hypothesis": "更多首单"})
    assert patched.status_code == 200 and patched.json()["hypothesis"] == "更多首单"
    assert client.get("/v1/experiments/nope").status_code == 404
    empty = client.get("/v1/experiments/new_coupon/results")
    assert empty.status_code == 200 and empty.json()["note"] == "no_exposures"
    refused = client.post("/v1/experiments/new_coupon/exposures", json={"people": ["u00"]})
    assert refused.status_code == 409
    assert client.post("/v1/experiments/new_coupon/start").json()["status"] == "running"
    logged = client.post(
        "/v1/experiments/new_coupon/exposures",
        json={"people": ["u00", "u02", "ghost"], "at": "2026-03-10T00:00:00+08:00"},
    )
    assert logged.status_code == 200, logged.text
    assert [i["status"] for i in logged.json()["items"]] == ["exposed", "exposed", "unknown_person"]
    results = client.get("/v1/experiments/new_coupon/results", params={"alpha": 0.1})
    assert results.status_code == 200 and results.json()["exposed"] == 2
    power = client.post(
        "/v1/experiments/power", json={"kind": "proportion", "baseline": 0.1, "mde": 0.02}
    )
    assert power.status_code == 200 and power.json()["control"] > 3000
    nonsense = client.post(
        "/v1/experiments/power", json={"kind": "mean", "baseline": 0.1, "mde": 0.02}
    )
    assert nonsense.status_code == 422
    assert client.delete("/v1/experiments/new_coupon").status_code == 409
    assert client.post("/v1/experiments/new_coupon/stop").json()["status"] == "stopped"


def test_cli(
    settings: Settings,
    database: Database,
    world: EventStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from siyu.cli import app
    from siyu.core.config import get_settings

    events_url = world.url
    world.close()
    monkeypatch.setenv("SIYU_HOME", str(settings.home))
    monkeypatch.setenv("SIYU_DATABASE_URL", database.engine.url.render_as_string(False))
    monkeypatch.setenv("SIYU_EVENTS_URL", events_url)
    monkeypatch.setenv("SIYU_LANG", "en")
    get_settings.cache_clear()
    spec = tmp_path / "exp.yaml"
    spec.write_text(
        "\n".join(
            [
                "key: cli_exp",
                "name: 测试",
                "variants:",
                "  - {key: control, weight: 50, control: true}",
                "  - {key: b, weight: 50}",
                "primary_metric: {key: ordered, kind: conversion, event: order_paid}",
            ]
        ),
        encoding="utf-8",
    )
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(app, ["experiments", *args])
        assert result.exit_code == 0, result.output
        return result

    run("create", str(spec))
    assert json.loads(run("list", "--json").output)["total"] == 1
    assert "cli_exp" in run("show", "cli_exp").output
    run("start", "cli_exp")
    exposed = json.loads(run("expose", "cli_exp", "u00", "u01", "nobody", "--json").output)
    assert [i["status"] for i in exposed["items"]] == ["exposed", "exposed", "unknown_person"]
    found = json.loads(run("results", "cli_exp", "--json").output)
    assert found["exposed"] == 2
    assert "people exposed" in run("results", "cli_exp").output
    planned = json.loads(
        run("power", "--kind", "proportion", "--baseline", "0.1", "--mde", "0.02", "--json").output
    )
    assert planned["control"] > 3000
    run("stop", "cli_exp")
    wrong = runner.invoke(app, ["experiments", "start", "cli_exp"])
    assert wrong.exit_code == 2
    spec.write_text("key: x\nname: y\nvariants: []\n", encoding="utf-8")
    invalid = runner.invoke(app, ["experiments", "create", str(spec)])
    assert invalid.exit_code == 2 and "at least 2 items" in invalid.output
    get_settings.cache_clear()
