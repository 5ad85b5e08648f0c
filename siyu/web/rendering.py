"""Jinja2 templates for the console: one environment, translated through :mod:`siyu.core.i18n`."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from siyu import __version__
from siyu.core.i18n import N_, current_locale, gettext, ngettext

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"


def _json_attr(value: Any) -> str:
    """JSON for a ``data-*`` attribute (escaped by autoescape like any text)."""
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float | Decimal):
        number = float(value)
        return f"{number:,.0f}" if number.is_integer() else f"{number:,.2f}"
    return str(value)


def _percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}%}"


def sparkline(values: list[float | None], width: int = 120, height: int = 32) -> Markup:
    """A small inline SVG line (drawn on the server: no script, no request)."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(points) < 2:
        return Markup("")
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    coords = " ".join(
        f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}" for i, v in points
    )
    # Only numbers computed here are interpolated: nothing to escape.
    return Markup(  # noqa: S704
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'preserveAspectRatio="none" aria-hidden="true">'
        f'<polyline points="{coords}" fill="none" stroke="currentColor" stroke-width="1.5"/>'
        "</svg>"
    )


def _local_time(value: datetime | None, tz: ZoneInfo | None = None, seconds: bool = False) -> str:
    if value is None:
        return "—"
    moment = value.astimezone(tz) if tz is not None and value.tzinfo else value
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _date(value: date | datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime | date):
        return value.strftime("%Y-%m-%d")
    return str(value)


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Plain (old-style) callables: _() returns text that autoescape then escapes, and fields
    # are filled with str.format like everywhere else in siyu.
    env.install_gettext_callables(gettext, ngettext, newstyle=False)  # type: ignore[attr-defined]
    env.globals.update(
        current_locale=current_locale,
        version=__version__,
        sparkline=sparkline,
    )
    env.filters.update(
        json_attr=_json_attr,
        number=_number,
        percent=_percent,
        local_time=_local_time,
        day=_date,
        field_label=field_label,
    )
    return env


# Event fields and person dimensions as operators name them (breakdowns, filters).
FIELD_LABELS = {
    "channel": N_("Channel"),
    "source": N_("Source"),
    "utm_source": N_("UTM source"),
    "utm_medium": N_("UTM medium"),
    "utm_campaign": N_("UTM campaign"),
    "scene": N_("Scene"),
    "category": N_("Category"),
    "sku": N_("SKU"),
    "tier": N_("Member tier"),
    "lifecycle_stage": N_("Lifecycle stage"),
    "rfm_segment": N_("RFM segment"),
    "city_tier": N_("City tier"),
    "gender": N_("Gender"),
    "age_band": N_("Age band"),
}


def field_label(key: str | None) -> str:
    """A field's name in the page's language (``properties.X`` stays as it is)."""
    if not key:
        return ""
    label = FIELD_LABELS.get(key)
    return gettext(label) if label else key


def render(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(context)
