"""Multi-armed bandits to allocate traffic among creatives or offers, optionally per segment.

Policies follow the online-learner style: :meth:`predict_one` picks an arm, :meth:`learn_one`
takes the observed reward (1 = click or conversion, 0 = none; UCB also takes rewards in [0, 1]).
:func:`simulate` runs a policy against known arm rates and reports the allocation and the
cumulative regret (the reward lost against always playing the best arm).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


class _BasePolicy:
    def __init__(self, arms: Sequence[str], random_state: int | None = None) -> None:
        if len(arms) < 1 or len(set(arms)) != len(arms):
            raise ValueError("a bandit needs one or more distinct arms")
        self.arms = [str(a) for a in arms]
        self.random_state = random_state
        self._rng = np.random.default_rng(random_state)
        self.pulls_ = np.zeros(len(self.arms))
        self.rewards_ = np.zeros(len(self.arms))

    def _index(self, arm: str) -> int:
        try:
            return self.arms.index(str(arm))
        except ValueError:
            raise ValueError(f"unknown arm {arm!r}; arms are {self.arms}") from None

    def learn_one(self, arm: str, reward: float) -> None:
        """Record the reward of one pull of ``arm``."""
        if not 0.0 <= reward <= 1.0:
            raise ValueError("rewards must lie in [0, 1]")
        i = self._index(arm)
        self.pulls_[i] += 1
        self.rewards_[i] += reward

    def allocation(self) -> dict[str, float]:
        """Share of pulls each arm received so far."""
        total = self.pulls_.sum()
        return {a: float(p / total) if total else 0.0 for a, p in zip(self.arms, self.pulls_,
                                                                      strict=True)}

    def summary(self) -> list[dict[str, Any]]:
        """Pulls, rewards and observed rate per arm."""
        return [
            {"arm": a, "pulls": int(n), "rewards": float(r), "rate": float(r / n) if n else None}
            for a, n, r in zip(self.arms, self.pulls_, self.rewards_, strict=True)
        ]


class ThompsonSampling(_BasePolicy):
    """Beta-Bernoulli Thompson sampling.

    Parameters
    ----------
    arms
        Arm names (creatives, offers).
    prior
        Beta prior (alpha, beta) shared by every arm.

    Examples
    --------
    >>> ts = ThompsonSampling(["A", "B"], random_state=0)
    >>> ts.learn_one(ts.predict_one(), 1.0)
    """

    def __init__(self, arms: Sequence[str], prior: tuple[float, float] = (1.0, 1.0),
                 random_state: int | None = None) -> None:
        super().__init__(arms, random_state)
        self.prior = prior

    def predict_one(self) -> str:
        """Sample each arm's posterior rate and pick the largest."""
        a, b = self.prior
        draws = self._rng.beta(a + self.rewards_, b + self.pulls_ - self.rewards_)
        return self.arms[int(np.argmax(draws))]

    def posterior_mean(self) -> dict[str, float]:
        a, b = self.prior
        mean = (a + self.rewards_) / (a + b + self.pulls_)
        return dict(zip(self.arms, mean.tolist(), strict=True))

    def prob_best(self, draws: int = 10_000) -> dict[str, float]:
        """Posterior probability that each arm is the best."""
        a, b = self.prior
        samples = self._rng.beta(a + self.rewards_, b + self.pulls_ - self.rewards_,
                                 size=(draws, len(self.arms)))
        best = np.bincount(samples.argmax(axis=1), minlength=len(self.arms)) / draws
        return dict(zip(self.arms, best.tolist(), strict=True))


class UCB1(_BasePolicy):
    """Upper confidence bound (UCB1, Auer et al. 2002) with exploration weight ``c``."""

    def __init__(self, arms: Sequence[str], c: float = 2.0,
                 random_state: int | None = None) -> None:
        super().__init__(arms, random_state)
        self.c = c

    def predict_one(self) -> str:
        """Play every arm once, then the arm with the highest upper bound (ties at random)."""
        untried = np.flatnonzero(self.pulls_ == 0)
        if untried.size:
            return self.arms[int(self._rng.choice(untried))]
        total = self.pulls_.sum()
        ucb = self.rewards_ / self.pulls_ + np.sqrt(self.c * np.log(total) / self.pulls_)
        best = np.flatnonzero(ucb == ucb.max())
        return self.arms[int(self._rng.choice(best))]


