"""Statistics for experiments: fixed-horizon tests, sequential tests, Bayes, SRM and power.

Every function takes scalars or numpy arrays of the same shape and answers element-wise, so one
call analyses a single experiment and the benchmark's 10,000 simulated ones alike.

- :func:`two_proportion_ztest` -- conversion-style metrics (CTR, conversion); pooled z statistic
  and a Newcombe hybrid-score interval for the difference (better coverage than Wald at small
  rates), or Wald on request.
- :func:`welch_ttest` -- continuous metrics (revenue per user) from summary statistics.
- :func:`msprt` / :func:`confidence_sequence` -- the mixture sequential probability ratio test
  with a normal mixture (Johari, Pekelis, Walsh 2017) and its always-valid confidence sequence;
  both stay valid however often one peeks, unlike repeating the z-test.
- :func:`prob_beat_control` -- Bayesian probability that a variant's rate beats control.
- :func:`srm_test` -- sample-ratio mismatch: chi-square goodness of fit of assignment counts.
- :func:`sample_size_proportions`, :func:`power_proportions`, :func:`sample_size_means` --
  the power calculator, consistent with the pooled z-test above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

ArrayLike = Any  # float or numpy array


@dataclass(frozen=True)
class TestResult:
    """Outcome of a two-sample comparison (treatment minus control).

    Fields are floats for scalar input and arrays for array input.
    """

    estimate: ArrayLike
    ci_low: ArrayLike
    ci_high: ArrayLike
    statistic: ArrayLike
    p_value: ArrayLike
    alpha: float

    @property
    def significant(self) -> ArrayLike:
        """Whether the null of no difference is rejected at ``alpha``."""
        return np.asarray(self.p_value) < self.alpha

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (scalars as floats, arrays as lists)."""
        def conv(v: ArrayLike) -> Any:
            a = np.asarray(v)
            return a.item() if a.ndim == 0 else a.tolist()

        return {
            "estimate": conv(self.estimate),
            "ci_low": conv(self.ci_low),
            "ci_high": conv(self.ci_high),
            "statistic": conv(self.statistic),
            "p_value": conv(self.p_value),
            "significant": conv(self.significant),
            "alpha": self.alpha,
        }


def _scalarize(x: np.ndarray) -> ArrayLike:
    return x.item() if np.ndim(x) == 0 else x


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def _wilson(x: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    p = x / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def two_proportion_ztest(
    x_control: ArrayLike,
    n_control: ArrayLike,
    x_treatment: ArrayLike,
    n_treatment: ArrayLike,
    *,
    alpha: float = 0.05,
    ci_method: str = "newcombe",
) -> TestResult:
    """Two-sided two-proportion z-test of ``p_treatment - p_control``.

    Parameters
    ----------
    x_control, n_control, x_treatment, n_treatment
        Successes and trials per arm (scalars or arrays of one shape).
    alpha
        Significance level; the interval has coverage ``1 - alpha``.
    ci_method
        ``"newcombe"`` (hybrid Wilson score, method 10 of Newcombe 1998) or ``"wald"``.

    Returns
    -------
    TestResult
        ``estimate`` is the difference of rates; ``statistic`` the pooled z.

    Examples
    --------
    >>> r = two_proportion_ztest(100, 1000, 130, 1000)
    >>> round(r.estimate, 3), bool(r.significant)
    (0.03, True)
    """
    _check_alpha(alpha)
    xc, nc = np.asarray(x_control, float), np.asarray(n_control, float)
    xt, nt = np.asarray(x_treatment, float), np.asarray(n_treatment, float)
    if np.any(nc <= 0) or np.any(nt <= 0):
        raise ValueError("every arm needs at least one trial")
    if np.any((xc < 0) | (xc > nc) | (xt < 0) | (xt > nt)):
        raise ValueError("successes must lie between 0 and the number of trials")
    pc, pt = xc / nc, xt / nt
    diff = pt - pc
    pooled = (xc + xt) / (nc + nt)
    se0 = np.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nt))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se0 > 0, diff / np.where(se0 > 0, se0, 1.0), 0.0)
    p_value = 2 * sps.norm.sf(np.abs(z))
    zc = sps.norm.ppf(1 - alpha / 2)
    if ci_method == "newcombe":
        lc, uc = _wilson(xc, nc, zc)
        lt, ut = _wilson(xt, nt, zc)
        low = diff - np.sqrt((pt - lt) ** 2 + (uc - pc) ** 2)
        high = diff + np.sqrt((ut - pt) ** 2 + (pc - lc) ** 2)
    elif ci_method == "wald":
        se = np.sqrt(pc * (1 - pc) / nc + pt * (1 - pt) / nt)
        low, high = diff - zc * se, diff + zc * se
    else:
        raise ValueError(f"ci_method must be 'newcombe' or 'wald', got {ci_method!r}")
    return TestResult(*(_scalarize(v) for v in (diff, low, high, z, p_value)), alpha=alpha)


