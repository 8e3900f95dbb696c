"""Known answers of the explicit-rating models (biased MF by ALS and SGD, baseline kNN)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from limelight.data.dataset import Dataset
from limelight.data.vocab import IdVocab
from limelight.models.registry import create

N_USERS, N_ITEMS = 60, 40


def low_rank_ratings(seed: int = 0, rank: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(full rating matrix mu + b_u + c_i + U V^T, observed mask ~60%)."""
    rng = np.random.default_rng(seed)
    users = rng.normal(0, 0.6, (N_USERS, rank))
    items = rng.normal(0, 0.6, (N_ITEMS, rank))
    full = 3.0 + rng.normal(0, 0.3, (N_USERS, 1)) + rng.normal(0, 0.3, (1, N_ITEMS))
    full = full + users @ items.T
    return full, rng.random(full.shape) < 0.6


def rating_dataset(full: np.ndarray, mask: np.ndarray) -> Dataset:
    users, items = np.nonzero(mask)
    frame = pd.DataFrame({"user_id": users.astype(str), "item_id": items.astype(str),
                          "type": "rating", "value": full[users, items],
                          "timestamp": np.arange(len(users))})
    return Dataset.from_frame(frame, event_weights={"rating": 1.0},
                              users=IdVocab(np.arange(full.shape[0]).astype(str)),
                              items=IdVocab(np.arange(full.shape[1]).astype(str)))


def held_out_rmse(model, full: np.ndarray, mask: np.ndarray) -> float:
    users, items = np.nonzero(~mask)
    predicted = model.predict(users, items)
    return float(np.sqrt(np.mean((predicted - full[users, items]) ** 2)))


@pytest.fixture(scope="module")
def low_rank():
    full, mask = low_rank_ratings()
    return full, mask, rating_dataset(full, mask)


def test_mf_als_recovers_a_low_rank_matrix(low_rank):
    full, mask, ds = low_rank
    model = create("mf_als", n_factors=2, n_epochs=30, regularization=0.002,
                   bias_regularization=0.002).fit(ds)
    assert held_out_rmse(model, full, mask) < 0.05
    baseline = np.sqrt(np.mean((full[~mask] - full[mask].mean()) ** 2))
    assert baseline > 0.5  # the task is not trivial


def test_mf_sgd_recovers_a_low_rank_matrix(low_rank):
    full, mask, ds = low_rank
    model = create("mf_sgd", n_factors=2, n_epochs=100, learning_rate=0.05,
                   regularization=0.001, batch_size=64).fit(ds)
    assert held_out_rmse(model, full, mask) < 0.05


def test_predictions_are_clipped_to_the_rating_range():
    full, mask = low_rank_ratings(seed=1)
    full = np.clip(np.round(full), 1, 5)
    model = create("mf_als", n_factors=4, regularization=0.001).fit(rating_dataset(full, mask))
    users, items = np.nonzero(np.ones_like(mask))
    predicted = model.predict(users, items)
    assert predicted.min() >= 1.0 and predicted.max() <= 5.0


def test_loss_cap_shields_items_from_erratic_users():
    full, mask = low_rank_ratings(seed=2)
    noisy = full.copy()
    rng = np.random.default_rng(3)
    erratic = np.arange(8)  # these users rate at random
    noisy[erratic] = rng.uniform(-3, 9, (len(erratic), N_ITEMS))
    ds = rating_dataset(noisy, mask)
    clean_mask = mask.copy()
    clean_mask[erratic] = True  # score only the well-behaved users' held-out ratings
    params = dict(n_factors=2, n_epochs=20, regularization=0.01, bias_regularization=0.01)
    plain = create("mf_als", **params).fit(ds)
    capped = create("mf_als", loss_cap=1.0, **params).fit(ds)
    assert held_out_rmse(capped, full, clean_mask) < 0.8 * held_out_rmse(plain, full, clean_mask)
    sgd_params = dict(n_factors=2, n_epochs=60, learning_rate=0.02, regularization=0.01,
                      batch_size=32)
    sgd_plain = create("mf_sgd", **sgd_params).fit(ds)
    sgd_capped = create("mf_sgd", loss_cap=1.0, **sgd_params).fit(ds)
    assert (held_out_rmse(sgd_capped, full, clean_mask)
            < held_out_rmse(sgd_plain, full, clean_mask))


