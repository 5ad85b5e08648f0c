"""Building, storing, listing, sending and scheduling weekly reports.

Reports live in ``SIYU_HOME/reports`` as ``weekly-YYYY-Www.{html,pdf,json}``. A file is
found only by a name matching that pattern, so no request can reach another file.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from sqlalchemy.orm import Session

from siyu.analytics.report import render, weekly
from siyu.analytics.report.models import WeeklyReport
from siyu.analytics.report.suggestions import format_change, format_number
from siyu.core.config import Settings
from siyu.core.errors import ConfigError, NotFoundError
from siyu.core.i18n import N_, gettext
from siyu.core.mail import Attachment, send_mail
from siyu.events import EventStore

log = logging.getLogger(__name__)

Format = Literal["html", "pdf", "json"]
FORMATS: tuple[Format, ...] = ("html", "pdf", "json")
MEDIA_TYPES: dict[str, str] = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "json": "application/json",
}
FILE_NAME = re.compile(r"^(weekly-\d{4}-W\d{2})\.(html|pdf|json)$")
SENT_SUFFIX = ".sent"
REPORT_HOUR = 6  # local hour on Monday from which last week's report is due


class ReportFile(BaseModel):
    name: str
    week: str
    formats: list[str]
    sizes: dict[str, int]
    modified_at: datetime


class BuildResult(BaseModel):
    name: str
    week: str
    files: list[str]
    sent_to: list[str]


def reports_dir(settings: Settings) -> Path:
    return settings.home_dir / "reports"


def _write(path: Path, data: bytes) -> None:
    """Write atomically: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save(settings: Settings, report: WeeklyReport, *, pdf: bool = True) -> list[Path]:
    """Render and store the report; the PDF first, so a missing font stores nothing."""
    folder = reports_dir(settings)
    rendered: list[tuple[Path, bytes]] = []
    if pdf:
        rendered.append((folder / f"{report.name}.pdf", render.render_pdf(report)))
    rendered.append((folder / f"{report.name}.html", render.render_html(report).encode()))
    rendered.append(
        (folder / f"{report.name}.json", report.model_dump_json(indent=2).encode("utf-8"))
    )
    for path, data in rendered:
        _write(path, data)
    return [path for path, _ in rendered]


def build_and_save(
    settings: Settings,
    db_session: Session,
    events: EventStore,
    *,
    week: str | None = None,
    pdf: bool = True,
    send: bool = False,
) -> tuple[WeeklyReport, BuildResult]:
    report = weekly.build(events, db_session, tz=settings.tz, week=week)
    paths = save(settings, report, pdf=pdf)
    sent_to = send_report(settings, report) if send else []
    result = BuildResult(
        name=report.name, week=report.week, files=[str(p) for p in paths], sent_to=sent_to
    )
    return report, result


def list_reports(settings: Settings) -> list[ReportFile]:
    """Stored reports, newest week first."""
    folder = reports_dir(settings)
    found: dict[str, dict[str, Path]] = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = FILE_NAME.match(path.name)
            if match and path.is_file():
                found.setdefault(match.group(1), {})[match.group(2)] = path
    items = []
    for name in sorted(found, reverse=True):
        files = found[name]
        items.append(
            ReportFile(
                name=name,
                week=name.removeprefix("weekly-"),
                formats=[f for f in FORMATS if f in files],
                sizes={f: files[f].stat().st_size for f in FORMATS if f in files},
                modified_at=datetime.fromtimestamp(
                    max(p.stat().st_mtime for p in files.values()), UTC
                ),
            )
        )
    return items


def report_file(settings: Settings, file_name: str) -> tuple[Path, str]:
    """A stored report file by its name (``weekly-2026-W47.pdf``) and its media type."""
    match = FILE_NAME.match(file_name)
    path = reports_dir(settings) / file_name if match else None
    if match is None or path is None or not path.is_file():
        raise NotFoundError(N_("No report file {name}"), name=file_name)
    return path, MEDIA_TYPES[match.group(2)]


# -- sending -----------------------------------------------------------------------------------


def summary_text(report: WeeklyReport) -> str:
    """The mail's plain-text part: key figures and the suggestions."""
    lines = [gettext("Weekly report {week}").format(week=report.week), ""]
    for kpi in report.kpis:
        lines.append(
            f"{kpi.label}: {format_number(kpi.value, kpi.unit)} ({format_change(kpi.change)})"
        )
    lines.append("")
    lines.extend(f"[{s.dimension_label}] {s.text}" for s in report.suggestions)
    return "\n".join(lines)


def send_report(
    settings: Settings, report: WeeklyReport, recipients: list[str] | None = None
) -> list[str]:
    """Mail the report (HTML body, PDF attached) to the subscribers; returns who got it."""
    to = recipients if recipients is not None else settings.report_subscriber_list
    if not to:
        raise ConfigError(
            N_("Nobody subscribes to the weekly report: set SIYU_REPORT_SUBSCRIBERS"),
            setting="SIYU_REPORT_SUBSCRIBERS",
        )
    pdf_path = reports_dir(settings) / f"{report.name}.pdf"
    pdf = pdf_path.read_bytes() if pdf_path.is_file() else render.render_pdf(report)
    send_mail(
        settings,
        to,
        gettext("siyu weekly report {week}").format(week=report.week),
        summary_text(report),
        html=render.render_html(report, interactive=False),
        attachments=[Attachment(f"{report.name}.pdf", pdf, "application/pdf")],
    )
    _write(reports_dir(settings) / f".{report.name}{SENT_SUFFIX}", ",".join(to).encode())
    return to


# -- schedule ----------------------------------------------------------------------------------


def due_week(settings: Settings, now: datetime) -> str | None:
    """Last week's ISO week when its report is due at ``now``: from Monday 06:00 local (a
    server down on Monday catches up later in the week), when it is not stored yet or not
    yet sent to the subscribers."""
    local = now.astimezone(settings.tz)
    if local.weekday() == 0 and local.hour < REPORT_HOUR:
        return None
    week = weekly.previous_week(local.date())
    folder = reports_dir(settings)
    name = f"weekly-{week}"
    stored = (folder / f"{name}.html").is_file()
    sent = (folder / f".{name}{SENT_SUFFIX}").is_file()
    if stored and (sent or not _can_send(settings)):
        return None
    return week


def _can_send(settings: Settings) -> bool:
    return bool(settings.report_subscriber_list and settings.smtp_url)


def run_scheduled(
    settings: Settings, db_session: Session, events: EventStore, now: datetime
) -> BuildResult | None:
    """Build last week's report if due and send it to the subscribers (once)."""
    week = due_week(settings, now)
    if week is None:
        return None
    folder = reports_dir(settings)
    stored = (folder / f"weekly-{week}.json").is_file()
    if stored:
        report = WeeklyReport.model_validate_json((folder / f"weekly-{week}.json").read_bytes())
        result = BuildResult(name=report.name, week=week, files=[], sent_to=[])
    else:
        report, result = build_and_save(settings, db_session, events, week=week)
    if _can_send(settings):
        result.sent_to = send_report(settings, report)
    return result
