"""Two-stage ranking: the re-ranker fixes what a popularity retriever gets wrong."""

from __future__ import annotations

import numpy as np
import pytest

from limelight.models.two_stage import TwoStageRanker

from .conftest import build_block_dataset, item_blocks, user_block


def in_block_share(dataset, items: np.ndarray) -> float:
    right = total = 0
    for u, row in enumerate(items):
        picked = row[row >= 0]
        right += int((item_blocks(dataset, picked) == user_block(dataset, u)).sum())
        total += len(picked)
    return right / max(total, 1)


@pytest.fixture(scope="module")
def block():
    return build_block_dataset()


def test_gbdt_reranks_popular_candidates_towards_the_users_taste(block):
    users = np.arange(block.n_users)
    popular = TwoStageRanker(retriever="popularity", n_candidates=block.n_items).fit(block)
    baseline = popular.retriever_.recommend(users, n=2)[0]
    reranked = popular.recommend(users, n=2)[0]
    assert popular.n_training_pairs_ > 0
    assert in_block_share(block, reranked) >= 0.9 > in_block_share(block, baseline)


def test_fm_ranker_and_fold_in(block):
    pytest.importorskip("torch")
    model = TwoStageRanker(retriever="item_knn", retriever_params={"n_neighbors": 10},
                           ranker="fm", ranker_params={"n_factors": 8, "n_epochs": 15,
                                                       "batch_size": 32,
                                                       "learning_rate": 0.05,
                                                       "device": "cpu"},
                           n_candidates=6).fit(block)
    items, scores = model.recommend(np.arange(4), n=3)
    assert items.shape == (4, 3) and (scores > 1.0).all()  # candidates come first
    # a new user (beyond the training rows) folds in through user_items
    row = block.interactions[[0]]
    folded, _ = model.recommend(np.array([block.n_users + 3]), n=3, user_items=row)
    assert set(folded[0]) & set(model.recommend(0, n=6)[0][0])


def test_only_candidates_outrank_the_rest(block):
    model = TwoStageRanker(retriever="popularity", n_candidates=4).fit(block)
    scores = model.score(np.arange(3), np.arange(block.n_items))
    assert ((scores > 1.0).sum(axis=1) <= 4).all()
    assert ((scores <= 0.0) & (scores > -1.0)).any()


def test_bad_parameters_are_rejected(block):
    with pytest.raises(ValueError, match="ranker"):
        TwoStageRanker(ranker="svm").fit(block)
    with pytest.raises(ValueError, match="label_fraction"):
        TwoStageRanker(label_fraction=1.5).fit(block)
