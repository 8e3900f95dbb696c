"""Approximate retrieval (faiss) for factor models: recall against exact scoring, the index
really answering, exact re-scoring, fold-in, persistence, determinism, errors."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from limelight.data.dataset import Dataset
from limelight.models.ann import ANNRetriever, MissingFaissError
from limelight.models.base import Recommender
from limelight.models.registry import create

pytest.importorskip("faiss")

N_USERS, N_ITEMS, N_TOPICS = 400, 3000, 12
ALS_PARAMS = {"n_factors": 16, "n_epochs": 8, "num_threads": 1}


@pytest.fixture(scope="module")
def catalogue() -> Dataset:
    """Users who each like a few topics of a 3,000-item catalogue with a popularity tail."""
    rng = np.random.default_rng(7)
    topic = rng.integers(0, N_TOPICS, N_ITEMS)
    weight = 1.0 / (1.0 + np.arange(N_ITEMS)) ** 0.6
    rows = []
    for u in range(N_USERS):
        liked = rng.choice(N_TOPICS, 2, replace=False)
        pool = np.flatnonzero(np.isin(topic, liked))
        p = weight[pool] / weight[pool].sum()
        for t, i in enumerate(rng.choice(pool, 30, replace=False, p=p)):
            rows.append((f"u{u}", f"i{i}", 1_700_000_000 + 60 * t))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Dataset.from_frame(frame)


@pytest.fixture(scope="module")
def ivf(catalogue: Dataset) -> ANNRetriever:
    return ANNRetriever("als", ALS_PARAMS, n_probe=8).fit(catalogue)


def _recall(approx: np.ndarray, exact: np.ndarray) -> float:
    hits = [len(set(a[a >= 0]) & set(e[e >= 0])) / max((e >= 0).sum(), 1)
            for a, e in zip(approx, exact, strict=True)]
    return float(np.mean(hits))


def test_top_n_matches_exact_scoring_closely(catalogue, ivf):
    users = np.arange(N_USERS)
    approx, scores = ivf.recommend(users, n=50)
    exact, _ = Recommender.recommend(ivf, users, n=50)   # the base model's exact top-50
    assert _recall(approx, exact) >= 0.9
    # the returned scores are the base model's own, not index distances
    np.testing.assert_allclose(scores, ivf.base_.score(users, approx), rtol=1e-4, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_the_index_answers(catalogue, ivf):
    """One probed cell of ~54 finds far fewer of the exact top items than eight: the answers
    come from the index, not from scoring every item."""
    users = np.arange(N_USERS)
    exact, _ = Recommender.recommend(ivf, users, n=50)
    one = ANNRetriever("als", ALS_PARAMS, n_probe=1).fit(catalogue)
    assert one.index_.ntotal == catalogue.n_items
    assert _recall(one.recommend(users, n=50)[0], exact) < \
        _recall(ivf.recommend(users, n=50)[0], exact) - 0.1


def test_seen_items_are_excluded_and_fold_in_uses_current_history(catalogue, ivf):
    users = np.arange(50)
    items, _ = ivf.recommend(users, n=40)
    for u in users:
        assert not set(catalogue.interactions[u].indices) & set(items[u].tolist())
    # a new history: the user's vector is folded in from it, and its items are excluded
    history = sp.csr_matrix(catalogue.interactions[[5]].toarray())
    folded, _ = ivf.recommend([0], n=20, user_items=history)
    assert not set(history.indices) & set(folded[0].tolist())
    exact, _ = Recommender.recommend(ivf, [0], n=20, user_items=history)
    assert _recall(folded, exact) >= 0.8
    assert _recall(folded, ivf.recommend([0], n=20)[0]) < 0.5  # not user 0's own list


def test_candidates_and_long_lists_are_scored_exactly(catalogue, ivf):
    allowed = np.arange(0, catalogue.n_items, 7)
    items, _ = ivf.recommend([1, 2], n=10, candidates=allowed)
    exact, _ = Recommender.recommend(ivf, [1, 2], n=10, candidates=allowed)
    np.testing.assert_array_equal(items, exact)
    items, _ = ivf.recommend([1], n=catalogue.n_items)   # all items: the exact path, padded with -1
    assert (items[0] == -1).sum() == catalogue.interactions[1].nnz


def test_save_load_and_determinism(catalogue, ivf, tmp_path):
    users = np.arange(30)
    before = ivf.recommend(users, n=20)
    loaded = ANNRetriever.load(ivf.save(tmp_path / "ann.pkl"))
    assert loaded.index_.nprobe == 8
    for got, want in zip(loaded.recommend(users, n=20), before, strict=True):
        np.testing.assert_array_equal(got, want)
    again = ANNRetriever("als", ALS_PARAMS, n_probe=8).fit(catalogue)
    np.testing.assert_array_equal(again.recommend(users, n=20)[0], before[0])
    np.testing.assert_array_equal(faiss_centroids(again), faiss_centroids(ivf))


def faiss_centroids(model: ANNRetriever) -> np.ndarray:
    quantizer = model.index_.quantizer
    return quantizer.reconstruct_n(0, quantizer.ntotal)


def test_an_index_over_a_fitted_model_shares_it(catalogue, ivf):
    over = ANNRetriever.over(ivf.base_, n_probe=8)
    assert over.base_ is ivf.base_ and over.base == "als"
    for got, want in zip(over.recommend(np.arange(20), n=15),
                         ivf.recommend(np.arange(20), n=15), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="not a factor model"):
        ANNRetriever.over(create("popularity").fit(catalogue))
    with pytest.raises(ValueError, match="n_probe and n_lists must be positive"):
        ANNRetriever.over(ivf.base_, n_lists=0)


def test_two_stage_ranker_takes_candidates_from_the_index(catalogue):
    model = create("two_stage", retriever="ann",
                   retriever_params={"base_params": ALS_PARAMS, "n_probe": 8},
                   n_candidates=30).fit(catalogue)
    assert isinstance(model.retriever_, ANNRetriever)
    items, scores = model.recommend(np.arange(20), n=10)
    assert items.shape == (20, 10) and (items >= 0).all()
    assert np.all(scores >= 1.0)  # stage-two scores: every item shown is a candidate


def test_bad_parameters_and_missing_faiss(catalogue, monkeypatch):
    with pytest.raises(ValueError, match="n_probe and n_lists must be positive"):
        ANNRetriever(n_probe=0).fit(catalogue)
    with pytest.raises(ValueError, match="not a factor model"):
        ANNRetriever(base="ease").fit(catalogue)
    with pytest.raises(ValueError, match="n must be positive"):
        ANNRetriever("als", ALS_PARAMS).fit(catalogue).recommend([0], n=0)
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(MissingFaissError, match=r"pip install 'limelight\[ann\]'"):
        ANNRetriever("als", ALS_PARAMS).fit(catalogue)
