"""The report as a self-contained HTML page (SVG charts, upgraded to ECharts from the vendored
copy when scripts run; no request to any host) and as a PDF (WeasyPrint, which needs a CJK
font on the machine to draw Chinese)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from siyu.analytics.metrics import Unit
from siyu.analytics.report import charts
from siyu.analytics.report.models import WeeklyReport
from siyu.analytics.report.suggestions import format_change, format_number
from siyu.core.errors import ConfigError
from siyu.core.i18n import N_, gettext

TEMPLATES = Path(__file__).resolve().parent / "templates"
ECHARTS = Path(__file__).resolve().parents[2] / "web" / "static" / "vendor" / "echarts"
FONT_PACKAGE = "fonts-wqy-microhei"

# Every text of the page, translated when rendered (templates are not scanned for msgids).
LABELS = {
    "title": N_("Weekly report {week}"),
    "period": N_("{start} – {end} ({tz}), compared with {previous_start} – {previous_end}"),
    "data_until": N_("Data until {day}; generated {at}"),
    "kpis": N_("Key figures"),
    "metric": N_("Metric"),
    "this_week": N_("This week"),
    "last_week": N_("Last week"),
    "change": N_("Change"),
    "charts": N_("Charts"),
    "suggestions": N_("Optimisation suggestions"),
    "dimension": N_("Dimension"),
    "suggestion": N_("Suggestion"),
    "evidence": N_("Figures used"),
    "steady": N_("steady"),
    "action": N_("act"),
    "movers": N_("Top movers"),
    "breakdown": N_("Breakdown"),
    "value": N_("Value"),
    "delta": N_("Difference"),
    "anomalies": N_("Anomalies"),
    "day": N_("Day"),
    "expected": N_("Expected"),
    "no_anomalies": N_("No metric left its weekday baseline this week."),
    "experiments": N_("Experiments"),
    "experiment": N_("Experiment"),
    "status": N_("Status"),
    "exposed": N_("Exposed"),
    "variant": N_("Variant"),
    "lift": N_("Lift"),
    "p_value": N_("p (adjusted)"),
    "significant": N_("Significant"),
    "srm": N_("Sample ratio mismatch: check the assignment before reading the result"),
    "no_experiments": N_("No experiment ran this week."),
    "funnel": N_("Funnel: product view to payment"),
    "step": N_("Step"),
    "people": N_("People"),
    "step_conversion": N_("From previous step"),
    "channels": N_("Revenue by channel (linear attribution)"),
    "channel": N_("Channel"),
    "revenue": N_("Revenue"),
    "notes": N_("Notes"),
    "yes": N_("yes"),
    "no": N_("no"),
}


class FontMissingError(ConfigError):
    """No font on the machine can draw Chinese, so the PDF would show empty boxes."""

    code = "font_missing"
    title = N_("No Chinese font")


def cjk_fonts() -> list[str]:
    """Font families fontconfig knows for Chinese (empty without fontconfig)."""
    command = shutil.which("fc-list")
    if command is None:
        return []
    try:
        done = subprocess.run(  # noqa: S603 (a fixed command, no user input)
            [command, ":lang=zh", "family"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({line.split(",")[0].strip() for line in done.stdout.splitlines() if line.strip()})


def require_cjk_font() -> list[str]:
    """The CJK font families, or a clear error saying what to install."""
    found = cjk_fonts()
    if not found:
        raise FontMissingError(
            N_("No font that can draw Chinese is installed, so the PDF cannot be made"),
            hint=N_(
                "Install a CJK font, e.g. on Debian/Ubuntu: apt-get install {package} "
                "(or fonts-noto-cjk), then build the report again; --no-pdf skips the PDF."
            ),
            package=FONT_PACKAGE,
        )
    return found


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = lambda value, unit: format_number(value, Unit(unit))
    env.filters["change"] = format_change
    return env


@cache
def echarts_script() -> str:
    """The vendored ECharts, safe to inline: XML namespace names are written ``http:\\/\\/…``
    (the same JavaScript string) so the page carries no address outside licence comments."""
    code = (ECHARTS / "echarts.min.js").read_text(encoding="utf-8")
    return code.replace('"http://www.w3.org/', '"http:\\/\\/www.w3.org/').replace("</", "<\\/")


def font_stack(fonts: Sequence[str] = ()) -> Markup:
    """A CSS font-family list: the given families (names fc-list reported), then the usual
    CJK fonts; odd characters dropped, so a font name cannot break out of the style."""
    safe = [re.sub(r"[^\w \-]", "", f).strip() for f in fonts]
    names = [f"'{f}'" for f in safe if f]
    return Markup(", ".join([*names, charts.FONT]))  # noqa: S704 (sanitised above)


def render_html(
    report: WeeklyReport, *, interactive: bool = True, fonts: Sequence[str] = ()
) -> str:
    """The report page. ``interactive``: inline ECharts to redraw the charts (the PDF and
    mail bodies leave it out: neither runs scripts)."""
    labels = {key: gettext(text) for key, text in LABELS.items()}
    chart_specs = [c.model_dump(mode="json") for c in report.charts]
    context: dict[str, Any] = {
        "report": report,
        "t": labels,
        "title": labels["title"].format(week=report.week),
        "period": labels["period"].format(
            start=report.start,
            end=report.end,
            tz=report.timezone,
            previous_start=report.previous_start,
            previous_end=report.previous_end,
        ),
        "data_until": labels["data_until"].format(
            day=report.data_until or "—", at=report.generated_at.strftime("%Y-%m-%d %H:%M UTC")
        ),
        "charts": [(c, Markup(charts.render(c))) for c in report.charts],  # noqa: S704 (our SVG, text escaped)
        "chart_specs": chart_specs,
        "interactive": interactive,
        "echarts": Markup(echarts_script()) if interactive else "",  # noqa: S704 (vendored file)
        "fonts": font_stack(fonts),
        "lang": "zh-CN" if report.lang.startswith("zh") else "en",
    }
    return _environment().get_template("weekly.html").render(context)


def render_pdf(report: WeeklyReport) -> bytes:
    """The report as PDF; refuses (naming the package to install) without a CJK font."""
    fonts = require_cjk_font()
    from weasyprint import HTML  # imported late: it loads Pango, which the CLI rarely needs

    html = render_html(report, interactive=False, fonts=fonts[:1])
    pdf: bytes | None = HTML(string=html, base_url=str(TEMPLATES)).write_pdf()
    assert pdf is not None
    return pdf
