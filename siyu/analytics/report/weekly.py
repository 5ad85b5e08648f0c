"""The weekly report's data: one ISO week of the brand's local calendar against the week
before, read from the analysis services (metrics, anomalies, experiments, the standard
funnel, attribution, repurchase). Rendering and storage are elsewhere."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from siyu.analytics import funnels, metrics, repurchase
from siyu.analytics.alerts import service as alerts
from siyu.analytics.attribution import DIRECT, AttributionQuery, Model, attribute
from siyu.analytics.common import (
    AnalysisError,
    Grain,
    Period,
    change,
    known_event_names,
    last_event_date,
)
from siyu.analytics.experiments import analysis as experiment_analysis
from siyu.analytics.experiments import service as experiments
from siyu.analytics.experiments.models import Status
from siyu.analytics.metrics import MetricQuery, MetricResult, Unit
from siyu.analytics.report.models import (
    Anomaly,
    ChannelRevenue,
    Chart,
    ExperimentReadout,
    FunnelStepRow,
    FunnelSummary,
    Kpi,
    Mover,
    Series,
    WeeklyReport,
)
from siyu.analytics.report.suggestions import Fact, suggest
from siyu.core.clock import utcnow
from siyu.core.i18n import N_, current_locale, gettext
from siyu.events import EventStore
from siyu.segments import service as segments

WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
WEEK_PATTERN = r"^\d{4}-W\d{2}$"
KPIS = (
    "new_people", "active_people", "dau", "net_contacts", "messages_delivered", "open_rate",
    "click_rate", "visit_to_order", "coupons_claimed", "coupon_redemption", "retention_d1",
    "retention_d7", "repurchase_rate", "churn_rate", "gmv", "net_revenue", "orders", "buyers",
    "aov", "arpu", "private_gmv_share", "refund_amount", "unsubscribes", "unsubscribe_rate",
    "complaints", "complaint_rate",
)  # fmt: skip
TREND_WEEKS = 8
TREND_METRICS = ("gmv", "active_people", "new_people", "orders")
MOVER_METRICS = ("gmv", "active_people")
MOVER_DIMENSIONS = ("channel", "tier", "rfm_segment")
MOVERS_PER_METRIC = 2
MOVER_SEGMENTS = 3
FUNNEL_STEPS = ("product_view", "add_to_cart", "checkout", "order_paid")
CHART_CHANNELS = 8
WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def week_name(day: date) -> str:
    """The ISO week ``day`` falls in, as ``YYYY-Www``."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_period(week: str, tz: ZoneInfo) -> Period:
    """Monday to Sunday of an ISO week ``YYYY-Www`` in ``tz``."""
    match = WEEK.match(week)
    try:
        if match is None:
            raise ValueError(week)
        monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        raise AnalysisError(
            N_("{value!r} is not an ISO week: write it like 2026-W47"), field="week", value=week
        ) from None
    return Period(monday, monday + timedelta(days=6), tz)


def previous_week(day: date) -> str:
    """The ISO week before the one ``day`` falls in: the last complete week on ``day``."""
    return week_name(day - timedelta(days=day.weekday() + 1))


def default_week(events: EventStore, tz: ZoneInfo) -> str:
    """The last complete ISO week before the latest event's local day."""
    latest = last_event_date(events, tz)
    if latest is None:
        raise AnalysisError(N_("There are no events yet: nothing to report"), field="week")
    return previous_week(latest)


def build(
    events: EventStore, db_session: Session, *, tz: ZoneInfo, week: str | None = None
) -> WeeklyReport:
    """The report of ``week`` (default: :func:`default_week`) in the current language."""
    week = week or default_week(events, tz)
    period = week_period(week, tz)
    latest = last_event_date(events, tz)
    if latest is None or period.start > latest:
        raise AnalysisError(
            N_("Week {week} starts after the latest event ({latest}): no data to report"),
            field="week",
            week=week,
            latest=latest.isoformat() if latest else "-",
        )
    previous = period.previous()
    notes: list[str] = []
    result = metrics.compute(
        events,
        period,
        MetricQuery(metrics=list(KPIS), start=period.start, end=period.end, compare=True),
        last_day=latest,
    )
    cohorts = _cohort_retention(events, period, latest)
    kpis = [
        Kpi(
            key=m.key, label=m.label, unit=m.unit, higher_is_better=m.higher_is_better,
            value=m.value, previous=m.previous, change=m.change,
        )
        if m.key not in cohorts
        else Kpi(
            key=m.key, label=m.label, unit=m.unit, higher_is_better=m.higher_is_better,
            value=cohorts[m.key][0], previous=cohorts[m.key][1],
            change=change(cohorts[m.key][0], cohorts[m.key][1]),
        )
        for m in result.metrics
    ]  # fmt: skip
    funnel = _funnel(events, tz, period, notes)
    channels = _channels(events, tz, period, notes)
    returning = _returning_rates(events, tz, period)
    facts = _facts(kpis, funnel, channels, returning)
    return WeeklyReport(
        name=f"weekly-{week}",
        week=week,
        start=period.start,
        end=period.end,
        previous_start=previous.start,
        previous_end=previous.end,
        timezone=tz.key,
        lang=current_locale(),
        generated_at=utcnow(),
        data_until=latest,
        kpis=kpis,
        charts=_charts(events, period, latest, channels, funnel),
        movers=_movers(events, db_session, period, latest, notes),
        anomalies=_anomalies(events, tz, period, latest),
        experiments=_experiments(events, db_session, period),
        funnel=funnel,
        channels=channels,
        returning_rate=returning[0],
        previous_returning_rate=returning[1],
        suggestions=suggest(facts),
        notes=notes,
    )


