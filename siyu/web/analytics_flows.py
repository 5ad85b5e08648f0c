"""What the analytics pages show: query text read into the analytics services' definitions,
their results shaped for tables, and ECharts options built here (the browser only draws them).

Each page's form is read leniently (an unreadable number or date falls back to the default);
a definition the service refuses (an unknown event, a bad window) becomes an in-page error
through :func:`siyu.web.flows.panel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from siyu.analytics import attribution, funnels, metrics, paths, retention
from siyu.analytics.attribution import AttributionQuery, AttributionResult, Model
from siyu.analytics.common import SYSTEM_CHANNEL, AnalysisError, Grain
from siyu.analytics.funnels import FunnelDefinition, FunnelResult
from siyu.analytics.metrics import MetricQuery, MetricResult, Unit
from siyu.analytics.metrics_api import format_change, format_value, run
from siyu.analytics.paths import PathQuery, PathResult
from siyu.analytics.retention import RetentionQuery, RetentionResult
from siyu.core.i18n import N_, gettext
from siyu.events import EventStore

MODEL_LABELS = {
    Model.first_touch: N_("First touch"),
    Model.last_touch: N_("Last touch"),
    Model.linear: N_("Linear"),
    Model.time_decay: N_("Time decay"),
    Model.position_based: N_("Position based (40/20/40)"),
    Model.markov: N_("Data-driven (Markov)"),
}
MODES = {"any": N_("Any order after the previous step"), "strict": N_("Strictly next step")}
GRAINS = {Grain.day: N_("day"), Grain.week: N_("week"), Grain.month: N_("month")}
BREAKDOWNS = funnels.BREAKDOWN_FIELDS
DEFAULT_STEPS = ("product_view", "add_to_cart", "order_paid")
DEFAULT_METRICS = ("gmv", "orders", "new_people")
MAX_CHART_METRICS = 6
M = TypeVar("M", bound=BaseModel)


def invalid(exc: ValidationError) -> AnalysisError:
    """A refused form as the analysis error every page shows in place."""
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
    where = ".".join(str(part) for part in first.get("loc", ()))
    reason = f"{where}: {first.get('msg', '')}" if where else str(first.get("msg", ""))
    return AnalysisError(N_("Invalid analysis: {reason}"), field=where or "form", reason=reason)


def validated(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc) from None


def parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def parse_int(text: str, default: int, low: int, high: int) -> int:
    return int(text) if text.isdigit() and low <= int(text) <= high else default


def parse_grain(text: str, default: Grain) -> Grain:
    return Grain(text) if text in Grain.__members__ else default


def event_names(events: EventStore) -> list[str]:
    """Event names people did (siyu's own ``system`` events left out), for the pickers."""
    table = events.table()
    done = table.filter(table.channel.isnull() | (table.channel != SYSTEM_CHANNEL))
    names = done.select("name").distinct().to_pyarrow().column("name").to_pylist()
    return sorted(str(name) for name in names if name)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _axis(names: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "category",
        "data": list(names),
        "axisLabel": {"interval": 0, "hideOverlap": True},
    }


# -- funnel ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelForm:
    steps: list[str]
    window: str = "7d"
    mode: str = "any"
    breakdown: str = ""
    start: date | None = None
    end: date | None = None

    @property
    def ready(self) -> bool:
        return len([s for s in self.steps if s]) >= funnels.MIN_STEPS

    def definition(self) -> FunnelDefinition:
        return validated(
            FunnelDefinition,
            {
                "steps": [{"event": s} for s in self.steps if s],
                "window": self.window,
                "mode": self.mode,
                "breakdown": self.breakdown or None,
                "start": self.start,
                "end": self.end,
            },
        )


def funnel_form(
    steps: list[str], window: str, mode: str, breakdown: str, start: str, end: str
) -> FunnelForm:
    chosen = [s.strip() for s in steps][: funnels.MAX_STEPS]
    return FunnelForm(
        steps=chosen,
        window=window.strip() or "7d",
        mode=mode if mode in MODES else "any",
        breakdown=breakdown if breakdown in BREAKDOWNS else "",
        start=parse_day(start),
        end=parse_day(end),
    )


def default_steps(names: Sequence[str]) -> list[str]:
    found = [name for name in DEFAULT_STEPS if name in names]
    return found if len(found) >= 2 else list(names[:2])


def funnel_view(events: EventStore, form: FunnelForm, tz: Any) -> dict[str, Any]:
    result: FunnelResult = funnels.compute(events, form.definition(), tz=tz)
    steps = [
        {
            "step": s.step,
            "label": s.label,
            "count": s.count,
            "from_start": _percent(s.conversion_from_start),
            "from_previous": _percent(s.conversion_from_previous),
            "dropped": s.dropped,
            "median": duration(s.median_seconds_from_previous) if s.step > 1 else "—",
        }
        for s in result.steps
    ]
    chart = {
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 56, "right": 16, "top": 36, "bottom": 32},
        "xAxis": _axis([s.label for s in result.steps]),
        "yAxis": {"type": "value"},
        "series": [
            {
                "type": "bar",
                "name": gettext("People"),
                "barMaxWidth": 64,
                "data": [
                    {
                        "value": s.count,
                        "label": {
                            "show": True,
                            "position": "top",
                            "formatter": f"{s.count:,} · {_percent(s.conversion_from_start)}",
                        },
                    }
                    for s in result.steps
                ],
            }
        ],
    }
    ttc = result.time_to_convert
    histogram = {
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 48, "right": 16, "top": 16, "bottom": 32},
        "xAxis": _axis([b.label for b in ttc.histogram]),
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [
            {
                "type": "bar",
                "name": gettext("People"),
                "barMaxWidth": 40,
                "data": [b.count for b in ttc.histogram],
            }
        ],
    }
    rows = []
    for row in result.breakdown_rows:
        label = gettext("(not set)") if row.value is None else row.value
        if row.value == funnels.OTHER:
            label = gettext("(other)")
        rows.append({"value": label, "counts": row.counts, "conversion": _percent(row.conversion)})
    return {
        "result": result,
        "steps": steps,
        "chart": chart,
        "histogram": histogram if ttc.people else None,
        "conversion": _percent(result.conversion),
        "median": duration(ttc.median_seconds),
        "p90": duration(ttc.p90_seconds),
        "breakdown_rows": rows,
    }


