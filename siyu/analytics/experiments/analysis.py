"""An experiment's results: metric values per exposed person, computed in the engine over the
person-resolved events joined to first exposures, aggregated per variant in the same query,
then tested with :mod:`siyu.analytics.experiments.stats`.

Counting, for a person first exposed at ``t`` (to the variant recorded then):

- conversion: 1 if they did the metric's event at ``t <= ts < t + window_days``, else 0;
- count: how many times they did it in that window;
- revenue: the ``amount`` of the event (``order_paid`` by default) in the window, less the
  ``amount`` of ``refund`` events in the window when ``net_of_refunds``;
- covariate (CUPED): the same value over ``t - covariate_days <= ts < t``.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from siyu.analytics.common import AnalysisError, cached, resolved_events
from siyu.analytics.experiments import stats
from siyu.analytics.experiments.models import (
    REFUND_EVENT,
    ComparisonRead,
    CupedRead,
    ExperimentRead,
    ExperimentResults,
    IntervalRead,
    MetricResult,
    MetricSpec,
    OmnibusRead,
    PowerRequest,
    PowerResult,
    SrmRead,
    VariantMetric,
    VariantRead,
)
from siyu.analytics.experiments.service import exposures
from siyu.core.i18n import N_
from siyu.events import EventStore

NO_EXPOSURES = "no_exposures"


def _events_needed(metrics: list[MetricSpec]) -> list[str]:
    names = {m.event_name for m in metrics}
    if any(m.kind == "revenue" and m.net_of_refunds for m in metrics):
        names.add(REFUND_EVENT)
    return sorted(names)


def _value(joined: ir.Table, metric: MetricSpec, within: ir.BooleanValue) -> ir.NumericValue:
    """The metric's raw aggregate over the joined events inside ``within``: events done, or
    the amount (net of refunds) for revenue."""
    is_event = within & (joined.event_name == metric.event_name)
    if metric.kind != "revenue":
        count: ir.NumericValue = ibis.ifelse(is_event, 1, 0).sum()
        return count
    paid: ir.NumericValue = ibis.ifelse(is_event, joined.amount, 0.0).sum()
    if metric.net_of_refunds:
        refunded = within & (joined.event_name == REFUND_EVENT)
        paid = paid - ibis.ifelse(refunded, joined.amount, 0.0).sum()
    return paid


def person_values(events: EventStore, experiment: ExperimentRead) -> ir.Table:
    """One row per exposed person: ``person_id``, ``variant``, ``exposed_at`` and, for metric
    number ``i``, ``y{i}`` (its value) and ``x{i}`` (its covariate, when it has one)."""
    metrics = experiment.metrics
    first = exposures(events, experiment.key)
    first = first.filter(first.variant.isin([v.key for v in experiment.variants]))
    happened = resolved_events(events, timedelta(0), names=_events_needed(metrics))
    happened = happened.select(
        event_person=happened.person_id,
        event_name=happened.name,
        event_ts=happened.ts,
        amount=happened.amount.cast("float64").fill_null(0.0),
    )
    forward = ibis.interval(days=max(m.window_days for m in metrics))
    back = ibis.interval(days=max(m.covariate_days or 0 for m in metrics))
    joined = first.join(
        happened,
        [
            first.person_id == happened.event_person,
            happened.event_ts >= first.exposed_at - back,
            happened.event_ts < first.exposed_at + forward,
        ],
    )
    aggregates: dict[str, ir.NumericValue] = {}
    for i, metric in enumerate(metrics):
        window_end = joined.exposed_at + ibis.interval(days=metric.window_days)
        window = (joined.event_ts >= joined.exposed_at) & (joined.event_ts < window_end)
        aggregates[f"y{i}"] = _value(joined, metric, window)
        if metric.covariate_days:
            pre_start = joined.exposed_at - ibis.interval(days=metric.covariate_days)
            pre = (joined.event_ts >= pre_start) & (joined.event_ts < joined.exposed_at)
            aggregates[f"x{i}"] = _value(joined, metric, pre)
    per_person = joined.group_by(outcome_person=joined.person_id).aggregate(**aggregates)
    table = first.left_join(per_person, first.person_id == per_person.outcome_person)
    columns: dict[str, Any] = {}
    for name in aggregates:
        raw = table[name].cast("float64").fill_null(0.0)
        is_conversion = metrics[int(name[1:])].kind == "conversion"
        columns[name] = ibis.ifelse(raw > 0, 1.0, 0.0) if is_conversion else raw
    return table.select("person_id", "variant", "exposed_at", **columns)


def variant_moments(events: EventStore, experiment: ExperimentRead) -> dict[str, dict[str, Any]]:
    """Per variant, in one engine query: people, and for each metric the sum, mean and sample
    variance of its value, and of its covariate with their covariance."""
    values = person_values(events, experiment)
    aggregates: dict[str, Any] = {"n": values.count()}
    for i, metric in enumerate(experiment.metrics):
        y = values[f"y{i}"]
        aggregates |= {f"y{i}_sum": y.sum(), f"y{i}_mean": y.mean(), f"y{i}_var": y.var()}
        if metric.covariate_days:
            x = values[f"x{i}"]
            aggregates |= {
                f"x{i}_mean": x.mean(),
                f"x{i}_var": x.var(),
                f"xy{i}_cov": y.cov(x, how="sample"),
            }
    rows = values.group_by("variant").aggregate(**aggregates).to_pyarrow().to_pylist()
    return {row["variant"]: row for row in rows}


def results(
    events: EventStore, experiment: ExperimentRead, *, alpha: float = 0.05
) -> ExperimentResults:
    """Every metric of the experiment, each treatment against the control; cached until the
    events change."""
    definition = {"experiment": experiment.model_dump(mode="json"), "alpha": alpha}
    return cached(
        events, "experiment", definition, lambda: _results(events, experiment, alpha=alpha)
    )


def _results(events: EventStore, experiment: ExperimentRead, *, alpha: float) -> ExperimentResults:
    rows = variant_moments(events, experiment)
    people = [int(rows.get(v.key, {}).get("n") or 0) for v in experiment.variants]
    srm = stats.sample_ratio(people, [v.weight for v in experiment.variants])
    metrics = [
        _metric(i, metric, experiment, rows, alpha=alpha)
        for i, metric in enumerate(experiment.metrics)
    ]
    comparisons = [c for m in metrics for c in m.comparisons]
    adjusted = stats.holm([c.p_value for c in comparisons])
    for comparison, p in zip(comparisons, adjusted, strict=True):
        comparison.p_adjusted = p
        comparison.significant = None if p is None else p < alpha
    keys = [v.key for v in experiment.variants]
    return ExperimentResults(
        key=experiment.key,
        status=experiment.status,
        alpha=alpha,
        exposed=sum(people),
        variants=[
            VariantRead(key=v.key, name=v.name, control=v.control, weight=v.weight, people=n)
            for v, n in zip(experiment.variants, people, strict=True)
        ],
        srm=None
        if srm is None
        else SrmRead(
            observed=dict(zip(keys, srm.observed, strict=True)),
            expected=dict(zip(keys, srm.expected, strict=True)),
            statistic=srm.statistic,
            p_value=srm.p_value,
            flagged=srm.flagged,
        ),
        metrics=metrics,
        note=NO_EXPOSURES if sum(people) == 0 else None,
    )


def _number(value: Any) -> float:
    """An engine aggregate as a float: NULL (no rows, or one row for a variance) is 0."""
    if value is None:
        return 0.0
    number = float(value)
    return number if math.isfinite(number) else 0.0


def _metric(
    index: int,
    metric: MetricSpec,
    experiment: ExperimentRead,
    rows: dict[str, dict[str, Any]],
    *,
    alpha: float,
) -> MetricResult:
    variants = experiment.variants
    row = [rows.get(v.key, {}) for v in variants]
    n = [int(r.get("n") or 0) for r in row]
    totals = [_number(r.get(f"y{index}_sum")) for r in row]
    summaries = [
        stats.Summary(count, _number(r.get(f"y{index}_mean")), _number(r.get(f"y{index}_var")))
        for count, r in zip(n, row, strict=True)
    ]
    adjusted: stats.Cuped | None = None
    if metric.covariate_days:
        adjusted = stats.cuped(
            [
                stats.Moments(
                    count,
                    s.mean,
                    s.var,
                    _number(r.get(f"x{index}_mean")),
                    _number(r.get(f"x{index}_var")),
                    _number(r.get(f"xy{index}_cov")),
                )
                for count, s, r in zip(n, summaries, row, strict=True)
            ]
        )
    control = next(i for i, v in enumerate(variants) if v.control)
    conversion = metric.kind == "conversion"
    comparisons = []
    for i, variant in enumerate(variants):
        if i == control:
            continue
        if adjusted is not None:
            found = stats.welch(adjusted.groups[i], adjusted.groups[control], alpha=alpha)
            found = dataclasses.replace(found, test="welch_t_cuped")
        elif conversion:
            found = stats.two_proportions(
                round(totals[i]), n[i], round(totals[control]), n[control], alpha=alpha
            )
        else:
            found = stats.welch(summaries[i], summaries[control], alpha=alpha)
        comparisons.append(_comparison(variant.key, variants[control].key, found))
    omnibus = stats.chi_square([round(t) for t in totals], n) if conversion else None
    return MetricResult(
        key=metric.key,
        name=metric.name,
        kind=metric.kind,
        role="primary" if index == 0 else "secondary",
        event=metric.event_name,
        window_days=metric.window_days,
        variants=[
            VariantMetric(
                variant=v.key,
                people=s.n,
                total=t,
                mean=s.mean if s.n else None,
                adjusted_mean=adjusted.groups[i].mean if adjusted is not None and s.n else None,
            )
            for i, (v, s, t) in enumerate(zip(variants, summaries, totals, strict=True))
        ],
        comparisons=comparisons,
        omnibus=None
        if omnibus is None or len(variants) < 3
        else OmnibusRead(statistic=omnibus.statistic, p_value=omnibus.p_value, dof=omnibus.dof),
        cuped=None
        if adjusted is None or metric.covariate_days is None
        else CupedRead(
            covariate_days=metric.covariate_days,
            theta=adjusted.theta,
            variance_reduction=adjusted.variance_reduction,
        ),
        note=None if sum(n) else NO_EXPOSURES,
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _interval(interval: stats.Interval | None) -> IntervalRead | None:
    if interval is None or not (math.isfinite(interval.low) and math.isfinite(interval.high)):
        return None
    return IntervalRead(low=interval.low, high=interval.high)


def _comparison(variant: str, control: str, found: stats.Comparison) -> ComparisonRead:
    return ComparisonRead(
        variant=variant,
        control=control,
        test=found.test,
        difference=_finite(found.difference),
        ci=_interval(found.ci),
        lift=_finite(found.lift),
        lift_ci=_interval(found.lift_ci),
        statistic=_finite(found.statistic),
        p_value=_finite(found.p_value),
        p_adjusted=None,
        significant=None,
        note=found.note,
    )


# -- planning -------------------------------------------------------------------------------------

MIN_EFFECT_SIZE = 1e-6  # smaller effects need more than ~10^13 people: not a plan


def plan(request: PowerRequest) -> PowerResult:
    """People needed per group (and days, given the daily traffic) to detect the change."""
    if request.power <= request.alpha:
        raise AnalysisError(
            N_("The power ({power}) must be larger than alpha ({alpha})"),
            field="power",
            power=request.power,
            alpha=request.alpha,
        )
    if request.relative and request.baseline == 0:
        raise AnalysisError(N_("A relative change needs a baseline above 0"), field="baseline")
    change = request.mde * request.baseline if request.relative else request.mde
    treatment_value = request.baseline + change
    if request.kind == "proportion":
        if not (0 < request.baseline < 1 and 0 < treatment_value < 1):
            raise AnalysisError(
                N_("Rates must lie between 0 and 1 (baseline {baseline}, with the change {rate})"),
                field="mde",
                baseline=request.baseline,
                rate=treatment_value,
            )
        effect = stats.proportion_effect_size(treatment_value, request.baseline)
    else:
        if request.sd is None:
            raise AnalysisError(N_("A change of a mean needs the per-person sd"), field="sd")
        effect = change / request.sd
    if not math.isfinite(effect) or not math.isfinite(treatment_value):
        raise AnalysisError(
            N_("These numbers are out of range for a sample-size calculation"), field="sd"
        )
    if abs(effect) < MIN_EFFECT_SIZE:
        raise AnalysisError(
            N_("The change is too small to detect (effect size {effect:.2e})"),
            field="mde",
            effect=abs(effect),
        )
    size = stats.sample_size(effect, request.alpha, request.power, request.ratio)
    total = size.control + size.treatment * (request.variants - 1)
    return PowerResult(
        kind=request.kind,
        control_value=request.baseline,
        treatment_value=treatment_value,
        effect_size=effect,
        control=size.control,
        per_treatment=size.treatment,
        total=total,
        days=math.ceil(total / request.daily_people) if request.daily_people else None,
    )