COHORT_METRICS = {"retention_d1": 1, "retention_d7": 7}


def _cohort_retention(
    events: EventStore, period: Period, latest: date
) -> dict[str, tuple[float | None, float | None]]:
    """D1/D7 retention of the people new in the week (and in the week before): the metric
    over the week and the N days after it, whose observable cohort is the week's new people
    (those whose day N is in the data)."""

    def rate(p: Period, key: str, days: int) -> float | None:
        span = Period(p.start, p.end + timedelta(days=days), p.tz)
        query = MetricQuery(metrics=[key], compare=False)
        return metrics.compute(events, span, query, last_day=latest).metrics[0].value

    return {
        key: (rate(period, key, days), rate(period.previous(), key, days))
        for key, days in COHORT_METRICS.items()
    }


# -- figures the rules read --------------------------------------------------------------------


def _facts(
    kpis: Sequence[Kpi],
    funnel: FunnelSummary | None,
    channels: Sequence[ChannelRevenue],
    returning: tuple[float | None, float | None],
) -> dict[str, Fact]:
    facts = {k.key: Fact(k.value, k.previous, k.unit, k.label) for k in kpis}
    facts["returning_rate"] = Fact(*returning, Unit.rate, gettext("Returning buyer rate"))
    if funnel is not None:
        facts["funnel_conversion"] = Fact(
            funnel.conversion, funnel.previous_conversion, Unit.rate, gettext("Funnel conversion")
        )
        first = funnel.steps[0]
        facts["funnel_entered"] = Fact(
            first.count, first.previous_count, Unit.number, gettext("Funnel entrants")
        )
    named = [c for c in channels if c.channel != DIRECT]
    if named:
        top = max(named, key=lambda c: (c.previous_revenue, c.revenue))
        facts["top_channel_revenue"] = Fact(
            top.revenue,
            top.previous_revenue,
            Unit.money,
            gettext("Revenue credited to {channel}").format(channel=top.channel),
        )
    return facts


# -- parts -----------------------------------------------------------------------------------


def _charts(
    events: EventStore,
    period: Period,
    latest: date,
    channels: Sequence[ChannelRevenue],
    funnel: FunnelSummary | None,
) -> list[Chart]:
    span = Period(period.start - timedelta(weeks=TREND_WEEKS - 1), period.end, period.tz)
    trend = metrics.compute(
        events,
        span,
        MetricQuery(metrics=list(TREND_METRICS), grain=Grain.week, compare=False),
        last_day=latest,
    )
    weeks = [week_name(p.bucket)[5:] for p in trend.metrics[0].series]
    by_key = {m.key: m for m in trend.metrics}
    two_weeks = Period(period.previous().start, period.end, period.tz)
    daily = metrics.compute(
        events,
        two_weeks,
        MetricQuery(metrics=["gmv", "active_people"], grain=Grain.day, compare=False),
        last_day=latest,
    )
    days = [gettext(d) for d in WEEKDAYS]
    charts = [
        _trend_chart("gmv_weeks", gettext("GMV by week"), "bar", by_key["gmv"], weeks),
        _trend_chart(
            "active_weeks",
            gettext("Active and new people by week"),
            "line",
            by_key["active_people"],
            weeks,
            by_key["new_people"],
        ),
        _this_and_last("gmv_days", gettext("GMV by day"), daily, "gmv", days),
        _this_and_last(
            "active_days", gettext("Active people by day"), daily, "active_people", days
        ),
    ]
    if channels:
        top = channels[:CHART_CHANNELS]
        charts.append(
            Chart(
                key="channels",
                title=gettext("Revenue by channel (linear attribution)"),
                kind="bar",
                unit=Unit.money,
                categories=[c.channel for c in top],
                series=[
                    Series(name=gettext("This week"), values=[c.revenue for c in top]),
                    Series(name=gettext("Last week"), values=[c.previous_revenue for c in top]),
                ],
            )
        )
    if funnel is not None:
        charts.append(
            Chart(
                key="funnel",
                title=gettext("Funnel: product view to payment"),
                kind="bar",
                unit=Unit.number,
                categories=[s.label for s in funnel.steps],
                series=[
                    Series(name=gettext("This week"), values=[s.count for s in funnel.steps]),
                    Series(
                        name=gettext("Last week"), values=[s.previous_count for s in funnel.steps]
                    ),
                ],
            )
        )
    return charts


