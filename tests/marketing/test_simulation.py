"""A campaign against the sample world's hidden response model."""

from __future__ import annotations

import pytest

from limelight.marketing.simulation import simulate_campaign
from limelight.sim import generate_world


@pytest.mark.slow
def test_personalised_items_have_true_uplift_and_ci_covers_it() -> None:
    world = generate_world("tiny", seed=0)
    result = simulate_campaign(world, replications=200, random_state=0)
    vs_random = result.uplift["personalised_vs_random"]
    # The truth: personalised top-n converts better than random items.
    assert vs_random["true"] > 0.01
    assert result.true_rates["personalised"] > result.true_rates["popular"]
    assert sum(o["users"] for o in result.observed.values()) == len(world.users)
    # The experiment's 95% interval covers the true uplift at about its nominal rate
    # (200 replications: 95% +- 3 points).
    for key, rate in result.coverage.items():
        assert 0.90 <= rate <= 0.99, (key, rate)


def test_offer_discount_raises_true_conversion() -> None:
    world = generate_world("tiny", seed=1)

    def rec(user_id: str, n: int) -> list[str]:  # a fixed list keeps this test fast
        return world.items["item_id"].head(n).tolist()

    base = simulate_campaign(world, recommend=rec, max_users=120)
    offer = simulate_campaign(world, recommend=rec, max_users=120, discount=0.3)
    for arm in base.true_rates:
        assert offer.true_rates[arm] > base.true_rates[arm]
