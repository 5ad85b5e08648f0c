"""The demo brand is deterministic and realistic: each distribution the generator was designed
for is measured here from the generated events, by an independent per-person computation."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from siyu.demo import reference as ref
from siyu.demo.generator import DemoSpec, generate
from siyu.demo.service import generate_to_parquet
from siyu.events.schema import CANONICAL_EVENTS, CHANNELS, EVENTS_SCHEMA

SHANGHAI = ZoneInfo("Asia/Shanghai")
SPEC = DemoSpec(people=20_000, days=365, seed=11, end_date=date(2026, 11, 22))


@pytest.fixture(scope="module")
def brand() -> tuple[pd.DataFrame, pd.DataFrame]:
    data = generate(SPEC)
    events = pa.concat_tables(data.event_batches()).to_pandas()
    return events, data.people.to_pandas()


@pytest.fixture(scope="module")
def person_events(brand: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    """Events with the true person attached, through the identifiers in the ground truth."""
    events, people = brand
    pairs = []
    for column, key_type in (
        ("openid", "openid"),
        ("wecom_external_userid", "wecom_external_userid"),
        ("member_no", "member_no"),
        ("phone", "phone"),
        ("email", "email"),
    ):
        known = people[people[column].notna()]
        pairs.append(
            pd.DataFrame(
                {"user_id": key_type + ":" + known[column], "person_key": known["person_key"]}
            )
        )
    key_map = pd.concat(pairs)
    assert key_map["user_id"].is_unique
    merged = events.merge(key_map, on="user_id", how="left")
    assert merged["person_key"].notna().all(), "every event must belong to a real person"
    merged["local"] = merged["ts"].dt.tz_convert(SHANGHAI)
    return merged


def test_same_seed_gives_the_same_bytes(tmp_path) -> None:
    spec = DemoSpec(people=3_000, days=90, seed=5, end_date=date(2026, 6, 30))
    first = generate_to_parquet(spec, tmp_path / "a")
    second = generate_to_parquet(spec, tmp_path / "b")
    other = generate_to_parquet(
        DemoSpec(people=3_000, days=90, seed=6, end_date=date(2026, 6, 30)), tmp_path / "c"
    )
    assert first["events"] == second["events"] > 10_000

    def digest(folder: str, name: str) -> str:
        return hashlib.sha256((tmp_path / folder / name).read_bytes()).hexdigest()

    for name in ("events.parquet", "people.parquet", "products.parquet"):
        assert digest("a", name) == digest("b", name)
    assert digest("a", "events.parquet") != digest("c", "events.parquet")
    assert other["events"] != first["events"]


def test_spec_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="people"):
        DemoSpec(people=0)
    with pytest.raises(ValueError, match="days"):
        DemoSpec(days=10)
    with pytest.raises(ValueError, match="seed"):
        DemoSpec(seed=-1)


def test_events_fit_the_schema(brand) -> None:
    events, people = brand
    data = generate(DemoSpec(people=500, days=60, seed=2, end_date=date(2026, 3, 1)))
    for batch in data.event_batches():
        assert batch.schema.equals(EVENTS_SCHEMA)
    assert events["event_id"].is_unique
    assert set(events["name"]) <= set(CANONICAL_EVENTS)
    assert set(events["channel"]) <= set(CHANNELS)
    window_start = datetime(2025, 11, 23, tzinfo=SHANGHAI)
    window_end = datetime(2026, 11, 23, tzinfo=SHANGHAI)
    assert (events["ts"] < window_end).all()
    history = events[events["ts"] < window_start]
    assert set(history["name"]) <= {
        "register",
        "identify",
        "wecom_add_contact",
        "group_join",
        "group_leave",
    }
    assert (events["received_at"] >= events["ts"]).all()
    for blob in events["properties"].dropna().sample(2_000, random_state=1):
        json.loads(blob)
    for blob in events["identifiers"].dropna():
        assert isinstance(json.loads(blob), dict)
    assert len(people) == SPEC.people and people["person_key"].is_unique


def test_orders_are_exact_and_refunds_match(brand) -> None:
    events, _ = brand
    orders = events[events["name"] == "order_paid"]
    assert orders["order_id"].is_unique
    assert all(amount > 0 for amount in orders["amount"])
    assert all(
        amount == amount.quantize(type(amount)("0.01")) for amount in orders["amount"].head(1000)
    )
    refunds = events[events["name"] == "refund"].merge(
        orders, on="order_id", suffixes=("", "_order")
    )
    assert len(refunds) == (events["name"] == "refund").sum() > 0
    assert (refunds["amount"] == refunds["amount_order"]).all()
    assert (refunds["ts"] > refunds["ts_order"]).all()
    refund_rate = len(refunds) / len(orders)
    assert 0.02 < refund_rate < 0.07


def test_registration_and_demographics_follow_the_design(brand) -> None:
    _, people = brand
    assert 0.74 < (people["gender"] == "female").mean() < 0.82
    shares = people["registration_channel"].value_counts(normalize=True)
    for channel, weight in zip(ref.REGISTRATION_CHANNELS, ref.REGISTRATION_WEIGHTS, strict=True):
        assert abs(shares[channel] - weight) < 0.015, channel
    tiers = people["city_tier"].value_counts(normalize=True)
    assert tiers["一线"] > tiers["五线"] * 5
    age = (pd.Timestamp("2025-11-23") - pd.to_datetime(people["birthday"])).dt.days / 365.25
    assert age.between(17, 62).all() and 0.45 < age.between(25, 41).mean() < 0.7
    assert people["phone"].str.fullmatch(r"1[3-9]\d{9}").all() and people["phone"].is_unique


def _stages(person_events: pd.DataFrame, people: pd.DataFrame) -> pd.Series:
    """Lifecycle stage from behaviour (what people did, not what was sent to them)."""
    end = pd.Timestamp("2026-11-23", tz=SHANGHAI)
    recent_from = end - timedelta(days=30)
    own = person_events[~person_events["name"].isin(["message_sent", "message_delivered"])]
    own = own[["person_key", "local"]].sort_values(["person_key", "local"])
    own["gap"] = own.groupby("person_key")["local"].diff()
    own["comeback"] = (own["local"] >= recent_from) & (own["gap"] >= timedelta(days=90))
    per_person = own.groupby("person_key").agg(
        first=("local", "min"), last=("local", "max"), comeback=("comeback", "any")
    )
    stage = np.select(
        [
            per_person["first"] >= recent_from,
            per_person["comeback"],
            per_person["last"] >= recent_from,
            per_person["last"] >= end - timedelta(days=90),
        ],
        ["new", "returned", "active", "silent"],
        default="churned",
    )
    return pd.Series(stage, index=per_person.index).reindex(people["person_key"]).fillna("churned")


def test_lifecycle_shares(brand, person_events) -> None:
    _, people = brand
    observed = _stages(person_events, people)
    shares = observed.value_counts(normalize=True)
    bands = {
        "new": (0.07, 0.13),
        "active": (0.30, 0.45),
        "silent": (0.10, 0.22),
        "churned": (0.25, 0.42),
        "returned": (0.005, 0.04),
    }
    for stage, (low, high) in bands.items():
        assert low < shares.get(stage, 0) < high, (stage, shares.get(stage))
    designed = people.set_index("person_key")["lifecycle_stage"]
    agreement = (observed.values == designed.reindex(observed.index).values).mean()
    assert agreement > 0.8


def test_repurchase_intervals_depend_on_category_and_type(brand, person_events) -> None:
    _, people = brand
    orders = person_events[(person_events["name"] == "order_paid")].copy()
    orders = orders[
        orders["properties"].isna() | ~orders["properties"].fillna("").str.contains("promo")
    ]
    orders = orders.merge(people[["person_key", "customer_type"]], on="person_key")
    orders = orders.sort_values("ts")
    orders["gap_days"] = (
        orders.groupby(["person_key", "category"])["ts"].diff().dt.total_seconds() / 86400
    )
    gaps = orders.dropna(subset=["gap_days"])
    medians = gaps[gaps["customer_type"] == "regular"].groupby("category")["gap_days"].median()
    assert medians["bodycare"] < medians["skincare"] < medians["makeup"] < medians["fragrance"]
    gamma_median_ratio = 0.918  # median / mean of Gamma(shape 4)
    regular = ref.CYCLE_MULTIPLIER[ref.CUSTOMER_TYPES.index("regular")]
    for category in ("bodycare", "skincare", "makeup"):
        designed = (
            ref.CATEGORY_CYCLE_DAYS[ref.CATEGORIES.index(category)] * regular * gamma_median_ratio
        )
        assert abs(medians[category] / designed - 1) < 0.15, (category, medians[category], designed)
    by_type = gaps[gaps["category"] == "skincare"].groupby("customer_type")["gap_days"].median()
    assert by_type["loyal"] < by_type["regular"] < by_type["occasional"]


def test_identifiers_overlap_across_channels(brand) -> None:
    events, people = brand
    linking = events[events["identifiers"].notna()]
    parsed = linking["identifiers"].map(json.loads)
    types_per_event = parsed.map(lambda ids: frozenset(ids))
    assert types_per_event.map(len).min() >= 2  # every identify links at least two identifiers
    channels_per_person = {}
    for key_column in ("openid", "wecom_external_userid", "member_no", "email", "device_id"):
        present = people[key_column].notna()
        channels_per_person[key_column] = present
    accounts = pd.DataFrame(channels_per_person).sum(axis=1)
    multi = (accounts >= 2).mean()
    assert 0.35 < multi < 0.75, multi
    # The same phone at the store till and in the mini-program: the classic overlap.
    pos_phones = set(
        parsed[linking["channel"] == "store"].map(lambda ids: ids.get("phone")).dropna()
    )
    mp_phones = {
        p.removeprefix("+86")
        for p in parsed[linking["channel"] == "miniprogram"]
        .map(lambda ids: ids.get("phone"))
        .dropna()
    }
    overlap = len(pos_phones & mp_phones) / len(pos_phones)
    assert 0.1 < overlap < 0.6, overlap
    # Store kiosks are devices shared by many people: identity resolution must not fuse them.
    kiosks = parsed.map(lambda ids: ids.get("device_id")).dropna()
    per_kiosk = pd.Series(kiosks.values).value_counts()
    assert len(per_kiosk) >= 5 and per_kiosk.median() >= 10
    # Phone and email spellings vary by channel, so identity must normalise them.
    spellings = parsed.map(lambda ids: ids.get("phone")).dropna()
    assert spellings.str.startswith("+86").any() and spellings.str.contains("-").any()
    assert parsed.map(lambda ids: ids.get("email")).dropna().str.contains("[A-Z]").any()


def test_seasonality_and_daily_rhythm(person_events) -> None:
    orders = person_events[person_events["name"] == "order_paid"]
    daily = orders.groupby(orders["local"].dt.date).size()
    median = daily.median()
    assert daily[date(2026, 11, 11)] > 3 * median
    assert daily[date(2026, 6, 18)] > 2 * median
    spring = [date(2026, 2, 17) + timedelta(days=d) for d in range(-2, 6)]
    assert daily.reindex(spring).fillna(0).mean() < 0.7 * median
    hours = person_events["local"].dt.hour
    assert hours.isin([19, 20, 21, 22]).mean() > 5 * hours.isin([2, 3, 4, 5]).mean()


def test_campaign_outcomes_are_plausible(brand) -> None:
    events, _ = brand
    counts = events.groupby(["channel", "name"]).size()
    for channel in ("wecom", "sms", "email"):
        sent, delivered = counts[(channel, "message_sent")], counts[(channel, "message_delivered")]
        assert 0.9 < delivered / sent <= 1.0
        assert counts.get((channel, "message_clicked"), 0) < counts.get(
            (channel, "message_opened"), sent
        )
    assert 0.15 < counts[("wecom", "message_opened")] / counts[("wecom", "message_delivered")] < 0.6
    unsubscribes = counts[("sms", "unsubscribe")] / counts[("sms", "message_sent")]
    assert 0.0005 < unsubscribes < 0.01
    assert counts.get(("sms", "complaint"), 0) < counts[("sms", "unsubscribe")]
