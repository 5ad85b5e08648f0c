"""Experiment statistics against scipy and statsmodels on the same numbers, and their edge
cases (no people, one person, no variance, everybody converted): labelled, never NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from siyu.analytics.experiments import stats

sm_proportion = pytest.importorskip("statsmodels.stats.proportion")
sm_power = pytest.importorskip("statsmodels.stats.power")
sm_multitest = pytest.importorskip("statsmodels.stats.multitest")


def moments(y: np.ndarray, x: np.ndarray) -> stats.Moments:
    return stats.Moments(
        len(y),
        float(y.mean()),
        float(y.var(ddof=1)),
        float(x.mean()),
        float(x.var(ddof=1)),
        float(np.cov(y, x, ddof=1)[0, 1]),
    )


@pytest.mark.parametrize(
    ("s_t", "n_t", "s_c", "n_c"), [(120, 1000, 100, 1000), (3, 40, 9, 55), (50, 51, 1, 70)]
)
def test_two_proportions_match_statsmodels(s_t: int, n_t: int, s_c: int, n_c: int) -> None:
    found = stats.two_proportions(s_t, n_t, s_c, n_c, alpha=0.05)
    z, p = sm_proportion.proportions_ztest([s_t, s_c], [n_t, n_c])
    assert found.statistic == pytest.approx(z, rel=1e-12)
    assert found.p_value == pytest.approx(p, rel=1e-9)
    low, high = sm_proportion.confint_proportions_2indep(
        s_t, n_t, s_c, n_c, method="wald", compare="diff", alpha=0.05
    )
    assert found.ci is not None
    assert (found.ci.low, found.ci.high) == pytest.approx((low, high), rel=1e-9)
    assert found.difference == pytest.approx(s_t / n_t - s_c / n_c)


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.gamma(2.0, 30.0, 80), rng.gamma(2.0, 25.0, 130)
    found = stats.welch(stats.Summary.of(list(a)), stats.Summary.of(list(b)), alpha=0.1)
    expected = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert found.statistic == pytest.approx(expected.statistic, rel=1e-10)
    assert found.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    interval = expected.confidence_interval(confidence_level=0.9)
    assert found.ci is not None
    assert (found.ci.low, found.ci.high) == pytest.approx((interval.low, interval.high))


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")
@hypothesis_settings(max_examples=60)
@given(
    st.lists(st.floats(0, 1000, allow_nan=False), min_size=2, max_size=30),
    st.lists(st.floats(0, 1000, allow_nan=False), min_size=2, max_size=30),
)
def test_welch_matches_scipy_or_says_why_not(a: list[float], b: list[float]) -> None:
    found = stats.welch(stats.Summary.of(a), stats.Summary.of(b))
    if found.note == stats.NO_VARIANCE:
        assert found.p_value is None and found.statistic is None
        return
    expected = scipy_stats.ttest_ind(a, b, equal_var=False)
    if not math.isfinite(expected.pvalue):  # scipy agrees there is (almost) nothing to test
        return
    assert found.p_value == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-12)


def test_relative_lift_by_the_delta_method() -> None:
    rng = np.random.default_rng(3)
    t, c = rng.normal(11, 4, 400), rng.normal(10, 5, 500)
    found = stats.relative_lift(stats.Summary.of(list(t)), stats.Summary.of(list(c)), alpha=0.05)
    # The delta method by numpy: gradient of m_t / m_c - 1 at the means, times the
    # covariance of the two (independent) means.
    m_t, m_c = t.mean(), c.mean()
    gradient = np.array([1 / m_c, -m_t / m_c**2])
    covariance = np.diag([t.var(ddof=1) / len(t), c.var(ddof=1) / len(c)])
    se = math.sqrt(gradient @ covariance @ gradient)
    z = scipy_stats.norm.ppf(0.975)
    assert found.lift == pytest.approx(m_t / m_c - 1)
    assert found.lift_ci is not None
    assert found.lift_ci.low == pytest.approx(m_t / m_c - 1 - z * se)
    assert found.lift_ci.high == pytest.approx(m_t / m_c - 1 + z * se)
    zero = stats.relative_lift(stats.Summary(10, 1.0, 1.0), stats.Summary(10, 0.0, 0.0))
    assert zero.lift is None and zero.note == stats.ZERO_BASELINE


def test_chi_square_matches_scipy_without_yates() -> None:
    successes, totals = [30, 45, 38], [300, 310, 290]
    found = stats.chi_square(successes, totals)
    table = [[s, n - s] for s, n in zip(successes, totals, strict=True)]
    statistic, p, dof, _expected = scipy_stats.chi2_contingency(table, correction=False)
    assert found is not None
    assert (found.statistic, found.p_value, found.dof) == pytest.approx((statistic, p, dof))
    two = stats.chi_square([30, 45], [300, 310])
    expected_two = scipy_stats.chi2_contingency([[30, 270], [45, 265]], correction=False)
    assert two is not None and two.p_value == pytest.approx(expected_two[1])
    assert stats.chi_square([300, 310], [300, 310]) is None  # everybody converted
    assert stats.chi_square([0, 3], [0, 10]) is None  # one group with people


def test_cuped_matches_numpy_and_reduces_variance() -> None:
    rng = np.random.default_rng(11)
    groups = []
    for shift, n in ((0.0, 400), (1.5, 380), (0.7, 420)):
        x = rng.gamma(2.0, 50.0, n)
        y = 0.8 * x + rng.normal(shift + 20, 15, n)
        groups.append((y, x))
    found = stats.cuped([moments(y, x) for y, x in groups])
    all_y = np.concatenate([y for y, _ in groups])
    all_x = np.concatenate([x for _, x in groups])
    theta = np.cov(all_y, all_x, ddof=1)[0, 1] / all_x.var(ddof=1)
    assert found is not None
    assert found.theta == pytest.approx(theta, rel=1e-9)
    adjusted_all = all_y - theta * (all_x - all_x.mean())
    assert found.variance_reduction == pytest.approx(
        1 - adjusted_all.var(ddof=1) / all_y.var(ddof=1), rel=1e-9
    )
    assert found.variance_reduction > 0.5
    for (y, x), summary in zip(groups, found.groups, strict=True):
        adjusted = y - theta * (x - all_x.mean())
        assert summary.mean == pytest.approx(adjusted.mean(), rel=1e-9)
        assert summary.var == pytest.approx(adjusted.var(ddof=1), rel=1e-9)
        assert summary.var < y.var(ddof=1)
    pooled = stats.pooled([moments(y, x) for y, x in groups])
    assert pooled.var_y == pytest.approx(all_y.var(ddof=1), rel=1e-9)
    assert pooled.cov_xy == pytest.approx(np.cov(all_y, all_x, ddof=1)[0, 1], rel=1e-9)
    constant = [stats.Moments(5, 1.0, 0.5, 2.0, 0.0, 0.0), stats.Moments(5, 2.0, 0.5, 2.0, 0.0, 0)]
    assert stats.cuped(constant) is None  # a covariate that does not vary adjusts nothing


def test_holm_matches_statsmodels_and_skips_missing() -> None:
    p = [0.01, 0.04, 0.03, 0.2, 0.0001]
    expected = sm_multitest.multipletests(p, method="holm")[1]
    assert stats.holm(p) == pytest.approx(list(expected))
    with_missing = stats.holm([0.01, None, 0.04])
    assert with_missing[1] is None
    assert [with_missing[0], with_missing[2]] == pytest.approx(
        list(sm_multitest.multipletests([0.01, 0.04], method="holm")[1])
    )
    assert stats.holm([]) == []


def test_sample_ratio_mismatch_matches_scipy_and_flags_below_0_001() -> None:
    found = stats.sample_ratio([5200, 4800], [50, 50])
    expected = scipy_stats.chisquare([5200, 4800], [5000, 5000])
    assert found is not None
    assert (found.statistic, found.p_value) == pytest.approx(tuple(expected))
    assert found.flagged
    fine = stats.sample_ratio([3050, 2950, 4000], [30, 30, 40])
    assert fine is not None and not fine.flagged
    assert stats.sample_ratio([0, 0], [50, 50]) is None


@pytest.mark.parametrize("ratio", [1.0, 2.0, 0.5])
def test_sample_size_matches_statsmodels(ratio: float) -> None:
    effect = sm_proportion.proportion_effectsize(0.12, 0.10)
    size = stats.sample_size_proportions(0.10, 0.12, alpha=0.05, power_wanted=0.8, ratio=ratio)
    nobs1 = sm_power.zt_ind_solve_power(effect, alpha=0.05, power=0.8, ratio=ratio)
    assert size.effect_size == pytest.approx(effect)
    assert size.control == math.ceil(nobs1)
    assert size.treatment == math.ceil(nobs1 * ratio)
    assert stats.solve_nobs1(effect, ratio=ratio) == pytest.approx(nobs1, rel=1e-6)
    means = stats.sample_size_means(5.0, 40.0, alpha=0.01, power_wanted=0.9, ratio=ratio)
    nobs_means = sm_power.NormalIndPower().solve_power(
        5.0 / 40.0, alpha=0.01, power=0.9, ratio=ratio
    )
    assert means.control == math.ceil(nobs_means)
    for n in (50, 500, 5000):
        assert stats.power(0.1, n, ratio=ratio) == pytest.approx(
            sm_power.NormalIndPower().power(0.1, n, alpha=0.05, ratio=ratio)
        )


def test_edge_cases_are_labelled_not_nan() -> None:
    empty = stats.two_proportions(0, 0, 5, 10)
    assert empty.note == stats.NO_DATA and empty.p_value is None
    everybody = stats.two_proportions(10, 10, 20, 20)
    assert everybody.note == stats.NO_VARIANCE and everybody.p_value is None
    assert everybody.difference == 0.0 and everybody.lift == 0.0
    nobody = stats.two_proportions(0, 10, 0, 20)
    assert nobody.note == stats.NO_VARIANCE and nobody.p_value is None and nobody.lift is None
    one = stats.welch(stats.Summary(1, 5.0, 0.0), stats.Summary(10, 4.0, 1.0))
    assert one.note == stats.TOO_FEW and one.difference == 1.0 and one.p_value is None
    flat = stats.welch(stats.Summary(10, 5.0, 0.0), stats.Summary(10, 5.0, 0.0))
    assert flat.note == stats.NO_VARIANCE and flat.statistic is None
    nobody_there = stats.welch(stats.Summary(0, 0.0, 0.0), stats.Summary(3, 1.0, 1.0))
    assert nobody_there.note == stats.NO_DATA
    for found in (empty, everybody, nobody, one, flat, nobody_there):
        for value in (found.statistic, found.p_value, found.difference, found.lift):
            assert value is None or math.isfinite(value)
