"""``/v1/analytics/anomalies``, ``/v1/analytics/alert-rules``, ``/v1/analytics/alerts`` and
``siyu analytics anomalies|alerts``: thin over :mod:`.service`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from fastapi import APIRouter, Query, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from rich.table import Table

from siyu.analytics.alerts import service
from siyu.analytics.alerts.models import AlertRead, RuleCreate, RuleRead, RuleUpdate
from siyu.analytics.alerts.service import Finding, RunSummary
from siyu.analytics.cli_app import JsonOption, analytics_app, console, print_json
from siyu.api.deps import Context, DbSession, Events, RowId
from siyu.api.problems import documented
from siyu.core.i18n import gettext as _

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])
PROBLEMS = documented(404, 422)
alerts_app = typer.Typer(help="Anomaly alert rules and alerts.", no_args_is_help=True)
analytics_app.add_typer(alerts_app, name="alerts")
API_ACTOR = "api"


class AlertPage(BaseModel):
    items: list[AlertRead]
    total: int
    offset: int
    limit: int


@router.get(
    "/anomalies",
    response_model=list[Finding],
    summary="Every watched metric on a day against its weekday baseline",
    responses=PROBLEMS,
)
async def anomalies(events: Events, ctx: Context, day: date | None = None) -> list[Finding]:
    return await run_in_threadpool(service.scan, events, ctx.settings.tz, day)


@router.get("/alert-rules", response_model=list[RuleRead], summary="Alert rules")
async def list_rules(db_session: DbSession) -> list[RuleRead]:
    return service.list_rules(db_session)


@router.post(
    "/alert-rules",
    response_model=RuleRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create an alert rule",
    responses=PROBLEMS,
)
async def create_rule(spec: RuleCreate, db_session: DbSession) -> RuleRead:
    return service.create_rule(db_session, spec)


@router.get(
    "/alert-rules/{rule_id}", response_model=RuleRead, summary="An alert rule", responses=PROBLEMS
)
async def get_rule(rule_id: RowId, db_session: DbSession) -> RuleRead:
    return service.get_rule(db_session, rule_id)


@router.patch(
    "/alert-rules/{rule_id}",
    response_model=RuleRead,
    summary="Change an alert rule",
    responses=PROBLEMS,
)
async def update_rule(rule_id: RowId, change: RuleUpdate, db_session: DbSession) -> RuleRead:
    return service.update_rule(db_session, rule_id, change)


@router.delete(
    "/alert-rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an alert rule (its alerts stay)",
    responses=PROBLEMS,
)
async def delete_rule(rule_id: RowId, db_session: DbSession) -> None:
    service.delete_rule(db_session, rule_id)


@router.post(
    "/alerts/run",
    response_model=RunSummary,
    summary="Run every enabled rule over a day (default: yesterday) and deliver",
    responses=PROBLEMS,
)
async def run_rules(
    db_session: DbSession, events: Events, ctx: Context, day: date | None = None
) -> RunSummary:
    return await run_in_threadpool(service.run_rules, db_session, events, ctx.settings, day)


@router.get("/alerts", response_model=AlertPage, summary="Alerts, newest first", responses=PROBLEMS)
async def list_alerts(
    db_session: DbSession,
    alert_status: Annotated[
        str | None, Query(alias="status", pattern="^(open|acknowledged)$")
    ] = None,
    metric: str | None = None,
    offset: Annotated[int, Query(ge=0, le=2_147_483_647)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AlertPage:
    items, total = service.list_alerts(
        db_session, status=alert_status, metric=metric, offset=offset, limit=limit
    )
    return AlertPage(items=items, total=total, offset=offset, limit=limit)


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=AlertRead,
    summary="Acknowledge an alert",
    responses=PROBLEMS,
)
async def acknowledge(alert_id: RowId, db_session: DbSession) -> AlertRead:
    return service.acknowledge(db_session, alert_id, API_ACTOR)


# -- CLI -----------------------------------------------------------------------------------


def _print_findings(findings: list[Finding]) -> None:
    table = Table(title=_("Anomalies"))
    for column in (_("Metric"), _("Value"), _("Expected"), _("Change"), _("Anomaly")):
        table.add_column(column, justify="left" if column == _("Metric") else "right")
    for found in findings:
        v = found.verdict
        table.add_row(
            found.label,
            "—" if v.value is None else f"{v.value:,.2f}",
            "—" if v.expected is None else f"{v.expected:,.2f}",
            "—" if v.change is None else f"{v.change:+.1%}",
            _("yes") if v.anomalous else "",
        )
    console.print(table)


def _register() -> None:
    from siyu.cli_stores import handle_errors, open_stores, read_yaml_file

    @analytics_app.command("anomalies")
    @handle_errors
    def anomalies_command(
        day: Annotated[date | None, typer.Option(help="Local day; default: the latest.")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Watched metrics on a day against the same weekday of the 4 weeks before."""
        with open_stores() as (settings, _session, events):
            findings = service.scan(events, settings.tz, day)
        if as_json:
            print_json([f.model_dump(mode="json") for f in findings])
            return
        _print_findings(findings)

    @alerts_app.command("rules")
    @handle_errors
    def rules_command(as_json: JsonOption = False) -> None:
        """List alert rules."""
        with open_stores() as (_settings, session, _events):
            rules = service.list_rules(session)
        if as_json:
            print_json([r.model_dump(mode="json") for r in rules])
            return
        table = Table(title=_("Alert rules"))
        for column in ("ID", _("Name"), _("Metric"), _("Method"), _("Threshold"), _("Targets")):
            table.add_column(column)
        for r in rules:
            targets = ", ".join(f"{t.kind}:{t.address}" for t in r.targets)
            table.add_row(str(r.id), r.name, r.metric, r.method, f"{r.threshold:.0%}", targets)
        console.print(table)

    @alerts_app.command("add-rule")
    @handle_errors
    def add_rule_command(
        file: Annotated[Path, typer.Argument(help="A rule as YAML or JSON (name, metric, …).")],
    ) -> None:
        """Create an alert rule from a YAML or JSON file."""
        spec = RuleCreate.model_validate(read_yaml_file(file))
        with open_stores() as (_settings, session, _events):
            rule = service.create_rule(session, spec)
        console.print(_("Alert rule {id} created").format(id=rule.id))

    @alerts_app.command("run")
    @handle_errors
    def run_command(
        day: Annotated[date | None, typer.Option(help="Local day; default: yesterday.")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Run every enabled rule over a day and deliver new alerts."""
        with open_stores() as (settings, session, events):
            summary = service.run_rules(session, events, settings, day)
        if as_json:
            print_json(summary)
            return
        console.print(
            _("{alerts} alerts from {rules} rules; {delivered} delivered, {failed} failed").format(
                alerts=len(summary.alerts),
                rules=summary.rules,
                delivered=summary.delivered,
                failed=summary.failed,
            )
        )

    @alerts_app.command("list")
    @handle_errors
    def list_command(
        alert_status: Annotated[
            str | None, typer.Option("--status", help="open or acknowledged")
        ] = None,
        limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
        as_json: JsonOption = False,
    ) -> None:
        """Alerts, newest first."""
        with open_stores() as (_settings, session, _events):
            items, total = service.list_alerts(session, status=alert_status, limit=limit)
        if as_json:
            print_json({"items": [i.model_dump(mode="json") for i in items], "total": total})
            return
        table = Table(title=_("Alerts ({total})").format(total=total))
        for column in ("ID", _("Day"), _("Status"), _("Message")):
            table.add_column(column)
        for a in items:
            table.add_row(str(a.id), a.day.isoformat(), _(a.status), a.message)
        console.print(table)

    @alerts_app.command("ack")
    @handle_errors
    def ack_command(alert_id: Annotated[int, typer.Argument(help="The alert's id.")]) -> None:
        """Acknowledge an alert."""
        with open_stores() as (_settings, session, _events):
            service.acknowledge(session, alert_id, "cli")
        console.print(_("Alert {id} acknowledged").format(id=alert_id))


_register()