def welch_ttest(
    mean_control: ArrayLike,
    var_control: ArrayLike,
    n_control: ArrayLike,
    mean_treatment: ArrayLike,
    var_treatment: ArrayLike,
    n_treatment: ArrayLike,
    *,
    alpha: float = 0.05,
) -> TestResult:
    """Welch's unequal-variance t-test of ``mean_treatment - mean_control`` from summaries.

    ``var_*`` are sample variances (ddof=1). The interval uses the Welch-Satterthwaite degrees
    of freedom.

    Examples
    --------
    >>> r = welch_ttest(10.0, 4.0, 50, 11.0, 9.0, 60)
    >>> round(r.estimate, 2)
    1.0
    """
    _check_alpha(alpha)
    mc, vc, nc = (np.asarray(v, float) for v in (mean_control, var_control, n_control))
    mt, vt, nt = (np.asarray(v, float) for v in (mean_treatment, var_treatment, n_treatment))
    if np.any(nc < 2) or np.any(nt < 2):
        raise ValueError("Welch's test needs at least two observations per arm")
    sc, st = vc / nc, vt / nt
    se = np.sqrt(sc + st)
    diff = mt - mc
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (sc + st) ** 2 / (sc**2 / (nc - 1) + st**2 / (nt - 1))
        t = np.where(se > 0, diff / np.where(se > 0, se, 1.0), 0.0)
    df = np.where(np.isfinite(df), df, 1.0)
    p_value = 2 * sps.t.sf(np.abs(t), df)
    q = sps.t.ppf(1 - alpha / 2, df)
    return TestResult(
        *(_scalarize(v) for v in (diff, diff - q * se, diff + q * se, t, p_value)), alpha=alpha
    )


def welch_ttest_samples(control: np.ndarray, treatment: np.ndarray, *,
                        alpha: float = 0.05) -> TestResult:
    """:func:`welch_ttest` on raw per-user values (e.g. revenue per user, zeros included)."""
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    return welch_ttest(c.mean(), c.var(ddof=1), c.size, t.mean(), t.var(ddof=1), t.size,
                       alpha=alpha)