class SegmentedBandit:
    """One policy per segment, created on first use by ``factory(arms)``.

    Examples
    --------
    >>> sb = SegmentedBandit(["A", "B"], lambda arms: ThompsonSampling(arms, random_state=0))
    >>> sb.learn_one("Champions", sb.predict_one("Champions"), 1.0)
    """

    def __init__(self, arms: Sequence[str],
                 factory: Callable[[Sequence[str]], _BasePolicy] | None = None) -> None:
        self.arms = list(arms)
        self.factory = factory or (lambda a: ThompsonSampling(a))
        self.policies: dict[str, _BasePolicy] = {}

    def policy(self, segment: str) -> _BasePolicy:
        if segment not in self.policies:
            self.policies[segment] = self.factory(self.arms)
        return self.policies[segment]

    def predict_one(self, segment: str) -> str:
        return self.policy(segment).predict_one()  # type: ignore[attr-defined]

    def learn_one(self, segment: str, arm: str, reward: float) -> None:
        self.policy(segment).learn_one(arm, reward)

    def allocation(self) -> dict[str, dict[str, float]]:
        return {s: p.allocation() for s, p in self.policies.items()}


@dataclass
class BanditRun:
    """Outcome of :func:`simulate`."""

    allocation: dict[str, float]
    pulls: dict[str, int]
    total_reward: float
    cumulative_regret: np.ndarray  # expected regret after each step
    best_arm: str

    def to_dict(self) -> dict[str, Any]:
        return {"allocation": self.allocation, "pulls": self.pulls,
                "total_reward": self.total_reward, "regret": float(self.cumulative_regret[-1]),
                "best_arm": self.best_arm}


def simulate(policy: Any, true_rates: dict[str, float] | dict[str, dict[str, float]],
             horizon: int, *, segments: Sequence[str] | None = None,
             random_state: int | None = 0) -> BanditRun:
    """Run ``policy`` for ``horizon`` Bernoulli pulls against known arm rates.

    Parameters
    ----------
    policy
        A policy (``predict_one()``/``learn_one(arm, r)``) or a :class:`SegmentedBandit`
        (then ``true_rates`` maps segment -> arm -> rate and ``segments`` gives each step's
        segment, cycled).
    true_rates
        Arm -> success probability (or segment -> arm -> probability).
    horizon
        Number of pulls.

    Returns
    -------
    BanditRun
        Allocation, pulls per arm, reward and the expected cumulative regret per step.
    """
    rng = np.random.default_rng(random_state)
    segmented = isinstance(policy, SegmentedBandit)
    if segmented and not segments:
        segments = list(true_rates)
    regret = np.zeros(horizon)
    pulls: dict[str, int] = {}
    total = 0.0
    loss = 0.0
    for t in range(horizon):
        if segmented:
            seg = segments[t % len(segments)]  # type: ignore[index]
            rates = true_rates[seg]  # type: ignore[index]
            arm = policy.predict_one(seg)
        else:
            rates = true_rates  # type: ignore[assignment]
            arm = policy.predict_one()
        p = float(rates[arm])  # type: ignore[arg-type]
        reward = float(rng.random() < p)
        if segmented:
            policy.learn_one(seg, arm, reward)
        else:
            policy.learn_one(arm, reward)
        pulls[arm] = pulls.get(arm, 0) + 1
        total += reward
        loss += max(rates.values()) - p  # type: ignore[union-attr]
        regret[t] = loss
    flat = true_rates if not segmented else {
        a: float(np.mean([true_rates[s][a] for s in true_rates])) for a in policy.arms}  # type: ignore[index]
    best = max(flat, key=flat.get)  # type: ignore[arg-type]
    alloc = {a: pulls.get(a, 0) / horizon for a in (flat)}
    return BanditRun(alloc, pulls, total, regret, str(best))
