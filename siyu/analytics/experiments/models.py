"""Experiment definitions (operational store) and the schemas that cross the API.

Exposures are not rows here: they are ``experiment_exposure`` events in the event store
(``properties = {"experiment": key, "variant": variant}``), so an analysis reads them with the
outcome events in one engine query.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.store.base import Base, JSONType
from siyu.tags.definitions import KEY_PATTERN

BUCKETS = 10_000  # assignment resolution: weights are percentages with two decimals
SALT_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
EVENT_PATTERN = r"^[A-Za-z0-9_.:$-]{1,64}$"
DEFAULT_REVENUE_EVENT = "order_paid"
REFUND_EVENT = "refund"


class Status(StrEnum):
    draft = "draft"
    running = "running"
    stopped = "stopped"


class Kind(StrEnum):
    ab = "ab"  # a change against a control
    tag_effect = "tag_effect"  # "does acting on tag X move metric Y": target = people tagged X


# conversion: 1 if the person did the event within the window, else 0; revenue: the amount of
# the event (order_paid) within the window, refunds off; count: how many times they did it.
MetricKind = Literal["conversion", "revenue", "count"]


class Experiment(Base):
    __tablename__ = "experiment"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    hypothesis: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16), default=Kind.ab.value, index=True)
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    target_segment: Mapped[str | None] = mapped_column(String(64), default=None)
    salt: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=Status.draft.value, index=True)
    start_at: Mapped[datetime | None] = mapped_column(default=None)
    end_at: Mapped[datetime | None] = mapped_column(default=None)
    primary_metric: Mapped[dict[str, Any]] = mapped_column(JSONType)
    secondary_metrics: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- definitions ----------------------------------------------------------------------------------


class VariantSpec(BaseModel):
    """A variant and its share of the people assigned (percent, at most two decimals)."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(default="", max_length=200)
    weight: float = Field(gt=0, lt=100)
    control: bool = False

    @property
    def buckets(self) -> int:
        return round(self.weight * BUCKETS / 100)


class MetricSpec(BaseModel):
    """What is measured for each exposed person, from their first exposure on.

    ``window_days``: events at ``exposed_at <= ts < exposed_at + window_days`` count.
    ``covariate_days``: the same metric over ``exposed_at - covariate_days <= ts < exposed_at``
    is the CUPED covariate (none: no adjustment)."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(default="", max_length=200)
    kind: MetricKind
    event: str | None = Field(default=None, pattern=EVENT_PATTERN)
    window_days: int = Field(default=14, ge=1, le=366)
    covariate_days: int | None = Field(default=None, ge=1, le=366)
    net_of_refunds: bool = True  # revenue: refunds in the window are subtracted

    @model_validator(mode="after")
    def _event(self) -> MetricSpec:
        if self.event is None:
            if self.kind != "revenue":
                raise ValueError(f"a {self.kind} metric needs an event")
            self.event = DEFAULT_REVENUE_EVENT
        return self

    @property
    def event_name(self) -> str:
        return self.event or DEFAULT_REVENUE_EVENT


class _Definition(BaseModel):
    """The parts of an experiment that create and update share, with their checks."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    hypothesis: str = Field(default="", max_length=4000)
    kind: Kind = Kind.ab
    variants: list[VariantSpec] = Field(min_length=2, max_length=10)
    target_segment: str | None = Field(default=None, pattern=KEY_PATTERN)
    salt: str | None = Field(default=None, pattern=SALT_PATTERN)
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    primary_metric: MetricSpec
    secondary_metrics: list[MetricSpec] = Field(default=[], max_length=19)

    @model_validator(mode="after")
    def _consistent(self) -> _Definition:
        keys = [v.key for v in self.variants]
        if len(set(keys)) != len(keys):
            raise ValueError("variant keys must be unique")
        if sum(v.control for v in self.variants) != 1:
            raise ValueError("exactly one variant is the control")
        for variant in self.variants:
            if not math.isclose(variant.weight * 100, round(variant.weight * 100), abs_tol=1e-6):
                raise ValueError("weights have at most two decimals")
        if sum(v.buckets for v in self.variants) != BUCKETS:
            raise ValueError("variant weights must sum to 100")
        metrics = [self.primary_metric.key, *(m.key for m in self.secondary_metrics)]
        if len(set(metrics)) != len(metrics):
            raise ValueError("metric keys must be unique")
        if self.kind is Kind.tag_effect and self.target_segment is None:
            raise ValueError("a tag_effect experiment needs a target_segment (people with tag)")
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise ValueError("end_at must be after start_at")
        return self


class ExperimentCreate(_Definition):
    key: str = Field(pattern=KEY_PATTERN)


