"""What the experiment result page shows: per-variant values, lifts and their confidence
intervals, drawn as small SVG bars on the server (no script)."""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup

from siyu.analytics.experiments.models import ExperimentResults


def interval_svg(low: float | None, high: float | None, point: float | None, span: float) -> Markup:
    """A confidence interval drawn on a symmetric axis (-span..span) around zero: no script."""
    width, height = 160, 18
    if low is None or high is None or not span or not math.isfinite(span):
        return Markup("")

    def x(value: float) -> float:
        return max(2.0, min(width - 2.0, width / 2 + value / span * (width / 2 - 4)))

    colour = "#15803d" if low > 0 else ("#b91c1c" if high < 0 else "#646a73")
    dot = "" if point is None else f'<circle cx="{x(point):.1f}" cy="9" r="3" fill="{colour}"/>'
    # Only numbers computed here are interpolated: nothing to escape.
    return Markup(  # noqa: S704
        f'<svg class="ci" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-hidden="true"><line x1="{width / 2}" y1="1" x2="{width / 2}" y2="17" '
        f'stroke="#c9cdd4" stroke-dasharray="2 2"/><line x1="{x(low):.1f}" y1="9" '
        f'x2="{x(high):.1f}" y2="9" stroke="{colour}" stroke-width="2"/>'
        f'<line x1="{x(low):.1f}" y1="5" x2="{x(low):.1f}" y2="13" stroke="{colour}"/>'
        f'<line x1="{x(high):.1f}" y1="5" x2="{x(high):.1f}" y2="13" stroke="{colour}"/>{dot}</svg>'
    )


def metric_value(kind: str, value: float | None) -> str:
    if value is None:
        return "—"
    if kind == "conversion":
        return f"{value:.2%}"
    if kind == "revenue":
        return f"¥{value:,.2f}"
    return f"{value:,.2f}"


def experiment_view(result: ExperimentResults) -> list[dict[str, Any]]:
    """Each metric with its per-variant values and each comparison's lift and interval."""
    shown = []
    for metric in result.metrics:
        spans = [
            max(abs(c.lift_ci.low), abs(c.lift_ci.high))
            for c in metric.comparisons
            if c.lift_ci is not None
        ]
        span = max(spans, default=0.0) * 1.1
        by_variant = {c.variant: c for c in metric.comparisons}
        rows = []
        for v in metric.variants:
            c = by_variant.get(v.variant)
            rows.append(
                {
                    "variant": v.variant,
                    "people": v.people,
                    "mean": metric_value(metric.kind, v.mean),
                    "adjusted": metric_value(metric.kind, v.adjusted_mean)
                    if v.adjusted_mean is not None
                    else None,
                    "comparison": c,
                    "lift": _signed(c.lift) if c else None,
                    "lift_ci": f"[{_signed(c.lift_ci.low)}, {_signed(c.lift_ci.high)}]"
                    if c and c.lift_ci
                    else None,
                    "diff_ci": f"[{metric_value(metric.kind, c.ci.low)}, "
                    f"{metric_value(metric.kind, c.ci.high)}]"
                    if c and c.ci
                    else None,
                    "bar": interval_svg(c.lift_ci.low, c.lift_ci.high, c.lift, span)
                    if c and c.lift_ci
                    else Markup(""),
                }
            )
        shown.append({"metric": metric, "rows": rows})
    return shown


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1%}"
