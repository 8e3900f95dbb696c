"""Small synthetic interaction data with structure a recommender can learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from limelight.data.dataset import Dataset


def clustered_events(n_users: int = 120, n_items: int = 60, per_user: int = 15,
                     n_groups: int = 3, seed: int = 0, ratings: bool = False) -> pd.DataFrame:
    """Users in groups that mostly pick items of their group's block; timestamps increase."""
    rng = np.random.default_rng(seed)
    block = n_items // n_groups
    rows = []
    for u in range(n_users):
        g = u % n_groups
        own = np.arange(g * block, (g + 1) * block)
        pool = np.where(rng.random(per_user) < 0.85, rng.choice(own, per_user),
                        rng.integers(0, n_items, per_user))
        for t, i in enumerate(dict.fromkeys(pool.tolist())):
            value = float(np.clip(round(4 + rng.normal() if i in own else 2 + rng.normal()),
                                  1, 5))
            rows.append({"user_id": f"u{u}", "item_id": f"i{i}", "timestamp": 1000 * u + t,
                         "type": "rating" if ratings else "click", "value": value})
    return pd.DataFrame(rows)


@pytest.fixture
def clustered() -> Dataset:
    return Dataset.from_frame(clustered_events(), event_weights={"click": 1.0})


@pytest.fixture
def rated() -> Dataset:
    return Dataset.from_frame(clustered_events(ratings=True), event_weights={"rating": 1.0})