class ExperimentUpdate(BaseModel):
    """Changes to a draft (a running experiment's design is fixed); absent fields stay."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    hypothesis: str | None = Field(default=None, max_length=4000)
    kind: Kind | None = None
    variants: list[VariantSpec] | None = Field(default=None, min_length=2, max_length=10)
    target_segment: str | None = Field(default=None, pattern=KEY_PATTERN)
    salt: str | None = Field(default=None, pattern=SALT_PATTERN)
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    primary_metric: MetricSpec | None = None
    secondary_metrics: list[MetricSpec] | None = Field(default=None, max_length=19)


class ExperimentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    name: str
    hypothesis: str
    kind: Kind
    variants: list[VariantSpec]
    target_segment: str | None
    salt: str
    status: Status
    start_at: datetime | None
    end_at: datetime | None
    primary_metric: MetricSpec
    secondary_metrics: list[MetricSpec]
    created_at: datetime
    updated_at: datetime

    @property
    def metrics(self) -> list[MetricSpec]:
        return [self.primary_metric, *self.secondary_metrics]

    @property
    def control(self) -> VariantSpec:
        return next(v for v in self.variants if v.control)


class ExperimentPage(BaseModel):
    items: list[ExperimentRead]
    total: int
    offset: int
    limit: int


# -- exposures ------------------------------------------------------------------------------------


class ExposureBatch(BaseModel):
    """People exposed now (or at ``at``): person ids or identifiers ``TYPE:VALUE``."""

    model_config = ConfigDict(extra="forbid")

    people: list[str] = Field(min_length=1, max_length=10_000)
    at: AwareDatetime | None = None


ExposureStatus = Literal["exposed", "already_exposed", "unknown_person", "not_in_segment"]


class ExposureItem(BaseModel):
    input: str
    person_id: str | None
    variant: str | None  # the variant the person sees (also when already exposed)
    status: ExposureStatus


class ExposureResult(BaseModel):
    received: int
    exposed: int
    already_exposed: int
    errors: int
    items: list[ExposureItem]


# -- results --------------------------------------------------------------------------------------


class IntervalRead(BaseModel):
    low: float
    high: float


class VariantRead(BaseModel):
    key: str
    name: str
    control: bool
    weight: float
    people: int


class VariantMetric(BaseModel):
    variant: str
    people: int
    total: float  # conversions, revenue or events over the variant's people
    mean: float | None  # per person (conversion rate, revenue per person, events per person)
    adjusted_mean: float | None = None  # CUPED


class ComparisonRead(BaseModel):
    variant: str
    control: str
    test: str
    difference: float | None
    ci: IntervalRead | None
    lift: float | None
    lift_ci: IntervalRead | None
    statistic: float | None
    p_value: float | None
    p_adjusted: float | None  # Holm, over every comparison of every metric
    significant: bool | None
    note: str | None


class OmnibusRead(BaseModel):
    test: str = "chi_square"
    statistic: float
    p_value: float
    dof: int


class CupedRead(BaseModel):
    covariate_days: int
    theta: float
    variance_reduction: float


class MetricResult(BaseModel):
    key: str
    name: str
    kind: MetricKind
    role: Literal["primary", "secondary"]
    event: str
    window_days: int
    variants: list[VariantMetric]
    comparisons: list[ComparisonRead]
    omnibus: OmnibusRead | None = None
    cuped: CupedRead | None = None
    note: str | None = None


class SrmRead(BaseModel):
    observed: dict[str, int]
    expected: dict[str, float]
    statistic: float
    p_value: float
    flagged: bool


class ExperimentResults(BaseModel):
    key: str
    status: Status
    alpha: float
    exposed: int
    variants: list[VariantRead]
    srm: SrmRead | None
    metrics: list[MetricResult]
    note: str | None = None  # "no_exposures" when nobody has been exposed yet


# -- power ----------------------------------------------------------------------------------------


class PowerRequest(BaseModel):
    """How many people an experiment needs to detect ``mde`` (absolute, or relative to the
    baseline when ``relative``) with the given power at significance ``alpha``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["proportion", "mean"]
    baseline: float = Field(ge=0, le=1e12)  # the control's rate (proportion) or mean
    mde: float = Field(gt=0, le=1e12)
    relative: bool = False
    sd: float | None = Field(default=None, gt=0, le=1e12)  # means: the per-person sd
    alpha: float = Field(default=0.05, ge=1e-6, le=0.5)
    power: float = Field(default=0.8, gt=0, lt=1)
    ratio: float = Field(default=1.0, ge=0.01, le=100)  # people per treatment / per control
    variants: int = Field(default=2, ge=2, le=10)
    daily_people: int | None = Field(default=None, ge=1, le=10**9)


class PowerResult(BaseModel):
    kind: Literal["proportion", "mean"]
    control_value: float
    treatment_value: float
    effect_size: float  # Cohen's h (proportions) or d (means)
    control: int
    per_treatment: int
    total: int
    days: int | None
