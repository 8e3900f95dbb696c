"""Statistics against hand-computed values and scipy/statsmodels-style references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from limelight.marketing import stats


def test_ztest_matches_hand_computation() -> None:
    r = stats.two_proportion_ztest(100, 1000, 130, 1000)
    pooled = 230 / 2000
    z = 0.03 / np.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert r.statistic == pytest.approx(z)
    assert r.p_value == pytest.approx(2 * sps.norm.sf(z))
    assert r.ci_low < 0.03 < r.ci_high
    assert bool(r.significant)


def test_ztest_vectorised_equals_scalar() -> None:
    xs = np.array([10, 50, 90])
    r = stats.two_proportion_ztest(xs, 1000, xs + 20, 1000)
    for i, x in enumerate(xs):
        one = stats.two_proportion_ztest(int(x), 1000, int(x) + 20, 1000)
        assert r.p_value[i] == pytest.approx(one.p_value)
        assert r.ci_low[i] == pytest.approx(one.ci_low)


def test_ztest_rejects_bad_counts() -> None:
    with pytest.raises(ValueError):
        stats.two_proportion_ztest(11, 10, 1, 10)
    with pytest.raises(ValueError):
        stats.two_proportion_ztest(1, 0, 1, 10)


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 40), rng.normal(0.5, 2, 55)
    ours = stats.welch_ttest_samples(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert ours.statistic == pytest.approx(ref.statistic)
    assert ours.p_value == pytest.approx(ref.pvalue)


def test_msprt_p_values_monotone_and_cs_contains_estimate() -> None:
    rng = np.random.default_rng(2)
    n = np.arange(1, 21) * 200
    xc = rng.binomial(200, 0.1, 20).cumsum()
    xt = rng.binomial(200, 0.1, 20).cumsum()
    r = stats.msprt(xc, n, xt, n, mixture_sd=0.02)
    assert np.all(np.diff(r.p_value) <= 0)
    assert np.all(r.ci_low <= r.ci_high)
    # A large effect is detected and the sequence then excludes zero.
    xt2 = rng.binomial(200, 0.2, 20).cumsum()
    r2 = stats.msprt(xc, n, xt2, n, mixture_sd=0.02)
    assert r2.rejected[-1] and r2.ci_low[-1] > 0


def test_sequential_type_one_error_under_peeking() -> None:
    rng = np.random.default_rng(3)
    sims, looks = 2000, 20
    n = np.arange(1, looks + 1) * 300
    xc = rng.binomial(300, 0.2, (sims, looks)).cumsum(1)
    xt = rng.binomial(300, 0.2, (sims, looks)).cumsum(1)
    seq = stats.msprt(xc, n, xt, n, mixture_sd=0.02)
    naive = stats.two_proportion_ztest(xc, n, xt, n).significant.any(axis=1)
    assert seq.rejected[:, -1].mean() <= 0.05
    assert naive.mean() > 0.12  # peeking inflates the naive test


def test_prob_beat_control() -> None:
    assert stats.prob_beat_control(100, 1000, 100, 1000) == pytest.approx(0.5, abs=0.02)
    assert stats.prob_beat_control(100, 1000, 160, 1000) > 0.99
    assert stats.prob_beat_control_normal(1.0, 1.0, 100, 1.0, 1.0, 100) == pytest.approx(0.5)


def test_srm() -> None:
    assert not stats.srm_test([5000, 5000])["mismatch"]
    assert stats.srm_test([5000, 5400])["mismatch"]
    assert not stats.srm_test([2000, 8000], [0.2, 0.8])["mismatch"]
    with pytest.raises(ValueError):
        stats.srm_test([1, 2], [1.0])


def test_sample_size_and_power_are_consistent() -> None:
    n = stats.sample_size_proportions(0.10, 0.01)
    assert n == 14751
    assert stats.power_proportions(0.10, 0.01, n) == pytest.approx(0.8, abs=0.005)
    assert stats.sample_size_proportions(0.10, 0.10, relative=True) == n
    assert stats.sample_size_means(10.0, 1.0) == 1570
    with pytest.raises(ValueError):
        stats.sample_size_proportions(0.95, 0.1)
