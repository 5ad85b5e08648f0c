"""Alert rules, running them over a day, delivering and acknowledging alerts; and scanning
every metric for anomalies without a rule (what the overview and the weekly report show)."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.analytics import metrics
from siyu.analytics.alerts.delivery import deliver, target_id
from siyu.analytics.alerts.detect import HISTORY_DAYS, Direction, Method, Verdict, judge
from siyu.analytics.alerts.models import (
    Alert,
    AlertRead,
    AlertRule,
    RuleCreate,
    RuleRead,
    RuleUpdate,
)
from siyu.analytics.common import AnalysisError, Period, last_event_date
from siyu.core.clock import utcnow
from siyu.core.config import Settings
from siyu.core.errors import NotFoundError
from siyu.core.i18n import N_, gettext
from siyu.events import EventStore

# Metrics worth watching every day (the scan); rules may watch any metric.
WATCHED = (
    "new_people", "active_people", "net_contacts", "open_rate", "click_rate",
    "visit_to_order", "coupon_redemption", "gmv", "orders", "aov", "buyers",
    "private_gmv_share", "refund_amount",
)  # fmt: skip


class Finding(BaseModel):
    metric: str
    label: str
    higher_is_better: bool
    verdict: Verdict


class RunSummary(BaseModel):
    day: date
    rules: int
    alerts: list[AlertRead]
    delivered: int
    failed: int


# Period figures without a daily series.
NOT_DAILY = ("churn_rate", "ltv_365d")


def _check_metric(key: str) -> None:
    if key not in metrics.METRICS or key in NOT_DAILY:
        usable = [k for k in metrics.METRICS if k not in NOT_DAILY]
        raise AnalysisError(
            N_("Metric {name} cannot be watched daily; use one of: {known}"),
            field="metric",
            name=key,
            known=", ".join(usable),
        )


def judge_day(
    events: EventStore,
    tz: ZoneInfo,
    day: date,
    keys: list[str],
    *,
    method: Method = Method.weekday,
    threshold: float = 0.15,
    sensitivity: float = 3.0,
    direction: Direction = Direction.both,
    channel: str | None = None,
) -> list[Finding]:
    """The verdict on each metric's value on ``day`` against its history (one fused query)."""
    for key in keys:
        _check_metric(key)
    period = Period(day - timedelta(days=HISTORY_DAYS[method]), day, tz)
    series = metrics.daily_series(events, period, keys, channel=channel)
    findings = []
    for key in keys:
        values = [point.value for point in series[key]]
        metric = metrics.METRICS[key]
        verdict = judge(
            day, values[-1], values[:-1], method=method, threshold=threshold,
            sensitivity=sensitivity, direction=direction,
        )  # fmt: skip
        findings.append(
            Finding(
                metric=key,
                label=gettext(metric.label),
                higher_is_better=metric.higher_is_better,
                verdict=verdict,
            )
        )
    return findings


def scan(events: EventStore, tz: ZoneInfo, day: date | None = None) -> list[Finding]:
    """Every watched metric on ``day`` (default: the latest day with data), weekday baseline."""
    day = day or last_event_date(events, tz)
    if day is None:
        return []
    return judge_day(events, tz, day, list(WATCHED))


# -- rules ---------------------------------------------------------------------------------


def create_rule(db_session: Session, spec: RuleCreate) -> RuleRead:
    _check_metric(spec.metric)
    row = AlertRule(**spec.model_dump(mode="json"))
    db_session.add(row)
    db_session.flush()
    return RuleRead.model_validate(row)


def _rule(db_session: Session, rule_id: int) -> AlertRule:
    row = db_session.get(AlertRule, rule_id)
    if row is None:
        raise NotFoundError(N_("No alert rule {id}"), id=rule_id)
    return row


def get_rule(db_session: Session, rule_id: int) -> RuleRead:
    return RuleRead.model_validate(_rule(db_session, rule_id))


def update_rule(db_session: Session, rule_id: int, change: RuleUpdate) -> RuleRead:
    row = _rule(db_session, rule_id)
    for field, value in change.model_dump(mode="json", exclude_unset=True).items():
        if value is not None:
            setattr(row, field, value)
    row.updated_at = utcnow()
    db_session.flush()
    return RuleRead.model_validate(row)