def _trend_chart(
    key: str,
    title: str,
    kind: str,
    first: metrics.MetricValue,
    categories: list[str],
    second: metrics.MetricValue | None = None,
) -> Chart:
    series = [Series(name=first.label, values=[p.value for p in first.series])]
    if second is not None:
        series.append(Series(name=second.label, values=[p.value for p in second.series]))
    return Chart(
        key=key,
        title=title,
        kind="bar" if kind == "bar" else "line",
        unit=first.unit,
        categories=categories,
        series=series,
    )


def _this_and_last(
    key: str, title: str, daily: MetricResult, metric: str, days: list[str]
) -> Chart:
    found = next(m for m in daily.metrics if m.key == metric)
    values = [p.value for p in found.series]
    return Chart(
        key=key,
        title=title,
        kind="line",
        unit=found.unit,
        categories=days,
        series=[
            Series(name=gettext("This week"), values=values[7:14]),
            Series(name=gettext("Last week"), values=values[0:7]),
        ],
    )


def _breakdown(
    events: EventStore, period: Period, latest: date, dimension: str
) -> dict[str, dict[str, float | None]]:
    query = MetricQuery(
        metrics=list(MOVER_METRICS), grain=Grain.week, dimension=dimension, compare=False
    )
    result = metrics.compute(events, period, query, last_day=latest)
    return {row.value: row.metrics for row in result.breakdown}


def _dimension_label(dimension: str, names: dict[str, str]) -> str:
    if dimension.startswith("segment:"):
        key = dimension.removeprefix("segment:")
        return gettext("Segment {name}").format(name=names.get(key, key))
    labels = {
        "channel": N_("Channel"),
        "tier": N_("Member tier"),
        "rfm_segment": N_("RFM segment"),
    }
    return gettext(labels[dimension])


def _movers(
    events: EventStore, db_session: Session, period: Period, latest: date, notes: list[str]
) -> list[Mover]:
    """Per breakdown, the values whose GMV and active people moved most (absolute)."""
    saved, _total = segments.list_segments(db_session, limit=MOVER_SEGMENTS)
    names = {s.key: s.name for s in saved}
    dimensions = [*MOVER_DIMENSIONS, *(f"segment:{s.key}" for s in saved)]
    labels = {m: metrics.METRICS[m] for m in MOVER_METRICS}
    found: list[Mover] = []
    for dimension in dimensions:
        try:
            now = _breakdown(events, period, latest, dimension)
            before = _breakdown(events, period.previous(), latest, dimension)
        except AnalysisError as exc:
            notes.append(exc.render())
            continue
        values = set(now) | set(before)
        if dimension.startswith("segment:"):
            values &= {"in"}
        for key, metric in labels.items():
            moved = []
            for value in values:
                current = now.get(value, {}).get(key)
                earlier = before.get(value, {}).get(key)
                delta = (current or 0.0) - (earlier or 0.0)
                if delta:
                    moved.append((value, current, earlier, delta))
            moved.sort(key=lambda m: (-abs(m[3]), m[0]))
            for value, current, earlier, delta in moved[:MOVERS_PER_METRIC]:
                found.append(
                    Mover(
                        dimension=dimension,
                        dimension_label=_dimension_label(dimension, names),
                        value=gettext("Members") if value == "in" else value,
                        metric=key,
                        metric_label=gettext(metric.label),
                        unit=metric.unit,
                        current=current,
                        previous=earlier,
                        delta=delta,
                        change=change(current, earlier),
                    )
                )
    return found


