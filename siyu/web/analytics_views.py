"""Console routes of the analytics pages (分析): funnels, retention, paths, attribution,
experiments and the metric explorer, for analysts and above. Thin: each reads its form,
calls one service through :mod:`siyu.web.analytics_flows` inside a panel (so a refused
definition is an error in the page), and renders its template, or only the result when
HTMX asks. The reports pages (:mod:`siyu.web.reports_views`) are included here."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from siyu.analytics import funnels
from siyu.analytics.common import Grain
from siyu.analytics.experiments import analysis as experiment_analysis
from siyu.analytics.experiments import service as experiments
from siyu.analytics.experiments.models import Status
from siyu.analytics.metrics import DIMENSIONS
from siyu.api.context import AppContext
from siyu.api.deps import Context, DbSession, get_event_store
from siyu.core.errors import SiyuError
from siyu.core.i18n import N_, gettext
from siyu.privacy.models import Role
from siyu.web import analytics_flows as af
from siyu.web import experiment_flows
from siyu.web.deps import MANAGERS, ConsoleUser, SignerDep, User, csrf_ok, error_page, is_htmx, page
from siyu.web.flows import Panel, panel
from siyu.web.reports_views import router as reports_router

router = APIRouter(include_in_schema=False)
router.include_router(reports_router)

ANALYST_ROLES = frozenset({Role.admin.value, Role.operator.value, Role.analyst.value})
FormText = Annotated[str, Form(max_length=200)]
TABS = (
    ("funnels", "/analytics/funnels", N_("Funnels")),
    ("retention", "/analytics/retention", N_("Retention")),
    ("paths", "/analytics/paths", N_("Paths")),
    ("attribution", "/analytics/attribution", N_("Attribution")),
    ("experiments", "/analytics/experiments", N_("Experiments")),
    ("metrics", "/analytics/metrics", N_("Metric explorer")),
)
EXPERIMENTS_PAGE = 20
Text = Annotated[str, Query(max_length=200)]
From = Annotated[str, Query(alias="from", max_length=10)]
To = Annotated[str, Query(alias="to", max_length=10)]
Many = Annotated[list[str] | None, Query(max_length=40)]


def forbidden(
    request: Request, user: ConsoleUser, sign: SignerDep, message: str, active: str
) -> HTMLResponse:
    """The page a role may not see: a 403 that says who may, never a stack trace."""
    values = {"title": gettext("Not allowed"), "message": message, "hint": None}
    return page(request, "error.html", values, user=user, sign=sign, active=active, status_code=403)


def _denied(request: Request, user: ConsoleUser, sign: SignerDep) -> HTMLResponse | None:
    if user.role in ANALYST_ROLES:
        return None
    message = gettext("Analytics are open to analysts, operators and admins.")
    return forbidden(request, user, sign, message, "analytics")


def _names(context: AppContext) -> list[str]:
    try:
        return af.event_names(get_event_store(context))
    except SiyuError:
        return []


def _no_events(names: list[str]) -> str | None:
    if names:
        return None
    return gettext("No events yet: run `siyu demo` or import events (`siyu import`).")


def _analysis(
    request: Request,
    user: ConsoleUser,
    sign: SignerDep,
    *,
    tab: str,
    values: dict[str, Any],
    result: Panel,
    name: str | None = None,
) -> Response:
    """One analytics page (or, for HTMX, its result block only)."""
    base = f"analytics_{name or tab}"
    template = f"{base}_result.html" if is_htmx(request) else f"{base}.html"
    labels = {key: gettext(label) for key, _href, label in TABS}
    context = {
        **values,
        "p": result,
        "tab": tab,
        "tab_title": labels[tab],
        "tabs": [(key, href, labels[key]) for key, href, _label in TABS],
        "grains": [(g.value, gettext(label)) for g, label in af.GRAINS.items()],
    }
    return page(request, template, context, user=user, sign=sign, active="analytics")


def _run(names: list[str], build: Callable[[], Any], empty: str | None = None) -> Panel:
    """The result panel: no events, nothing asked yet (``empty``), or the computed result."""
    nothing = _no_events(names)
    if nothing is not None:
        return Panel(empty=nothing)
    if empty is not None:
        return Panel(empty=empty)
    return panel(build)


@router.get("/analytics")
def analytics_home(user: User) -> Response:
    return RedirectResponse("/analytics/funnels", status_code=303)


@router.get("/analytics/funnels")
def funnel_page(
    request: Request,
    user: User,
    sign: SignerDep,
    context: Context,
    step: Many = None,
    window: Text = "7d",
    mode: Text = "any",
    breakdown: Text = "",
    start: From = "",
    end: To = "",
) -> Response:
    if (denied := _denied(request, user, sign)) is not None:
        return denied
    names = _names(context)
    asked = step is not None
    form = af.funnel_form(step or af.default_steps(names), window, mode, breakdown, start, end)
    waiting = None
    if not asked or not form.ready:
        waiting = gettext("Choose two or more steps, then press Run.")
    result = _run(
        names, lambda: af.funnel_view(get_event_store(context), form, context.settings.tz), waiting
    )
    values = {
        "form": form,
        "names": names,
        "modes": [(key, gettext(label)) for key, label in af.MODES.items()],
        "breakdowns": af.BREAKDOWNS,
        "may_save": user.role in MANAGERS,
    }
    return _analysis(request, user, sign, tab="funnels", values=values, result=result)


@router.post("/analytics/funnels/dropoff")
def save_dropoff(
    request: Request,
    user: User,
    sign: SignerDep,
    context: Context,
    db_session: DbSession,
    csrf_token: FormText = "",
    step: Annotated[list[str] | None, Form(max_length=40)] = None,
    window: FormText = "7d",
    mode: FormText = "any",
    start: FormText = "",
    end: FormText = "",
    at: FormText = "",
    key: FormText = "",
    name: FormText = "",
) -> Response:
    """Save the people who dropped off before a step as a static segment, then show it."""
    if user.role not in MANAGERS:
        message = gettext("Only administrators and operators may save segments.")
        return forbidden(request, user, sign, message, "analytics")
    if not csrf_ok(request, sign, csrf_token):
        return forbidden(
            request, user, sign, gettext("The form expired; reload the page."), "analytics"
        )
    form = af.funnel_form(step or [], window, mode, "", start, end)
    try:
        segment, _counts = funnels.save_dropoff_segment(
            db_session, get_event_store(context), form.definition(),
            step=af.parse_int(at, 2, 2, funnels.MAX_STEPS), key=key.strip(),
            name=name.strip() or key.strip(), tz=context.settings.tz,
        )  # fmt: skip
    except SiyuError as exc:
        db_session.rollback()
        return error_page(request, user, sign, exc, "analytics")
    return RedirectResponse(f"/segments/{segment.key}", status_code=303)


@router.get("/analytics/retention")
def retention_page(
    request: Request,
    user: User,
    sign: SignerDep,
    context: Context,
    cohort_event: Text = "",
    return_event: Text = "",
    grain: Text = "week",
    periods: Text = "8",
    unbounded: Text = "",
    start: From = "",
    end: To = "",
) -> Response:
    if (denied := _denied(request, user, sign)) is not None:
        return denied
    names = _names(context)
    form = af.RetentionForm(
        cohort_event=cohort_event.strip(),
        return_event=return_event.strip(),
        grain=af.parse_grain(grain, Grain.week),
        periods=af.parse_int(periods, 8, 1, 60),
        unbounded=unbounded in ("1", "on", "true"),
        start=af.parse_day(start),
        end=af.parse_day(end),
    )
    result = _run(
        names, lambda: af.retention_view(get_event_store(context), form, context.settings.tz)
    )
    values = {"form": form, "names": names}
    return _analysis(request, user, sign, tab="retention", values=values, result=result)


@router.get("/analytics/paths")
def paths_page(
    request: Request,
    user: User,
    sign: SignerDep,
    context: Context,
    start_event: Text = "",
    steps: Text = "4",
    direction: Text = "after",
    start: From = "",
    end: To = "",
) -> Response:
    if (denied := _denied(request, user, sign)) is not None:
        return denied
    names = _names(context)
    anchor = start_event.strip() or next(
        (n for n in ("page_view", "product_view") if n in names), names[0] if names else ""
    )
    form = af.PathForm(
        start_event=anchor,
        steps=af.parse_int(steps, 4, 2, 10),
        before=direction == "before",
        start=af.parse_day(start),
        end=af.parse_day(end),
    )
    result = _run(names, lambda: af.paths_view(get_event_store(context), form, context.settings.tz))
    values = {"form": form, "names": names}
    return _analysis(request, user, sign, tab="paths", values=values, result=result)


@router.get("/analytics/attribution")
def attribution_page(
    request: Request,
    user: User,
    sign: SignerDep,
    context: Context,
    window: Text = "30d",
    conversion: Text = "order_paid",
    measure: Text = "conversions",
    start: From = "",
    end: To = "",
) -> Response:
    if (denied := _denied(request, user, sign)) is not None:
        return denied
    names = _names(context)
    form = af.AttributionForm(
        window=window.strip() or "30d",
        conversion=conversion.strip() or "order_paid",
        measure="revenue" if measure == "revenue" else "conversions",
        start=af.parse_day(start),
        end=af.parse_day(end),
    )
    result = _run(
        names, lambda: af.attribution_view(get_event_store(context), form, context.settings.tz)
    )
    values = {"form": form, "names": names}
    return _analysis(request, user, sign, tab="attribution", values=values, result=result)


@router.get("/analytics/metrics")
def metrics_page(
    request: Request,
    user: User,
    sign: SignerDep,
    context: Context,
    metric: Many = None,
    grain: Text = "day",
    dimension: Text = "",
    start: From = "",
    end: To = "",
) -> Response:
    if (denied := _denied(request, user, sign)) is not None:
        return denied
    names = _names(context)
    form = af.metric_form(metric or [], grain, dimension, start, end)
    result = _run(
        names, lambda: af.metrics_view(get_event_store(context), form, context.settings.tz)
    )
    values = {
        "form": form,
        "families": af.metric_families(),
        "dimensions": DIMENSIONS,
    }
    return _analysis(request, user, sign, tab="metrics", values=values, result=result)


# -- experiments ----------------------------------------------------------------------------


STATUS_LABELS = {
    Status.draft: N_("Draft"),
    Status.running: N_("Running"),
    Status.stopped: N_("Stopped"),
}


@router.get("/analytics/experiments")
def experiments_page(
    request: Request,
    user: User,
    sign: SignerDep,
    db_session: DbSession,
    status: Text = "",
    page_no: Annotated[str, Query(alias="page", max_length=7)] = "1",
) -> Response:
    if (denied := _denied(request, user, sign)) is not None:
        return denied
    chosen = status if status in Status.__members__ else ""
    number = af.parse_int(page_no, 1, 1, 999_999)
    found = panel(
        lambda: experiments.list_experiments(
            db_session,
            status=chosen or None,
            offset=(number - 1) * EXPERIMENTS_PAGE,
            limit=EXPERIMENTS_PAGE,
        ),
        lambda listed: _no_experiments(chosen) if listed.total == 0 else None,
    )
    total = found.data.total if found.data is not None else 0
    values = {
        "status": chosen,
        "statuses": [(s.value, gettext(label)) for s, label in STATUS_LABELS.items()],
        "status_label": lambda s: gettext(STATUS_LABELS.get(Status(s), str(s))),
        "page_no": number,
        "pages": max(math.ceil(total / EXPERIMENTS_PAGE), 1),
        "page_url": lambda n: "/analytics/experiments?" + urlencode({"status": chosen, "page": n}),
    }
    return _analysis(request, user, sign, tab="experiments", values=values, result=found)


def _no_experiments(status: str) -> str:
    if status:
        return gettext("No experiment has this status.")
    return gettext(
        "No experiments yet: describe one in a YAML file and run "
        "`siyu experiments create --file FILE`, then `siyu experiments start KEY`."
    )


@router.get("/analytics/experiments/{key}")
def experiment_page(
    request: Request,
    key: str,
    user: User,
    sign: SignerDep,
    context: Context,
    db_session: DbSession,
) -> Response:
    if (denied := _denied(request, user, sign)) is not None:
        return denied
    try:
        experiment = experiments.get_or_raise(db_session, key[:64])
    except SiyuError as exc:
        shown = {"title": exc.render_title(), "message": exc.render(), "hint": exc.render_hint()}
        return page(
            request, "error.html", shown, user=user, sign=sign, active="analytics",
            status_code=exc.status,
        )  # fmt: skip

    def build() -> dict[str, Any]:
        results = experiment_analysis.results(get_event_store(context), experiment)
        return {"results": results, "metrics": experiment_flows.experiment_view(results)}

    result = panel(
        build,
        lambda data: (
            gettext("Nobody has been exposed yet: log exposures with `siyu experiments expose`.")
            if data["results"].exposed == 0
            else None
        ),
    )
    values: dict[str, Any] = {
        "experiment": experiment,
        "status_label": gettext(STATUS_LABELS.get(experiment.status, str(experiment.status))),
    }
    return _analysis(
        request, user, sign, tab="experiments", values=values, result=result, name="experiment"
    )