def delete_rule(db_session: Session, rule_id: int) -> None:
    """Remove a rule; the alerts it raised stay (they are history)."""
    db_session.delete(_rule(db_session, rule_id))
    db_session.flush()


def list_rules(db_session: Session) -> list[RuleRead]:
    rows = db_session.scalars(select(AlertRule).order_by(AlertRule.id))
    return [RuleRead.model_validate(row) for row in rows]


# -- alerts --------------------------------------------------------------------------------


def _message(alert: Alert, label: str, verdict: Verdict) -> str:
    change = f"{alert.change:+.1%}" if alert.change is not None else "—"
    return gettext(
        "{metric} on {day}: {value:,.2f}, expected {expected:,.2f} ({change}); "
        "normal range {lower:,.2f} – {upper:,.2f}"
    ).format(
        metric=label,
        day=alert.day.isoformat(),
        value=alert.value,
        expected=alert.expected,
        change=change,
        lower=verdict.lower or 0.0,
        upper=verdict.upper or 0.0,
    )


def run_rules(
    db_session: Session, events: EventStore, settings: Settings, day: date | None = None
) -> RunSummary:
    """Judge ``day`` (default: yesterday, local) for every enabled rule; raise each alert once
    and deliver it; retry deliveries that failed before."""
    tz = settings.tz
    day = day or (utcnow().astimezone(tz).date() - timedelta(days=1))
    rules = list(db_session.scalars(select(AlertRule).where(AlertRule.enabled.is_(True))))
    raised: list[Alert] = []
    for rule in rules:
        finding = judge_day(
            events, tz, day, [rule.metric], method=Method(rule.method),
            threshold=rule.threshold, sensitivity=rule.sensitivity,
            direction=Direction(rule.direction), channel=rule.channel,
        )[0]  # fmt: skip
        verdict = finding.verdict
        if not verdict.anomalous or verdict.value is None or verdict.expected is None:
            continue
        known = db_session.scalar(select(Alert).where(Alert.rule_id == rule.id, Alert.day == day))
        if known is None:
            known = Alert(
                rule_id=rule.id, metric=rule.metric, day=day, value=verdict.value,
                expected=verdict.expected, change=verdict.change,
                direction=str(verdict.direction), deliveries=[],
            )  # fmt: skip
            known.message = _message(known, finding.label, verdict)
            db_session.add(known)
            db_session.flush()
        raised.append(known)
    delivered = failed = 0
    for alert in raised:
        ok, bad = _deliver(db_session, settings, alert)
        delivered, failed = delivered + ok, failed + bad
    return RunSummary(
        day=day,
        rules=len(rules),
        alerts=[AlertRead.model_validate(a) for a in raised],
        delivered=delivered,
        failed=failed,
    )


def _deliver(db_session: Session, settings: Settings, alert: Alert) -> tuple[int, int]:
    rule = db_session.get(AlertRule, alert.rule_id)
    if rule is None or alert.status != "open":
        return 0, 0
    done = {d["target"] for d in alert.deliveries if d.get("ok")}
    title = gettext("siyu alert: {name}").format(name=rule.name)
    payload = AlertRead.model_validate(alert).model_dump(mode="json") | {"rule": rule.name}
    records = list(alert.deliveries)
    ok = bad = 0
    for target in rule.targets:
        if target_id(target) in done:
            continue
        record = deliver(settings, target, payload, alert.message, title)
        records.append(record)
        ok, bad = (ok + 1, bad) if record["ok"] else (ok, bad + 1)
    alert.deliveries = records
    db_session.flush()
    return ok, bad


def list_alerts(
    db_session: Session,
    *,
    status: str | None = None,
    metric: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[AlertRead], int]:
    query = select(Alert)
    if status is not None:
        query = query.where(Alert.status == status)
    if metric is not None:
        query = query.where(Alert.metric == metric)
    total = db_session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db_session.scalars(
        query.order_by(Alert.day.desc(), Alert.id.desc()).offset(offset).limit(limit)
    )
    return [AlertRead.model_validate(row) for row in rows], int(total)


def acknowledge(db_session: Session, alert_id: int, by: str) -> AlertRead:
    alert = db_session.get(Alert, alert_id)
    if alert is None:
        raise NotFoundError(N_("No alert {id}"), id=alert_id)
    if alert.status != "acknowledged":
        alert.status = "acknowledged"
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by = by
        db_session.flush()
    return AlertRead.model_validate(alert)
