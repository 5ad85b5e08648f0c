"""Console routes of the reports page (报告): the stored weekly reports listed, viewed,
downloaded, and last week's built in the background by an operator or admin.

A stored report's HTML carries its own inline script (the vendored ECharts, so the file
works offline and by mail). The console's pages never run inline script, so the file is
served on its own address with its own policy: a ``sandbox`` CSP (a unique origin: the
script cannot read the console's cookies or pages, nor submit forms), inline script and
styles allowed only there, no network at all (``default-src 'none'``), and framing allowed
by the console only. The console shows it in an ``<iframe sandbox="allow-scripts">``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from siyu.analytics.report import service as reports
from siyu.api.deps import Context
from siyu.core.errors import NotFoundError, SiyuError
from siyu.core.i18n import N_, current_locale, gettext
from siyu.web.deps import MANAGERS, SignerDep, User, csrf_ok, error_page, is_htmx, page
from siyu.web.report_jobs import ReportJobs

router = APIRouter(include_in_schema=False)
REPORT_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:; font-src 'none'; connect-src 'none'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
)


def jobs_of(request: Request) -> ReportJobs:
    state = request.app.state
    if not hasattr(state, "report_jobs"):
        state.report_jobs = ReportJobs()
    found: ReportJobs = state.report_jobs
    return found


@router.get("/reports")
def reports_page(
    request: Request,
    user: User,
    sign: SignerDep,
    context: Context,
    job: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    jobs = jobs_of(request)
    current = jobs.get(job) if job else jobs.running()
    values: dict[str, Any] = {
        "items": reports.list_reports(context.settings),
        "may_build": user.role in MANAGERS,
        "job": current,
    }
    template = "reports_list.html" if is_htmx(request) else "reports.html"
    return page(request, template, values, user=user, sign=sign, active="reports")


@router.post("/reports/build")
def build_report(
    request: Request,
    user: User,
    sign: SignerDep,
    context: Context,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if user.role not in MANAGERS:
        message = gettext("Only operators and admins can build reports.")
        values = {"title": gettext("Not allowed"), "message": message, "hint": None}
        return page(
            request, "error.html", values, user=user, sign=sign, active="reports",
            status_code=403,
        )  # fmt: skip
    if not csrf_ok(request, sign, csrf_token):
        return Response(gettext("The form expired; reload the page."), status_code=403)
    job = jobs_of(request).start(
        request.app.state.context, username=user.username, locale=current_locale()
    )
    if is_htmx(request):
        return page(request, "reports_job.html", {"job": job}, user=user, sign=sign)
    return RedirectResponse(f"/reports?job={job.id}", status_code=303)


@router.get("/reports/jobs/{job_id}")
def report_job(request: Request, job_id: str, user: User, sign: SignerDep) -> Response:
    """The progress block, polled by the page while the build runs."""
    job = jobs_of(request).get(job_id[:40])
    response = page(request, "reports_job.html", {"job": job}, user=user, sign=sign)
    if job is not None and job.state == "done":
        response.headers["HX-Trigger"] = "siyu-report-built"
    return response


@router.get("/reports/files/{file_name}")
def report_file(
    request: Request,
    file_name: str,
    user: User,
    sign: SignerDep,
    context: Context,
    download: Annotated[str, Query(max_length=1)] = "",
) -> Response:
    """A stored file: the HTML inline under its sandbox policy (for the frame), or any
    format as a download."""
    try:
        path, media_type = reports.report_file(context.settings, file_name[:64])
    except SiyuError as exc:
        return error_page(request, user, sign, exc, "reports")
    inline = path.suffix == ".html" and not download
    response = FileResponse(
        path,
        media_type=media_type,
        filename=path.name,
        content_disposition_type="inline" if inline else "attachment",
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = REPORT_CSP
    return response


@router.get("/reports/{name}")
def report_page(
    request: Request, name: str, user: User, sign: SignerDep, context: Context
) -> Response:
    """One report: the stored HTML in a sandboxed frame, with its downloads."""
    found = next((r for r in reports.list_reports(context.settings) if r.name == name), None)
    if found is None:
        missing = NotFoundError(N_("No report file {name}"), name=name)
        return error_page(request, user, sign, missing, "reports")
    return page(
        request, "reports_view.html", {"item": found}, user=user, sign=sign, active="reports"
    )
