"""Building a weekly report from the console: in a background thread, one at a time per
server, with its progress kept in memory for the page to poll.

The job runs the report service's own steps (:func:`weekly.build`, then
:func:`service.save`) in the language of whoever started it. Without a Chinese font the PDF
cannot be drawn: the HTML and JSON are still stored, and the job says why the PDF is missing.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from siyu.analytics.report import service, weekly
from siyu.analytics.report.render import FontMissingError
from siyu.api.context import AppContext
from siyu.core.errors import EventStoreError, SiyuError
from siyu.core.i18n import N_, gettext, use_locale
from siyu.core.logging import get_logger

log = get_logger("web")
State = Literal["running", "done", "failed"]
KEEP = 20  # finished jobs remembered, newest first

STEPS = {
    "figures": N_("Computing the week's figures"),
    "files": N_("Drawing the charts and the PDF"),
    "done": N_("Report stored"),
}


@dataclass
class ReportJob:
    id: str
    username: str
    locale: str
    state: State = "running"
    step: str = "figures"
    progress: int = 5
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    name: str | None = None
    week: str | None = None
    error: str | None = None
    hint: str | None = None
    warning: str | None = None

    @property
    def step_label(self) -> str:
        return gettext(STEPS[self.step])


@dataclass
class ReportJobs:
    """The server's report jobs (a restart forgets them; the stored files stay)."""

    jobs: dict[str, ReportJob] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, job_id: str) -> ReportJob | None:
        with self.lock:
            return self.jobs.get(job_id)

    def running(self) -> ReportJob | None:
        with self.lock:
            return next((j for j in self.jobs.values() if j.state == "running"), None)

    def start(self, context: AppContext, *, username: str, locale: str) -> ReportJob:
        """Start building last week's report, or return the build already under way."""
        with self.lock:
            busy = next((j for j in self.jobs.values() if j.state == "running"), None)
            if busy is not None:
                return busy
            job = ReportJob(id=secrets.token_urlsafe(9), username=username, locale=locale)
            self.jobs[job.id] = job
            finished = [j for j in self.jobs.values() if j.state != "running"]
            for old in sorted(finished, key=lambda j: j.started_at)[:-KEEP]:
                self.jobs.pop(old.id, None)
        thread = threading.Thread(
            target=self._run, args=(context, job), name=f"report-{job.id}", daemon=True
        )
        thread.start()
        return job

    def _run(self, context: AppContext, job: ReportJob) -> None:
        with use_locale(job.locale):
            try:
                self._build(context, job)
            except SiyuError as exc:
                job.error, job.hint = exc.render(), exc.render_hint()
                job.state = "failed"
            except Exception:
                log.exception("console report build failed")
                job.error = gettext("The report could not be built.")
                job.hint = gettext("The server log has the details (job {id}).").format(id=job.id)
                job.state = "failed"
            finally:
                job.finished_at = datetime.now(UTC)

    @staticmethod
    def _build(context: AppContext, job: ReportJob) -> None:
        events = context.events
        if events is None:
            raise context.events_error or EventStoreError(
                N_("The event store is not open"), path="?"
            )
        settings = context.settings
        with context.database.unit_of_work() as session:
            report = weekly.build(events, session, tz=settings.tz)
        job.week, job.name = report.week, report.name
        job.step, job.progress = "files", 60
        try:
            service.save(settings, report, pdf=True)
        except FontMissingError as exc:
            service.save(settings, report, pdf=False)
            job.warning = exc.render() + " " + (exc.render_hint() or "")
        job.step, job.progress, job.state = "done", 100, "done"
        log.info("console report built: %s by %s", report.name, job.username)
