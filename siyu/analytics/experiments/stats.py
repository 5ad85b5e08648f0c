"""The statistics of an experiment, as pure functions over per-group summaries.

Every function takes what the engine aggregates (people, sums, means, sample variances and
covariances per variant), never per-person rows, so a million exposed people cost one query
and a few floating-point operations here. Where a statistic is undefined (no people, one
person, no variance, a zero baseline) it is ``None`` and ``note`` says why: never NaN or
infinity.

The formulas (checked in ``tests/analytics/test_experiment_stats.py`` against statsmodels and
scipy on the same numbers):

- two proportions: pooled z-test (``statsmodels.stats.proportion.proportions_ztest``); the
  confidence interval of the difference is the unpooled Wald interval;
- means: Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``) and its interval with
  the Welch–Satterthwaite degrees of freedom;
- relative lift ``mean_t / mean_c - 1``: delta method,
  ``se² = var_t / (n_t·m_c²) + m_t²·var_c / (n_c·m_c⁴)``, normal interval;
- more than two variants, conversion: chi-square test of independence on the
  variants × (converted, not converted) table, no Yates correction;
- CUPED: ``theta = cov(Y, X) / var(X)`` over everybody exposed (pooled), each variant's mean
  adjusted to ``mean_y - theta·(mean_x - overall mean_x)``;
- Holm's step-down correction over a family of p-values;
- sample-ratio mismatch: chi-square goodness of fit against the designed weights;
- sample size: the normal approximation ``statsmodels`` ``NormalIndPower`` solves, effect
  size Cohen's h for proportions and Cohen's d for means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import optimize
from scipy import stats as distributions

SRM_THRESHOLD = 0.001

# Why a statistic is missing (a stable code; the API and the CLI show it as is).
NO_DATA = "no_data"  # a group nobody was exposed in
TOO_FEW = "too_few"  # fewer than two people in a group: no variance to estimate
NO_VARIANCE = "no_variance"  # every value the same (everybody converted, or nobody)
ZERO_BASELINE = "zero_baseline"  # the control's mean is 0: a relative lift is undefined


@dataclass(frozen=True)
class Summary:
    """One group's metric: people, mean and sample variance (ddof 1; 0 for fewer than 2)."""

    n: int
    mean: float
    var: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        n = len(values)
        if n == 0:
            return cls(0, 0.0, 0.0)
        mean = math.fsum(values) / n
        var = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
        return cls(n, mean, var)


@dataclass(frozen=True)
class Moments:
    """One group's metric ``y`` with its pre-period covariate ``x`` (sample moments, ddof 1)."""

    n: int
    mean_y: float
    var_y: float
    mean_x: float
    var_x: float
    cov_xy: float


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    """A treatment against the control on one metric."""

    test: str
    difference: float | None = None
    ci: Interval | None = None
    lift: float | None = None
    lift_ci: Interval | None = None
    statistic: float | None = None
    p_value: float | None = None
    note: str | None = None


@dataclass(frozen=True)
class ChiSquare:
    statistic: float
    p_value: float
    dof: int


@dataclass(frozen=True)
class Srm:
    """Sample-ratio mismatch: exposures per variant against the designed split."""

    observed: list[int]
    expected: list[float]
    statistic: float
    p_value: float
    flagged: bool


@dataclass(frozen=True)
class Cuped:
    theta: float
    groups: list[Summary]  # the adjusted metric per group, in the order given
    variance_reduction: float  # 1 - var(adjusted) / var(raw), over everybody


@dataclass(frozen=True)
class SampleSize:
    effect_size: float
    control: int
    treatment: int  # per treatment variant


def _z(alpha: float) -> float:
    return float(distributions.norm.isf(alpha / 2))


def relative_lift(treatment: Summary, control: Summary, *, alpha: float = 0.05) -> Comparison:
    """``mean_t / mean_c - 1`` with its delta-method normal interval (``test`` is empty)."""
    if treatment.n == 0 or control.n == 0:
        return Comparison(test="", note=NO_DATA)
    ratio = treatment.mean / control.mean if control.mean**2 > 0 else math.inf
    if not math.isfinite(ratio):
        return Comparison(test="", note=ZERO_BASELINE)
    lift = ratio - 1
    variance = (treatment.var / treatment.n + ratio**2 * control.var / control.n) / control.mean**2
    if not math.isfinite(variance):
        return Comparison(test="", lift=lift)
    se = math.sqrt(max(variance, 0.0))
    margin = _z(alpha) * se
    return Comparison(test="", lift=lift, lift_ci=Interval(lift - margin, lift + margin))