def test_baseline_knn_matches_a_hand_computation():
    ratings = np.array([[5, 4, 0, 1],
                        [4, 5, 1, 0],
                        [1, 0, 5, 4],
                        [0, 1, 4, 5],
                        [5, 0, 0, 2]], dtype=float)
    ds = rating_dataset(ratings, ratings > 0)
    model = create("knn_baseline", n_neighbors=2, shrinkage=0.0, n_epochs=5).fit(ds)
    mu = ratings[ratings > 0].mean()
    assert model.mu_ == pytest.approx(mu)
    baseline = mu + model.user_bias_[:, None] + model.item_bias_[None, :]
    residual = np.where(ratings > 0, ratings - baseline, 0.0)
    rated = (ratings > 0).astype(float)
    sims = (residual.T @ residual) / np.sqrt(((residual**2).T @ rated) * (rated.T @ residual**2))
    np.fill_diagonal(sims, 0.0)
    # user 4 rated items 0 and 3; predict item 1 from those (both are its 2 neighbours)
    neighbours = np.array([0, 3])
    weights = np.clip(sims[1, neighbours], 0, None)
    expected = baseline[4, 1] + (weights * residual[4, neighbours]).sum() / weights.sum()
    assert model.predict(4, 1)[0] == pytest.approx(np.clip(expected, 1, 5), rel=1e-4)


def test_user_based_knn_equals_item_based_on_the_transposed_matrix():
    full, mask = low_rank_ratings(seed=4)
    full = np.clip(np.round(full), 1, 5)
    ds = rating_dataset(full, mask)
    transposed = rating_dataset(full.T, mask.T)
    params = dict(n_neighbors=10, shrinkage=5.0, user_regularization=7.0,
                  item_regularization=7.0)
    user_based = create("knn_baseline", based_on="user", **params).fit(ds)
    item_based_t = create("knn_baseline", based_on="item", **params).fit(transposed)
    users, items = np.nonzero(~mask)
    np.testing.assert_allclose(user_based.neighbour_term(users, items),
                               item_based_t.neighbour_term(items, users), rtol=1e-3, atol=1e-4)


def test_mf_with_neighbours_is_the_stated_blend(low_rank):
    _, mask, ds = low_rank
    params = dict(n_factors=2, n_epochs=10)
    blend = create("mf_als", neighbor_weight=0.3, user_neighbor_weight=0.2, n_neighbors=10,
                   **params).fit(ds)
    mf = create("mf_als", **params).fit(ds)
    item_knn = create("knn_baseline", n_neighbors=10).fit(ds)
    user_knn = create("knn_baseline", n_neighbors=10, based_on="user").fit(ds)
    users, items = np.nonzero(~mask)
    raw = mf.predict(users, items)  # unclipped inside the rating range here
    expected = 0.5 * raw + 0.3 * item_knn.predict(users, items) + 0.2 * user_knn.predict(
        users, items)
    low, high = blend.rating_range_
    np.testing.assert_allclose(blend.predict(users, items), np.clip(expected, low, high),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="below 1"):
        create("mf_als", neighbor_weight=0.6, user_neighbor_weight=0.5).fit(ds)


@pytest.mark.realdata
@pytest.mark.slow
def test_mf_als_with_neighbours_on_movielens_fold_1(ml100k_dir):
    def read(name: str) -> pd.DataFrame:
        raw = pd.read_csv(ml100k_dir / name, sep="\t", header=None,
                          names=["user_id", "item_id", "value", "timestamp"])
        return raw.assign(type="rating").astype({"user_id": str, "item_id": str})

    train, test = read("u1.base"), read("u1.test")
    users = IdVocab(np.arange(1, 944).astype(str))
    items = IdVocab(np.arange(1, 1683).astype(str))
    ds = Dataset.from_frame(train, event_weights={"rating": 1.0}, users=users, items=items)
    model = create("mf_als", neighbor_weight=0.25, user_neighbor_weight=0.25).fit(ds)
    predicted = model.predict(users.index(test["user_id"].to_numpy()),
                              items.index(test["item_id"].to_numpy()))
    rmse = float(np.sqrt(np.mean((predicted - test["value"].to_numpy()) ** 2)))
    assert rmse < 0.925  # fold 1 is the hardest; the 5-fold mean is 0.909
