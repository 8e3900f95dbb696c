"""Known answers of the ranking models on matrices small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from limelight.data.dataset import Dataset
from limelight.models.registry import create

from .conftest import item_blocks, user_block

#: 5 users x 4 items (binary)
X = np.array([[1, 1, 0, 0],
              [1, 0, 1, 0],
              [0, 1, 1, 1],
              [1, 1, 1, 0],
              [0, 0, 1, 1]], dtype=np.float32)


def tiny(matrix: np.ndarray = X, *, step: int = 1) -> Dataset:
    users, items = np.nonzero(matrix)
    frame = pd.DataFrame({"user_id": [f"u{u}" for u in users],
                          "item_id": [f"i{i}" for i in items],
                          "value": matrix[users, items].astype(float),
                          "timestamp": np.arange(len(users)) * step})
    from limelight.data.vocab import IdVocab

    return Dataset.from_frame(frame, users=IdVocab([f"u{u}" for u in range(matrix.shape[0])]),
                              items=IdVocab([f"i{i}" for i in range(matrix.shape[1])]))


def cosine(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=0)
    return (matrix.T @ matrix) / np.outer(norms, norms)


def test_popularity_counts_users_and_honours_groups():
    model = create("popularity").fit(tiny())
    np.testing.assert_allclose(model.score(0, np.arange(4))[0], X.sum(0) / X.sum())
    groups = np.array([0, 0, 1, 1, -1])
    grouped = create("popularity", shrinkage=0.0).fit(tiny(), group_of_user=groups)
    group1 = X[2:4].sum(0) / X[2:4].sum()
    np.testing.assert_allclose(grouped.score(2, np.arange(4))[0], group1, rtol=1e-6)
    np.testing.assert_allclose(grouped.score(4, np.arange(4))[0], X.sum(0) / X.sum(), rtol=1e-6)
    with pytest.raises(ValueError, match="one label per user"):
        create("popularity").fit(tiny(), group_of_user=np.zeros(3))


def test_popularity_time_decay_prefers_recent_items():
    frame = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "item_id": ["old", "old", "old", "new"],
                          "timestamp": [0, 0, 0, 100 * 86_400]})
    ds = Dataset.from_frame(frame)
    assert create("popularity").fit(ds).recommend(3, n=1, exclude_seen=False)[0][0, 0] == 0
    recent = create("popularity", half_life_days=10).fit(ds)
    assert ds.items.ids_of(recent.recommend(0, n=1, exclude_seen=False)[0][0])[0] == "new"


def test_item_knn_cosine_equals_the_textbook_formula():
    model = create("item_knn", n_neighbors=4).fit(tiny())
    np.testing.assert_allclose(model.similarity_.toarray(), cosine(X), rtol=1e-5)
    np.testing.assert_allclose(model.score(1, np.arange(4))[0], X[1] @ cosine(X), rtol=1e-5)


def test_item_knn_shrinkage_and_top_k():
    shrunk = create("item_knn", n_neighbors=4, shrinkage=2.0).fit(tiny())
    norms = np.linalg.norm(X, axis=0)
    expected = (X.T @ X) / (np.outer(norms, norms) + 2.0)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(shrunk.similarity_.toarray(), expected, rtol=1e-5)
    top1 = create("item_knn", n_neighbors=1, shrinkage=2.0).fit(tiny())
    assert (np.diff(top1.similarity_.indptr) <= 1).all()


def test_user_knn_scores_are_neighbour_weighted_histories():
    model = create("user_knn", n_neighbors=2).fit(tiny())
    sims = cosine(X.T)
    np.fill_diagonal(sims, 0.0)
    row = sims[0].copy()
    row[np.argsort(-row)[2:]] = 0.0  # keep the two nearest
    np.testing.assert_allclose(model.score(0, np.arange(4))[0], row @ X, rtol=1e-5)
    # a new user (not in training) is served from their current history
    items, _ = model.recommend(np.array([99]), n=2, user_items=sp.csr_matrix(X[[0]]))
    np.testing.assert_array_equal(items, model.recommend(0, n=2)[0])


def test_ease_equals_the_closed_form():
    lam = 3.0
    model = create("ease", regularization=lam, dtype="float64").fit(tiny())
    precision = np.linalg.inv(X.T.astype(np.float64) @ X + lam * np.eye(4))
    weights = -precision / np.diag(precision)[None, :]
    np.fill_diagonal(weights, 0.0)
    np.testing.assert_allclose(model.weights_, weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.score(np.arange(5), np.arange(4)), X @ weights,
                               rtol=1e-5, atol=1e-6)
    single = create("ease", regularization=lam).fit(tiny())
    np.testing.assert_allclose(single.weights_, weights, rtol=1e-4, atol=1e-5)


def test_history_half_life_weights_recent_interactions_more():
    ds = tiny()  # user 3 interacted with i0, i1, i2 in that order
    model = create("ease", regularization=1.0, history_half_life=1.0).fit(ds)
    plain = create("ease", regularization=1.0).fit(ds)
    history = np.array([0.25, 0.5, 1.0, 0.0], dtype=np.float32)
    np.testing.assert_allclose(model.score(3, np.arange(4))[0], history @ plain.weights_,
                               rtol=1e-5)
    # explicit rows (fold-in) are used as given
    np.testing.assert_allclose(model.score(3, np.arange(4), user_items=sp.csr_matrix(X[[3]])),
                               plain.score(3, np.arange(4)), rtol=1e-5)


def test_rp3beta_equals_the_random_walk_formula():
    alpha, beta = 0.7, 0.4
    model = create("rp3beta", alpha=alpha, beta=beta, n_neighbors=4).fit(tiny())
    p_ui = (X / X.sum(1, keepdims=True)) ** alpha
    p_iu = (X.T / X.T.sum(1, keepdims=True)) ** alpha
    weights = (p_iu @ p_ui) / X.sum(0)[None, :] ** beta
    np.fill_diagonal(weights, 0.0)
    np.testing.assert_allclose(model.weights_.toarray(), weights, rtol=1e-5)


def test_als_fold_in_reproduces_a_training_users_vector(block_dataset):
    model = create("als", n_factors=4, n_epochs=15, regularization=0.05, use_cg=False,
                   num_threads=1).fit(block_dataset)
    rows = block_dataset.interactions[:6]
    folded = model.fold_in(rows)
    trained = model.user_factors_[:6]
    cos = (folded * trained).sum(1) / (np.linalg.norm(folded, axis=1)
                                        * np.linalg.norm(trained, axis=1))
    assert cos.min() > 0.99
    # the trained vectors were solved against the previous sweep's item factors: close, not equal
    assert (np.linalg.norm(folded - trained, axis=1) < 0.05 * np.linalg.norm(trained, axis=1)).all()
    # a changed history moves the recommendations: a block-0 user who now likes block 1
    block1 = np.flatnonzero(item_blocks(block_dataset, np.arange(block_dataset.n_items)) == 1)
    new_rows = sp.csr_matrix((np.ones(4), (np.zeros(4), block1[:4])),
                             shape=(1, block_dataset.n_items))
    items, _ = model.recommend(0, n=2, user_items=new_rows)
    assert (item_blocks(block_dataset, items[0]) == 1).all()
    assert user_block(block_dataset, 0) == 0


def test_bpr_ranks_block_items_above_other_items(block_dataset):
    model = create("bpr", n_factors=8, n_epochs=200, learning_rate=0.05).fit(block_dataset)
    scores = model.score(np.arange(block_dataset.n_users), np.arange(block_dataset.n_items))
    blocks = item_blocks(block_dataset, np.arange(block_dataset.n_items))
    own = np.array([scores[u, blocks == user_block(block_dataset, u)].mean()
                    for u in range(block_dataset.n_users)])
    other = np.array([scores[u, blocks != user_block(block_dataset, u)].mean()
                      for u in range(block_dataset.n_users)])
    assert (own > other).mean() >= 0.9


def test_content_recommends_an_item_nobody_has_seen(block_dataset):
    model = create("content").fit(block_dataset)
    unseen = block_dataset.items.get("i0-8")
    assert block_dataset.interactions[:, unseen].nnz == 0
    scores = model.score(np.arange(12), np.arange(block_dataset.n_items))  # block-0 users
    blocks = item_blocks(block_dataset, np.arange(block_dataset.n_items))
    assert (scores[:, unseen] > scores[:, blocks == 1].max(axis=1)).all()
    similar, _ = model.similar_items(unseen, n=3)
    assert (item_blocks(block_dataset, similar[0]) == 0).all()


def test_content_needs_item_features():
    from limelight.errors import SchemaError

    with pytest.raises(SchemaError, match="item features"):
        create("content").fit(tiny())


def test_blend_with_fixed_weights_reproduces_its_component(block_dataset):
    blend = create("blend", models=[("ease", {"regularization": 5.0}), ("popularity", {})],
                   weights=[1.0, 0.0]).fit(block_dataset)
    ease = create("ease", regularization=5.0).fit(block_dataset)
    users = np.arange(block_dataset.n_users)
    np.testing.assert_array_equal(blend.recommend(users, n=3)[0], ease.recommend(users, n=3)[0])


def test_blend_learns_to_ignore_an_uninformative_component(block_dataset):
    blend = create("blend", models=[("ease", {"regularization": 5.0}),
                                    ("popularity", {})], validation_fraction=0.3,
                   n_rounds=3).fit(block_dataset)
    assert blend.weights_[0] > blend.weights_[1]
    assert 0.0 < blend.validation_ndcg_ <= 1.0


def test_als_history_half_life_scores_from_recency_weighted_fold_in(block_dataset):
    from limelight.models.base import recency_weighted

    params = dict(n_factors=4, n_epochs=10, use_cg=False, num_threads=1)
    model = create("als", history_half_life=2.0, **params).fit(block_dataset)
    plain = create("als", **params).fit(block_dataset)
    np.testing.assert_allclose(model.item_factors_, plain.item_factors_)
    vectors = plain.fold_in(recency_weighted(block_dataset, 2.0)[:5])
    np.testing.assert_allclose(model.score(np.arange(5), np.arange(block_dataset.n_items)),
                               vectors @ plain.item_factors_.T, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        create("als", history_half_life=0.0, **params).fit(block_dataset)
