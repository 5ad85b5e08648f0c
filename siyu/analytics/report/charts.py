"""Small server-side SVG charts (lines and grouped bars) for the report.

WeasyPrint runs no JavaScript, so the PDF's charts are drawn here; the HTML shows the same
SVG and lets ECharts redraw it when scripts run. Text uses the CJK font stack, so Chinese
labels render wherever one of those fonts is installed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from siyu.analytics.metrics import Unit
from siyu.analytics.report.models import Chart

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 36, 52
PALETTE = ("#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272")
FONT = "'WenQuanYi Micro Hei', 'Noto Sans CJK SC', 'Source Han Sans SC', 'PingFang SC', sans-serif"


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above ``value`` (an axis top)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def axis_label(value: float, unit: Unit) -> str:
    if unit is Unit.rate:
        return f"{value:.0%}" if value * 100 == round(value * 100) else f"{value:.1%}"
    for size, suffix in ((1e8, "亿"), (1e4, "万")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def _text(x: float, y: float, text: str, *, anchor: str = "middle", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'fill="#555">{escape(text)}</text>'
    )


def _values(series: Sequence[float | None]) -> list[float]:
    return [v for v in series if v is not None and math.isfinite(v)]


def render(chart: Chart) -> str:
    """The chart as an inline ``<svg>`` element (no external reference)."""
    found = [v for s in chart.series for v in _values(s.values)]
    low = min([0.0, *found])
    top = nice_ceiling(max([0.0, *found]))
    bottom = -nice_ceiling(-low) if low < 0 else 0.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    count = max(len(chart.categories), 1)

    def y_of(value: float) -> float:
        return TOP + plot_h * (top - value) / ((top - bottom) or 1.0)

    parts = [
        f'<svg class="chart-svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{escape(chart.title)}" style="font-family: {FONT}">',
        _text(LEFT, 18, chart.title, anchor="start", size=13),
    ]
    for i in range(5):
        value = bottom + (top - bottom) * i / 4
        y = y_of(value)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#e5e5e5" stroke-width="1"/>'
        )
        parts.append(_text(LEFT - 6, y + 4, axis_label(value, chart.unit), anchor="end", size=10))
    slot = plot_w / count
    for index, category in enumerate(chart.categories):
        parts.append(_text(LEFT + slot * (index + 0.5), HEIGHT - BOTTOM + 16, category, size=10))
    if chart.kind == "bar":
        parts.extend(_bars(chart, slot, y_of))
    else:
        parts.extend(_lines(chart, slot, y_of))
    for index, series in enumerate(chart.series):
        x = LEFT + index * 130
        color = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<rect x="{x}" y="{HEIGHT - 18}" width="10" height="10" fill="{color}"/>'
            + _text(x + 14, HEIGHT - 9, series.name, anchor="start", size=10)
        )
    parts.append("</svg>")
    return "".join(parts)


def _bars(chart: Chart, slot: float, y_of: Callable[[float], float]) -> list[str]:
    parts = []
    groups = max(len(chart.series), 1)
    width = slot * 0.7 / groups
    zero = y_of(0.0)
    for s_index, series in enumerate(chart.series):
        color = PALETTE[s_index % len(PALETTE)]
        for index, value in enumerate(series.values):
            if value is None or not math.isfinite(value):
                continue
            x = LEFT + slot * index + slot * 0.15 + width * s_index
            y = y_of(value)
            parts.append(
                f'<rect x="{x:.1f}" y="{min(y, zero):.1f}" width="{width:.1f}" '
                f'height="{abs(zero - y):.1f}" fill="{color}"/>'
            )
    return parts


def _lines(chart: Chart, slot: float, y_of: Callable[[float], float]) -> list[str]:
    parts = []
    for s_index, series in enumerate(chart.series):
        color = PALETTE[s_index % len(PALETTE)]
        points = [
            (LEFT + slot * (index + 0.5), y_of(value))
            for index, value in enumerate(series.values)
            if value is not None and math.isfinite(value)
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
        parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in points)
    return parts