# -- retention ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionForm:
    cohort_event: str = ""
    return_event: str = ""
    grain: Grain = Grain.week
    periods: int = 8
    unbounded: bool = False
    start: date | None = None
    end: date | None = None

    def query(self) -> RetentionQuery:
        return validated(
            RetentionQuery,
            {
                "cohort_event": self.cohort_event or None,
                "return_event": self.return_event or None,
                "grain": self.grain,
                "periods": self.periods,
                "unbounded": self.unbounded,
                "start": self.start,
                "end": self.end,
            },
        )


def retention_view(events: EventStore, form: RetentionForm, tz: Any) -> dict[str, Any]:
    result: RetentionResult = retention.retention(events, form.query(), tz=tz)
    rows = [
        {
            "cohort": row.cohort,
            "size": row.size,
            "cells": [_cell(c.rate, c.count, c.complete) for c in row.periods],
        }
        for row in result.cohorts
    ]
    average = [_cell(c.rate, c.count, c.count is not None) for c in result.average]
    return {"result": result, "rows": rows, "average": average}


def _cell(rate: float | None, count: int | None, complete: bool) -> dict[str, Any]:
    """A heat-map cell: its text, and a background whose strength follows the rate."""
    if not complete or rate is None:
        return {
            "complete": complete,
            "text": "…" if not complete else "—",
            "style": "",
            "count": count,
        }
    alpha = 0.08 + 0.85 * min(max(rate, 0.0), 1.0) ** 0.6
    colour = f"background: rgba(194, 65, 12, {alpha:.2f})" + (
        "; color: #fff" if alpha > 0.5 else ""
    )
    return {"complete": True, "text": _percent(rate), "style": colour, "count": count}


# -- paths ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathForm:
    start_event: str
    steps: int = 4
    before: bool = False
    start: date | None = None
    end: date | None = None

    def query(self) -> PathQuery:
        return validated(
            PathQuery,
            {
                "start_event": self.start_event,
                "steps": self.steps,
                "before": self.before,
                "start": self.start,
                "end": self.end,
            },
        )


def paths_view(events: EventStore, form: PathForm, tz: Any) -> dict[str, Any]:
    result: PathResult = paths.compute(events, form.query(), tz=tz)
    other = gettext("(other)")

    def label(event: str) -> str:
        return other if event == paths.OTHER else event

    sankey = {
        "tooltip": {"trigger": "item", "triggerOn": "mousemove"},
        "series": [
            {
                "type": "sankey",
                "left": 8,
                "right": 120,
                "top": 8,
                "bottom": 8,
                "nodeAlign": "left",
                "emphasis": {"focus": "adjacency"},
                "lineStyle": {"color": "gradient", "curveness": 0.5, "opacity": 0.35},
                "label": {"fontSize": 11},
                "data": [
                    {
                        "name": n.id,
                        "value": n.count,
                        "label": {"formatter": f"{label(n.event)} {n.count:,}"},
                    }
                    for n in result.nodes
                ],
                "links": [
                    {"source": link.source, "target": link.target, "value": link.value}
                    for link in result.links
                ],
            }
        ],
    }
    rows = [
        {"events": [label(e) for e in p.events], "count": p.count, "share": _percent(p.share)}
        for p in result.paths
    ]
    return {"result": result, "sankey": sankey if result.links else None, "rows": rows}