def _anomalies(events: EventStore, tz: ZoneInfo, period: Period, latest: date) -> list[Anomaly]:
    """Watched metrics that broke from their weekday baseline on a day of the week."""
    found = []
    day = period.start
    while day <= min(period.end, latest):
        for finding in alerts.judge_day(events, tz, day, list(alerts.WATCHED)):
            verdict = finding.verdict
            if not verdict.anomalous:
                continue
            found.append(
                Anomaly(
                    day=day,
                    metric=finding.metric,
                    label=finding.label,
                    unit=metrics.METRICS[finding.metric].unit,
                    higher_is_better=finding.higher_is_better,
                    value=verdict.value,
                    expected=verdict.expected,
                    change=verdict.change,
                    direction=None if verdict.direction is None else str(verdict.direction),
                )
            )
        day += timedelta(days=1)
    return found


def _experiments(
    events: EventStore, db_session: Session, period: Period
) -> list[ExperimentReadout]:
    """Running experiments, and those stopped since the week began."""
    page = experiments.list_experiments(db_session, limit=200)
    chosen = [
        e
        for e in page.items
        if e.status is Status.running
        or (e.status is Status.stopped and e.end_at is not None and e.end_at >= period.start_utc)
    ]
    found = []
    for experiment in chosen:
        readout = ExperimentReadout(
            key=experiment.key, name=experiment.name, status=experiment.status, exposed=0
        )
        try:
            results = experiment_analysis.results(events, experiment)
        except AnalysisError as exc:
            readout.note = exc.render()
            found.append(readout)
            continue
        readout.exposed = results.exposed
        readout.srm_flagged = bool(results.srm and results.srm.flagged)
        readout.note = results.note
        primary = results.metrics[0] if results.metrics else None
        if primary is not None and primary.comparisons:
            best = primary.comparisons[0]
            readout.metric = primary.name
            readout.variant, readout.control = best.variant, best.control
            readout.lift = best.lift
            readout.p_value = best.p_adjusted if best.p_adjusted is not None else best.p_value
            readout.significant = best.significant
        found.append(readout)
    return found


def _funnel(
    events: EventStore, tz: ZoneInfo, period: Period, notes: list[str]
) -> FunnelSummary | None:
    missing = set(FUNNEL_STEPS) - known_event_names(events)
    if missing:
        notes.append(
            gettext("No funnel: no {events} events yet").format(events=", ".join(sorted(missing)))
        )
        return None

    def run(p: Period) -> funnels.FunnelResult:
        definition = funnels.FunnelDefinition(
            steps=[funnels.FunnelStep(event=e) for e in FUNNEL_STEPS],
            window="7d",
            start=p.start,
            end=p.end,
        )
        return funnels.compute(events, definition, tz=tz)

    now, before = run(period), run(period.previous())
    return FunnelSummary(
        steps=[
            FunnelStepRow(
                event=a.event,
                label=a.label,
                count=a.count,
                previous_count=b.count,
                conversion_from_previous=a.conversion_from_previous,
                previous_conversion_from_previous=b.conversion_from_previous,
            )
            for a, b in zip(now.steps, before.steps, strict=True)
        ],
        conversion=now.conversion,
        previous_conversion=before.conversion,
    )


def _channels(
    events: EventStore, tz: ZoneInfo, period: Period, notes: list[str]
) -> list[ChannelRevenue]:
    if "order_paid" not in known_event_names(events):
        notes.append(gettext("No attribution: no order_paid events yet"))
        return []

    def revenue(p: Period) -> dict[str, tuple[float, float]]:
        query = AttributionQuery(start=p.start, end=p.end, models=[Model.linear])
        result = attribute(events, query, tz=tz)
        return {
            row.channel: (row.credits[Model.linear].revenue, row.credits[Model.linear].conversions)
            for row in result.channels
        }

    now, before = revenue(period), revenue(period.previous())
    rows = [
        ChannelRevenue(
            channel=channel,
            revenue=now.get(channel, (0.0, 0.0))[0],
            previous_revenue=before.get(channel, (0.0, 0.0))[0],
            conversions=now.get(channel, (0.0, 0.0))[1],
            change=change(now.get(channel, (0.0, 0.0))[0], before.get(channel, (0.0, 0.0))[0]),
        )
        for channel in set(now) | set(before)
    ]
    rows.sort(key=lambda r: (r.channel == DIRECT, -r.revenue, r.channel))
    return rows


def _returning_rates(
    events: EventStore, tz: ZoneInfo, period: Period
) -> tuple[float | None, float | None]:
    """Share of the week's buyers who had bought before it, this week and the week before."""

    def rate(p: Period) -> float | None:
        query = repurchase.RepurchaseQuery(start=p.start, end=p.end)
        return repurchase.repurchase(events, query, tz=tz).returning_rate

    return rate(period), rate(period.previous())
