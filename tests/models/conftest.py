"""Fixtures shared by the model tests, and the list of models the contract suite runs on.

Another model joins the contract suite by appending a ``(name, factory)`` pair to
``MODEL_FACTORIES`` (a factory returns a small, fast, unfitted model) -- e.g. from its own
test module's import time or here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from limelight.data.dataset import Dataset, add_features
from limelight.models.base import Recommender
from limelight.models.registry import create

N_USERS_PER_BLOCK = 12
N_ITEMS_PER_BLOCK = 8


def _factory(name: str, **params: object) -> Callable[[], Recommender]:
    return lambda: create(name, **params)


#: (name, factory of a small unfitted model) for every model the contract suite checks.
MODEL_FACTORIES: list[tuple[str, Callable[[], Recommender]]] = [
    ("popularity", _factory("popularity")),
    ("item_knn", _factory("item_knn", n_neighbors=10)),
    ("item_knn_bm25_shrunk", _factory("item_knn", n_neighbors=10, weighting="bm25",
                                      shrinkage=5.0, history_half_life=4.0)),
    ("user_knn", _factory("user_knn", n_neighbors=5, weighting="tfidf")),
    ("als", _factory("als", n_factors=2, n_epochs=10, regularization=0.1, num_threads=1)),
    ("bpr", _factory("bpr", n_factors=4, n_epochs=30)),
    ("ease", _factory("ease", regularization=5.0)),
    ("ease_recent", _factory("ease", regularization=5.0, history_half_life=3.0)),
    ("rp3beta", _factory("rp3beta", alpha=0.8, beta=0.3, n_neighbors=10, binary=False)),
    ("content", _factory("content")),
    ("mf_als", _factory("mf_als", n_factors=4, n_epochs=10, regularization=0.05)),
    ("mf_als_knn", _factory("mf_als", n_factors=4, n_epochs=10, regularization=0.05,
                            neighbor_weight=0.5, n_neighbors=5, shrinkage=1.0, loss_cap=2.0)),
    ("mf_sgd", _factory("mf_sgd", n_factors=3, n_epochs=5, batch_size=16)),
    ("knn_baseline", _factory("knn_baseline", n_neighbors=5, shrinkage=1.0)),
    ("blend", _factory("blend", models=[("ease", {"regularization": 5.0}),
                                        ("item_knn", {"n_neighbors": 10}),
                                        ("rp3beta", {"binary": False})])),
    # deep models (torch, the ``deep`` extra): tiny and CPU-only so the suite stays fast
    ("fm", _factory("fm", n_factors=8, n_epochs=20, batch_size=32, learning_rate=0.02,
                    regularization=1e-3, device="cpu")),
    ("sasrec", _factory("sasrec", n_factors=16, n_layers=1, n_heads=1, max_len=8,
                        n_epochs=10, batch_size=16, learning_rate=0.01, device="cpu")),
    ("two_stage", _factory("two_stage", retriever="popularity", n_candidates=10)),
    # faiss (the ``ann`` extra): every request goes through the index (exact_share=1); all
    # cells probed, so answers equal the base model's
    ("ann_als", _factory("ann", base_params={"n_factors": 2, "n_epochs": 10,
                                             "num_threads": 1},
                         n_lists=4, n_probe=4, exact_share=1.0)),
    ("ann_bpr", _factory("ann", base="bpr", base_params={"n_factors": 4, "n_epochs": 30},
                         n_lists=3, n_probe=3, exact_share=1.0)),
]

#: Ranking models whose top recommendations must stay inside a user's block on the block
#: dataset (rating models are checked on low-rank recovery instead).
BLOCK_LEARNERS = {"item_knn", "item_knn_bm25_shrunk", "user_knn", "als", "ease", "ease_recent",
                  "rp3beta", "content", "blend", "fm", "ann_als"}


def make_block_frames(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two blocks: users of block b rate 4-5 of the 8 items of block b (4 or 5 stars) and one
    of the other block's items (1 star); items carry their block as category."""
    rng = np.random.default_rng(seed)
    rows = []
    t = 1_700_000_000  # event times are random, so the latest event is in-block or not
    for block in (0, 1):
        for u in range(N_USERS_PER_BLOCK):
            user = f"u{block}-{u}"
            picked = rng.choice(N_ITEMS_PER_BLOCK, size=int(rng.integers(4, 6)), replace=False)
            own = [f"i{block}-{i}" for i in sorted(picked)]
            other = [f"i{1 - block}-{i}" for i in rng.choice(N_ITEMS_PER_BLOCK, 1)]
            values = [float(rng.choice([4.0, 5.0])) for _ in own] + [1.0 for _ in other]
            for item, value in zip([*own, *other], values, strict=True):
                rows.append((user, item, "rating", value, t + int(rng.integers(0, 10_000))))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "type", "value", "timestamp"])
    items = pd.DataFrame({
        "item_id": [f"i{b}-{i}" for b in (0, 1) for i in range(N_ITEMS_PER_BLOCK + 1)],
        "title": [f"{'space' if b == 0 else 'romance'} story {i}" for b in (0, 1)
                  for i in range(N_ITEMS_PER_BLOCK + 1)],
        "categories": [[f"block{b}"] for b in (0, 1) for _ in range(N_ITEMS_PER_BLOCK + 1)],
    })
    return events, items


def build_block_dataset(seed: int = 0) -> Dataset:
    """The block world as a Dataset; block 0 users come first, then block 1 users.

    Interaction weights are the ratings with the 1-star cross-block ratings weighted 0.2 (a
    weak signal), so implicit models see mostly in-block interactions.
    """
    events, items = make_block_frames(seed)
    dataset = Dataset.from_frame(events, event_weights=None)
    ratings_weight = np.where(dataset.log["value"].to_numpy() >= 4, 1.0, 0.2)
    dataset.log["weight"] = ratings_weight
    dataset = dataset.restrict(np.ones(len(dataset.log), dtype=bool))
    # items "i0-8" and "i1-8" exist in the catalogue only (nobody interacted with them)
    for item in items["item_id"]:
        dataset.items.add(item)
    dataset.interactions.resize((dataset.n_users, len(dataset.items)))
    dataset.interactions = dataset.interactions.tocsr()
    add_features(dataset, None, items)
    return dataset


@pytest.fixture(scope="session")
def block_dataset() -> Dataset:
    return build_block_dataset()


def user_block(dataset: Dataset, user_idx: int) -> int:
    return int(dataset.users.ids_of([user_idx])[0][1])


def item_blocks(dataset: Dataset, item_idx: np.ndarray) -> np.ndarray:
    return np.array([int(x[1]) for x in dataset.items.ids_of(item_idx)])


@pytest.fixture
def one_torch_thread():
    """Tiny torch models: one thread is fastest and keeps runs reproducible on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
