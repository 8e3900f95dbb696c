"""Small synthetic fixtures for the serving stages (no store, no HTTP)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from limelight.data.dataset import Dataset
from limelight.pipeline.catalog import build_catalog

WEIGHTS = {"view": 1.0, "purchase": 5.0, "not_interested": -2.0}


@pytest.fixture(scope="module")
def shop() -> dict:
    """60 users with tastes over 6 categories, 600 items (+ 2 cold items), 3,000 events."""
    rng = np.random.default_rng(0)
    n_users, n_items = 60, 600
    item_cat = np.arange(n_items) % 6
    taste = rng.integers(0, 6, n_users)
    users = rng.integers(0, n_users, 3000)
    liked = rng.random(3000) < 0.85
    cats = np.where(liked, taste[users], rng.integers(0, 6, 3000))
    items = np.array([rng.choice(np.flatnonzero(item_cat == c)) for c in cats])
    events = pd.DataFrame({
        "user_id": [f"u{u}" for u in users], "item_id": [f"i{i}" for i in items],
        "type": np.where(rng.random(3000) < 0.1, "purchase", "view"),
        "timestamp": pd.Timestamp("2025-01-01", tz="UTC")
        + pd.to_timedelta(np.arange(3000) * 60, unit="s")})
    catalogue = pd.DataFrame({
        "item_id": [f"i{i}" for i in range(n_items)] + ["new-a", "new-b"],
        "title": [f"Item {i}" for i in range(n_items)] + ["New A", "New B"],
        "categories": [[f"c{c}"] for c in item_cat] + [["c0"], ["c5"]],
        "tags": [[f"t{c}"] for c in item_cat] + [["t0"], ["t5"]],
        "price": [float(i) for i in range(n_items)] + [5.0, 6.0],
        "in_stock": [i % 17 != 0 for i in range(n_items)] + [True, True],
        "created_time": pd.Timestamp("2024-01-01", tz="UTC")
        + pd.to_timedelta(np.arange(n_items + 2), unit="D")})
    dataset = Dataset.from_frame(events, event_weights=WEIGHTS)
    counts = np.asarray(dataset.interactions.getnnz(axis=0))
    catalog = build_catalog(dataset.items, catalogue, counts)
    users_frame = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)],
                                "region": np.where(taste < 3, "north", "south")})
    return {"events": events, "dataset": dataset, "catalog": catalog, "taste": taste,
            "item_cat": item_cat, "users": users_frame}