# -- attribution ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributionForm:
    window: str = "30d"
    conversion: str = "order_paid"
    measure: str = "conversions"
    start: date | None = None
    end: date | None = None

    def query(self) -> AttributionQuery:
        return validated(
            AttributionQuery,
            {
                "window": self.window,
                "conversion": self.conversion,
                "from": self.start,
                "to": self.end,
            },
        )


def attribution_view(events: EventStore, form: AttributionForm, tz: Any) -> dict[str, Any]:
    result: AttributionResult = attribution.attribute(events, form.query(), tz=tz)
    revenue = form.measure == "revenue"
    models = list(result.models)

    def amount(credit: attribution.Credit | None) -> float:
        if credit is None:
            return 0.0
        return round(credit.revenue if revenue else credit.conversions, 2)

    def shown(value: float) -> str:
        return f"¥{value:,.2f}" if revenue else f"{value:,.1f}"

    channels = [(row.channel, row.credits) for row in result.channels]
    rows = [
        {
            "channel": gettext("(direct)") if name == attribution.DIRECT else name,
            "values": [shown(amount(credits.get(m))) for m in models],
        }
        for name, credits in channels
    ]
    names = [str(r["channel"]) for r in rows]
    chart = {
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "legend": {"type": "scroll", "bottom": 0},
        "grid": {"left": 64, "right": 16, "top": 16, "bottom": 56},
        "xAxis": _axis(names),
        "yAxis": {"type": "value"},
        "series": [
            {
                "type": "bar",
                "name": gettext(MODEL_LABELS[m]),
                "data": [amount(credits.get(m)) for _name, credits in channels],
            }
            for m in models
        ],
    }
    return {
        "result": result,
        "models": [gettext(MODEL_LABELS[m]) for m in models],
        "rows": rows,
        "chart": chart if rows else None,
        "revenue": f"¥{result.revenue:,.2f}",
    }


# -- metric explorer ------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricForm:
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    grain: Grain = Grain.day
    dimension: str = ""
    start: date | None = None
    end: date | None = None

    def query(self) -> MetricQuery:
        return validated(
            MetricQuery,
            {
                "metrics": self.metrics,
                "grain": self.grain,
                "dimension": self.dimension or None,
                "start": self.start,
                "end": self.end,
            },
        )


def metric_form(chosen: list[str], grain: str, dimension: str, start: str, end: str) -> MetricForm:
    known = set(metrics.METRICS)
    picked = [key for key in dict.fromkeys(chosen) if key in known][:40]
    return MetricForm(
        metrics=picked or list(DEFAULT_METRICS),
        grain=parse_grain(grain, Grain.day),
        dimension=dimension if dimension in metrics.DIMENSIONS else "",
        start=parse_day(start),
        end=parse_day(end),
    )


def metric_families() -> list[dict[str, Any]]:
    """The catalogue by family, for the picker."""
    groups: dict[str, dict[str, Any]] = {}
    for info in metrics.catalog():
        group = groups.setdefault(info.family.value, {"label": info.family_label, "items": []})
        group["items"].append(info)
    return list(groups.values())


def metrics_view(events: EventStore, form: MetricForm, tz: Any) -> dict[str, Any]:
    result: MetricResult = run(events, form.query(), tz)
    charts = []
    for value in result.metrics[:MAX_CHART_METRICS]:
        scale = 100 if value.unit is Unit.rate else 1
        charts.append(
            {
                "label": value.label + (" (%)" if scale == 100 else ""),
                "option": {
                    "tooltip": {"trigger": "axis"},
                    "grid": {"left": 56, "right": 16, "top": 16, "bottom": 32},
                    "xAxis": _axis([p.bucket.isoformat() for p in value.series]),
                    "yAxis": {"type": "value", "scale": True},
                    "series": [
                        {
                            "type": "line",
                            "name": value.label,
                            "showSymbol": len(value.series) <= 31,
                            "connectNulls": False,
                            "data": [
                                None if p.value is None else round(p.value * scale, 4)
                                for p in value.series
                            ],
                        }
                    ],
                },
            }
        )
    units = {m.key: m.unit for m in result.metrics}
    summary = [
        {
            "label": m.label,
            "value": format_value(m.value, m.unit),
            "previous": format_value(m.previous, m.unit),
            "change": format_change(m.change),
            "year_change": format_change(m.year_change),
        }
        for m in result.metrics
    ]
    breakdown = [
        {"value": row.value, "values": [format_value(row.metrics.get(k), units[k]) for k in units]}
        for row in result.breakdown
    ]
    return {
        "result": result,
        "charts": charts,
        "summary": summary,
        "labels": [m.label for m in result.metrics],
        "breakdown": breakdown,
    }