def _diff_and_variance(xc: np.ndarray, nc: np.ndarray, xt: np.ndarray,
                       nt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pc, pt = xc / nc, xt / nt
    # Unpooled plug-in variance of the difference: consistent under null and alternative,
    # which the confidence sequence needs (its centre moves with the true effect).
    var = pc * (1 - pc) / nc + pt * (1 - pt) / nt
    # A floor keeps early looks with zero successes from dividing by zero.
    return pt - pc, np.maximum(var, 1e-12)


def msprt_statistic(diff: ArrayLike, var: ArrayLike, mixture_sd: float) -> np.ndarray:
    """Normal-mixture likelihood ratio Λ of an estimate ``diff`` with variance ``var``.

    Λ = sqrt(V / (V + τ²)) · exp(τ² θ̂² / (2 V (V + τ²))), mixing the effect over N(0, τ²).
    """
    if mixture_sd <= 0:
        raise ValueError("mixture_sd must be positive")
    v = np.asarray(var, float)
    tau2 = mixture_sd**2
    d = np.asarray(diff, float)
    log_lam = 0.5 * np.log(v / (v + tau2)) + tau2 * d * d / (2 * v * (v + tau2))
    return np.exp(np.minimum(log_lam, 700.0))


@dataclass(frozen=True)
class SequentialResult:
    """Always-valid outcome after the last look (arrays have the looks on the last axis)."""

    estimate: ArrayLike
    p_value: ArrayLike  # always-valid p-value after each look (non-increasing)
    ci_low: ArrayLike
    ci_high: ArrayLike
    rejected: ArrayLike  # whether the null was rejected at or before each look
    alpha: float


def msprt(
    x_control: ArrayLike,
    n_control: ArrayLike,
    x_treatment: ArrayLike,
    n_treatment: ArrayLike,
    *,
    mixture_sd: float,
    alpha: float = 0.05,
) -> SequentialResult:
    """Mixture SPRT for a difference of proportions, valid under continuous peeking.

    Parameters
    ----------
    x_control, n_control, x_treatment, n_treatment
        *Cumulative* counts at each look, looks on the last axis (shape ``(..., looks)``).
    mixture_sd
        τ, the standard deviation of the normal mixture over effects; choose it near the
        effect one hopes to detect (e.g. the MDE). Fixed in advance, never tuned on the data.
    alpha
        Type-I error guaranteed over any number of looks.

    Returns
    -------
    SequentialResult
        Always-valid p-values ``min(1, min_k 1/Λ_k)`` and the confidence sequence per look.

    Examples
    --------
    >>> r = msprt([50, 100], [500, 1000], [80, 170], [500, 1000], mixture_sd=0.03)
    >>> bool(r.rejected[-1])
    True
    """
    _check_alpha(alpha)
    xc, nc = np.asarray(x_control, float), np.asarray(n_control, float)
    xt, nt = np.asarray(x_treatment, float), np.asarray(n_treatment, float)
    diff, var = _diff_and_variance(xc, nc, xt, nt)
    lam = msprt_statistic(diff, var, mixture_sd)
    p_value = np.minimum.accumulate(np.minimum(1.0, 1.0 / lam), axis=-1)
    low, high = confidence_sequence(diff, var, mixture_sd=mixture_sd, alpha=alpha)
    # Intersecting the running intervals keeps the sequence valid and never widening.
    low = np.maximum.accumulate(low, axis=-1)
    high = np.minimum.accumulate(high, axis=-1)
    return SequentialResult(diff, p_value, low, high, p_value <= alpha, alpha)


def confidence_sequence(diff: ArrayLike, var: ArrayLike, *, mixture_sd: float,
                        alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Always-valid (normal-mixture) confidence interval around ``diff`` at one look.

    The set of θ₀ the mSPRT does not reject: θ̂ ± sqrt(V (V+τ²)/τ² · (2 log(1/α) + log((V+τ²)/V))).
    """
    _check_alpha(alpha)
    v = np.asarray(var, float)
    tau2 = mixture_sd**2
    radius = np.sqrt(v * (v + tau2) / tau2 * (2 * np.log(1 / alpha) + np.log((v + tau2) / v)))
    d = np.asarray(diff, float)
    return d - radius, d + radius


def prob_beat_control(
    x_control: ArrayLike,
    n_control: ArrayLike,
    x_treatment: ArrayLike,
    n_treatment: ArrayLike,
    *,
    prior: tuple[float, float] = (1.0, 1.0),
    draws: int = 20_000,
    random_state: int | None = 0,
) -> ArrayLike:
    """Posterior probability that the treatment's rate exceeds control's (Beta-Binomial).

    Monte Carlo over ``draws`` posterior samples of each arm; the error is about
    ``0.5 / sqrt(draws)``.

    Examples
    --------
    >>> round(prob_beat_control(100, 1000, 100, 1000), 1)
    0.5
    """
    rng = np.random.default_rng(random_state)
    a, b = prior
    xc, nc = np.asarray(x_control, float), np.asarray(n_control, float)
    xt, nt = np.asarray(x_treatment, float), np.asarray(n_treatment, float)
    shape = np.broadcast(xc, nc, xt, nt).shape
    pc = rng.beta(a + xc[..., None], b + (nc - xc)[..., None], size=(*shape, draws))
    pt = rng.beta(a + xt[..., None], b + (nt - xt)[..., None], size=(*shape, draws))
    return _scalarize((pt > pc).mean(axis=-1))


def prob_beat_control_normal(mean_control: ArrayLike, var_control: ArrayLike,
                             n_control: ArrayLike, mean_treatment: ArrayLike,
                             var_treatment: ArrayLike, n_treatment: ArrayLike) -> ArrayLike:
    """P(mean_treatment > mean_control) under flat priors and normal posteriors (revenue)."""
    se = np.sqrt(np.asarray(var_control, float) / np.asarray(n_control, float)
                 + np.asarray(var_treatment, float) / np.asarray(n_treatment, float))
    diff = np.asarray(mean_treatment, float) - np.asarray(mean_control, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / np.where(se > 0, se, 1.0), 0.0)
    return _scalarize(sps.norm.cdf(z))


def srm_test(observed: ArrayLike, expected_ratios: ArrayLike | None = None,
             *, threshold: float = 0.001) -> dict[str, Any]:
    """Sample-ratio mismatch check: chi-square goodness of fit of assignment counts.

    Parameters
    ----------
    observed
        Users per variant, shape ``(..., k)``.
    expected_ratios
        Planned allocation (sums to anything; normalised); equal split by default.
    threshold
        p-value below which a mismatch is flagged (0.001 is the usual, conservative choice).

    Returns
    -------
    dict
        ``chi2``, ``p_value`` and ``mismatch`` (arrays for array input).

    Examples
    --------
    >>> srm_test([5000, 5000])["mismatch"]
    False
    >>> srm_test([5000, 5400])["mismatch"]
    True
    """
    obs = np.asarray(observed, float)
    k = obs.shape[-1]
    ratios = np.full(k, 1.0 / k) if expected_ratios is None else np.asarray(expected_ratios, float)
    if ratios.shape[-1] != k or np.any(ratios <= 0):
        raise ValueError("expected_ratios needs one positive entry per variant")
    expected = obs.sum(axis=-1, keepdims=True) * ratios / ratios.sum()
    chi2 = ((obs - expected) ** 2 / expected).sum(axis=-1)
    p = sps.chi2.sf(chi2, k - 1)
    return {"chi2": _scalarize(chi2), "p_value": _scalarize(p),
            "mismatch": _scalarize(p < threshold)}


def _as_absolute(baseline: float, mde: float, relative: bool) -> float:
    if not 0.0 < baseline < 1.0:
        raise ValueError(f"baseline rate must lie in (0, 1), got {baseline}")
    delta = baseline * mde if relative else mde
    if delta == 0 or not 0.0 < baseline + delta < 1.0:
        raise ValueError(f"the effect {delta} moves the rate outside (0, 1) or is zero")
    return delta


def sample_size_proportions(baseline: float, mde: float, *, alpha: float = 0.05,
                            power: float = 0.8, relative: bool = False) -> int:
    """Users per arm for the two-sided pooled z-test to detect ``mde`` with ``power``.

    Parameters
    ----------
    baseline
        Control rate (e.g. 0.10 conversion).
    mde
        Minimum detectable effect: absolute difference, or relative lift when ``relative``.

    Examples
    --------
    >>> sample_size_proportions(0.10, 0.01)
    14751
    """
    _check_alpha(alpha)
    delta = _as_absolute(baseline, mde, relative)
    p1, p2 = baseline, baseline + delta
    pbar = (p1 + p2) / 2
    za, zb = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
    n = (za * np.sqrt(2 * pbar * (1 - pbar)) + zb * np.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2
    return int(np.ceil(n / delta**2))


def power_proportions(baseline: float, mde: float, n_per_arm: int, *, alpha: float = 0.05,
                      relative: bool = False) -> float:
    """Power of the two-sided pooled z-test with ``n_per_arm`` users in each arm."""
    _check_alpha(alpha)
    delta = _as_absolute(baseline, mde, relative)
    p1, p2 = baseline, baseline + delta
    pbar = (p1 + p2) / 2
    za = sps.norm.ppf(1 - alpha / 2)
    se0 = np.sqrt(2 * pbar * (1 - pbar) / n_per_arm)
    se1 = np.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n_per_arm)
    return float(sps.norm.cdf((abs(delta) - za * se0) / se1)
                 + sps.norm.cdf((-abs(delta) - za * se0) / se1))


def sample_size_means(sd: float, mde: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Users per arm for a two-sided test of means with common standard deviation ``sd``.

    Examples
    --------
    >>> sample_size_means(10.0, 1.0)
    1570
    """
    _check_alpha(alpha)
    if sd <= 0 or mde == 0:
        raise ValueError("sd must be positive and mde non-zero")
    za, zb = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
    return int(np.ceil(2 * (za + zb) ** 2 * sd**2 / mde**2))
