"""The weekly report as data: what :mod:`.weekly` assembles, :mod:`.suggestions` reads and
:mod:`.render` draws. It is also the report's JSON form (``weekly-2026-W47.json``)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from siyu.analytics.metrics import Unit


class Dimension(StrEnum):
    """The areas every report has an optimisation read-out for (always all of them)."""

    acquisition = "acquisition"
    activation = "activation"
    retention = "retention"
    conversion = "conversion"
    value = "value"
    channel = "channel"
    compliance = "compliance"


class Kpi(BaseModel):
    key: str
    label: str
    unit: Unit
    higher_is_better: bool
    value: float | None
    previous: float | None
    change: float | None = Field(description="Relative change from the previous week")


class Series(BaseModel):
    name: str
    values: list[float | None]


class Chart(BaseModel):
    """A chart's data; drawn as SVG on the server and, where JavaScript runs, by ECharts."""

    key: str
    title: str
    kind: Literal["line", "bar"]
    unit: Unit
    categories: list[str]
    series: list[Series]


class Mover(BaseModel):
    """One value of a breakdown whose metric moved most against the previous week."""

    dimension: str
    dimension_label: str
    value: str
    metric: str
    metric_label: str
    unit: Unit
    current: float | None
    previous: float | None
    delta: float
    change: float | None


class Anomaly(BaseModel):
    day: date
    metric: str
    label: str
    unit: Unit
    higher_is_better: bool
    value: float | None
    expected: float | None
    change: float | None
    direction: str | None


class ExperimentReadout(BaseModel):
    key: str
    name: str
    status: str
    exposed: int
    metric: str | None = None
    variant: str | None = None
    control: str | None = None
    lift: float | None = None
    p_value: float | None = None
    significant: bool | None = None
    srm_flagged: bool = False
    note: str | None = None


class FunnelStepRow(BaseModel):
    event: str
    label: str
    count: int
    previous_count: int
    conversion_from_previous: float | None
    previous_conversion_from_previous: float | None


class FunnelSummary(BaseModel):
    steps: list[FunnelStepRow]
    conversion: float | None
    previous_conversion: float | None


class ChannelRevenue(BaseModel):
    """Revenue credited to a channel by the linear attribution model."""

    channel: str
    revenue: float
    previous_revenue: float
    conversions: float
    change: float | None


class Suggestion(BaseModel):
    """A read-out for one dimension: a rule that fired (``action``), or the dimension's
    figures when nothing is notable (``steady``). ``evidence`` holds every number the text
    rests on, by metric key (``KEY``, ``KEY.previous``, ``KEY.change``)."""

    dimension: Dimension
    dimension_label: str
    rule: str | None
    severity: Literal["action", "steady"]
    text: str
    evidence: dict[str, float | None]


class WeeklyReport(BaseModel):
    name: str = Field(description="weekly-YYYY-Www: the stored files' name")
    week: str = Field(description="ISO week, YYYY-Www")
    start: date
    end: date
    previous_start: date
    previous_end: date
    timezone: str
    lang: str
    generated_at: datetime
    data_until: date | None = Field(description="The latest event's local day")
    kpis: list[Kpi]
    charts: list[Chart]
    movers: list[Mover]
    anomalies: list[Anomaly]
    experiments: list[ExperimentReadout]
    funnel: FunnelSummary | None
    channels: list[ChannelRevenue]
    returning_rate: float | None
    previous_returning_rate: float | None
    suggestions: list[Suggestion]
    notes: list[str] = Field(default_factory=list, description="Parts left out, and why")

    def kpi(self, key: str) -> Kpi | None:
        return next((k for k in self.kpis if k.key == key), None)