def two_proportions(
    successes_t: int, n_t: int, successes_c: int, n_c: int, *, alpha: float = 0.05
) -> Comparison:
    """Pooled two-proportion z-test of treatment against control, unpooled Wald interval."""
    test = "z_test"
    if n_t == 0 or n_c == 0:
        return Comparison(test=test, note=NO_DATA)
    p_t, p_c = successes_t / n_t, successes_c / n_c
    difference = p_t - p_c
    lift = relative_lift(
        Summary(n_t, p_t, p_t * (1 - p_t)), Summary(n_c, p_c, p_c * (1 - p_c)), alpha=alpha
    )
    pooled = (successes_t + successes_c) / (n_t + n_c)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    if se_pooled == 0:
        return Comparison(test=test, difference=difference, lift=lift.lift, note=NO_VARIANCE)
    statistic = difference / se_pooled
    margin = _z(alpha) * se
    return Comparison(
        test=test,
        difference=difference,
        ci=Interval(difference - margin, difference + margin),
        lift=lift.lift,
        lift_ci=lift.lift_ci if se > 0 else None,
        statistic=statistic,
        p_value=float(2 * distributions.norm.sf(abs(statistic))),
        note=lift.note,
    )


def welch(treatment: Summary, control: Summary, *, alpha: float = 0.05) -> Comparison:
    """Welch's unequal-variance t-test of treatment against control, with its interval."""
    test = "welch_t"
    if treatment.n == 0 or control.n == 0:
        return Comparison(test=test, note=NO_DATA)
    difference = treatment.mean - control.mean
    if treatment.n < 2 or control.n < 2:
        return Comparison(test=test, difference=difference, note=TOO_FEW)
    lift = relative_lift(treatment, control, alpha=alpha)
    a, b = treatment.var / treatment.n, control.var / control.n
    se = math.sqrt(max(a + b, 0.0))
    spread = a**2 / (treatment.n - 1) + b**2 / (control.n - 1)
    if se == 0 or spread == 0:  # variances so small their squares underflow: no dof either
        return Comparison(test=test, difference=difference, lift=lift.lift, note=NO_VARIANCE)
    dof = (a + b) ** 2 / spread
    statistic = difference / se
    margin = float(distributions.t.isf(alpha / 2, dof)) * se
    return Comparison(
        test=test,
        difference=difference,
        ci=Interval(difference - margin, difference + margin),
        lift=lift.lift,
        lift_ci=lift.lift_ci,
        statistic=statistic,
        p_value=float(2 * distributions.t.sf(abs(statistic), dof)),
        note=lift.note,
    )


def chi_square(successes: Sequence[int], totals: Sequence[int]) -> ChiSquare | None:
    """Chi-square test of independence of variant and conversion (no Yates correction);
    None when fewer than two groups have people or nobody (or everybody) converted."""
    groups = [(s, n) for s, n in zip(successes, totals, strict=True) if n > 0]
    if len(groups) < 2:
        return None
    people = sum(n for _, n in groups)
    converted = sum(s for s, _ in groups)
    if converted in (0, people):
        return None
    statistic = 0.0
    for s, n in groups:
        for observed, column in ((s, converted), (n - s, people - converted)):
            expected = n * column / people
            statistic += (observed - expected) ** 2 / expected
    dof = len(groups) - 1
    return ChiSquare(statistic, float(distributions.chi2.sf(statistic, dof)), dof)


