from __future__ import annotations

import pytest

from limelight.marketing import bandits

RATES = {"a": 0.02, "b": 0.05, "c": 0.10}


@pytest.mark.parametrize("policy_cls", [bandits.ThompsonSampling, bandits.UCB1])
def test_policies_find_the_best_arm_and_beat_uniform(policy_cls) -> None:
    policy = policy_cls(list(RATES), random_state=0)
    run = bandits.simulate(policy, RATES, 3000, random_state=0)
    assert run.best_arm == "c"
    assert run.allocation["c"] > 0.5
    uniform_regret = 3000 * (0.10 - sum(RATES.values()) / 3)
    assert run.cumulative_regret[-1] < 0.7 * uniform_regret
    assert sum(run.pulls.values()) == 3000


def test_segmented_bandit_learns_per_segment() -> None:
    rates = {"young": {"x": 0.15, "y": 0.02}, "old": {"x": 0.02, "y": 0.15}}
    sb = bandits.SegmentedBandit(["x", "y"],
                                 lambda arms: bandits.ThompsonSampling(arms, random_state=1))
    bandits.simulate(sb, rates, 4000, random_state=1)
    alloc = sb.allocation()
    assert alloc["young"]["x"] > 0.7 and alloc["old"]["y"] > 0.7


def test_bad_input() -> None:
    ts = bandits.ThompsonSampling(["a"])
    with pytest.raises(ValueError):
        ts.learn_one("zzz", 1.0)
    with pytest.raises(ValueError):
        ts.learn_one("a", 2.0)
    with pytest.raises(ValueError):
        bandits.UCB1(["a", "a"])