def pooled(groups: Sequence[Moments]) -> Moments:
    """The moments of all groups together, combined exactly from each group's moments."""
    n = sum(g.n for g in groups)
    if n == 0:
        return Moments(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    mean_y = math.fsum(g.n * g.mean_y for g in groups) / n
    mean_x = math.fsum(g.n * g.mean_x for g in groups) / n
    if n < 2:
        return Moments(n, mean_y, 0.0, mean_x, 0.0, 0.0)

    def combined(within: Sequence[float], between: Sequence[float]) -> float:
        return math.fsum(
            (g.n - 1) * w + g.n * b for g, w, b in zip(groups, within, between, strict=True)
        ) / (n - 1)

    dy = [g.mean_y - mean_y for g in groups]
    dx = [g.mean_x - mean_x for g in groups]
    return Moments(
        n,
        mean_y,
        combined([g.var_y for g in groups], [d * d for d in dy]),
        mean_x,
        combined([g.var_x for g in groups], [d * d for d in dx]),
        combined([g.cov_xy for g in groups], [a * b for a, b in zip(dy, dx, strict=True)]),
    )


def cuped(groups: Sequence[Moments]) -> Cuped | None:
    """Each group's metric adjusted by the pre-period covariate with the pooled theta; None
    when the covariate does not vary (there is nothing to adjust by)."""
    total = pooled(groups)
    if total.n < 2 or total.var_x <= 0:
        return None
    theta = total.cov_xy / total.var_x
    adjusted = [
        Summary(
            g.n,
            g.mean_y - theta * (g.mean_x - total.mean_x),
            max(g.var_y - 2 * theta * g.cov_xy + theta**2 * g.var_x, 0.0) if g.n > 1 else 0.0,
        )
        for g in groups
    ]
    residual = max(total.var_y - 2 * theta * total.cov_xy + theta**2 * total.var_x, 0.0)
    reduction = 1 - residual / total.var_y if total.var_y > 0 else 0.0
    return Cuped(theta, adjusted, reduction)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (missing ones stay missing and do not count)."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


def sample_ratio(observed: Sequence[int], weights: Sequence[float]) -> Srm | None:
    """Chi-square goodness of fit of exposures per variant to the designed weights; flagged
    when p < 0.001. None before anybody is exposed."""
    total = sum(observed)
    if total == 0:
        return None
    weight_sum = math.fsum(weights)
    expected = [total * w / weight_sum for w in weights]
    statistic = math.fsum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    p_value = float(distributions.chi2.sf(statistic, len(observed) - 1))
    return Srm(list(observed), expected, statistic, p_value, p_value < SRM_THRESHOLD)


MIN_GROUP = 2


def power(effect_size: float, nobs1: float, *, alpha: float = 0.05, ratio: float = 1.0) -> float:
    """Power of a two-sided two-sample z-test (both tails counted, as statsmodels does)."""
    nobs = 1 / (1 / nobs1 + 1 / (nobs1 * ratio))
    crit = _z(alpha)
    shift = abs(effect_size) * math.sqrt(nobs)
    return float(distributions.norm.sf(crit - shift) + distributions.norm.cdf(-crit - shift))


def solve_nobs1(
    effect_size: float, *, alpha: float = 0.05, power_wanted: float = 0.8, ratio: float = 1.0
) -> float:
    """The first group's size (the control's) that reaches ``power_wanted``; the other group
    has ``ratio`` times as many (``statsmodels`` ``zt_ind_solve_power``)."""
    effect = abs(effect_size)
    one_tail = ((_z(alpha) + float(distributions.norm.ppf(power_wanted))) / effect) ** 2
    upper = one_tail * (1 + 1 / ratio)  # ignoring the far tail: slightly more than needed
    if upper <= MIN_GROUP:  # an effect this large: the smallest group a test can use
        return float(MIN_GROUP)
    return float(
        optimize.brentq(
            lambda n: power(effect, n, alpha=alpha, ratio=ratio) - power_wanted,
            upper * 1e-6,
            upper * 1.0001,
            xtol=1e-10,
            rtol=1e-12,
        )
    )


def sample_size(effect: float, alpha: float, power_wanted: float, ratio: float) -> SampleSize:
    """Whole people per group for effect size ``effect`` (Cohen's h or d)."""
    nobs1 = solve_nobs1(effect, alpha=alpha, power_wanted=power_wanted, ratio=ratio)
    return SampleSize(effect, math.ceil(nobs1 - 1e-9), math.ceil(nobs1 * ratio - 1e-9))


def proportion_effect_size(p_treatment: float, p_control: float) -> float:
    """Cohen's h (``statsmodels`` ``proportion_effectsize(p_treatment, p_control)``)."""
    return 2 * math.asin(math.sqrt(p_treatment)) - 2 * math.asin(math.sqrt(p_control))


def sample_size_proportions(
    p_control: float,
    p_treatment: float,
    *,
    alpha: float = 0.05,
    power_wanted: float = 0.8,
    ratio: float = 1.0,
) -> SampleSize:
    """People per group to tell ``p_treatment`` from ``p_control`` (both in (0, 1))."""
    effect = proportion_effect_size(p_treatment, p_control)
    return sample_size(effect, alpha, power_wanted, ratio)


def sample_size_means(
    difference: float,
    sd: float,
    *,
    alpha: float = 0.05,
    power_wanted: float = 0.8,
    ratio: float = 1.0,
) -> SampleSize:
    """People per group to detect a difference of means ``difference`` (sd ``sd``)."""
    return sample_size(difference / sd, alpha, power_wanted, ratio)


__all__ = [
    "NO_DATA",
    "NO_VARIANCE",
    "SRM_THRESHOLD",
    "TOO_FEW",
    "ZERO_BASELINE",
    "ChiSquare",
    "Comparison",
    "Cuped",
    "Interval",
    "Moments",
    "SampleSize",
    "Srm",
    "Summary",
    "chi_square",
    "cuped",
    "holm",
    "pooled",
    "power",
    "proportion_effect_size",
    "relative_lift",
    "sample_ratio",
    "sample_size",
    "sample_size_means",
    "sample_size_proportions",
    "solve_nobs1",
    "two_proportions",
    "welch",
]
