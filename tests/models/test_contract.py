"""The Recommender contract, checked on every registered model (see ``MODEL_FACTORIES``)."""

from __future__ import annotations

import numpy as np
import pytest

from limelight.errors import NotFittedError
from limelight.models.base import Recommender
from limelight.models.registry import MODELS, UnknownModelError, create

from .conftest import BLOCK_LEARNERS, MODEL_FACTORIES, item_blocks, user_block

IDS = [name for name, _ in MODEL_FACTORIES]


@pytest.fixture(scope="module", params=MODEL_FACTORIES, ids=IDS)
def fitted(request, block_dataset):
    name, factory = request.param
    model = factory()
    assert model.fit(block_dataset) is model
    return name, factory, model


def test_every_registered_model_is_in_the_suite():
    covered = {type(factory()).__name__ for _, factory in MODEL_FACTORIES}
    classic = {"popularity", "item_knn", "user_knn", "als", "bpr", "ease", "rp3beta", "content",
               "mf_als", "mf_sgd", "knn_baseline", "blend"}
    assert classic <= set(MODELS)
    assert {MODELS[name].__name__ for name in classic} <= covered


def test_registry_rejects_unknown_names_and_parameters():
    with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
        create("nope")
    with pytest.raises(ValueError, match="bad parameters"):
        create("ease", not_a_parameter=1)


def test_recommend_shapes_and_order(fitted, block_dataset):
    _, _, model = fitted
    items, scores = model.recommend(np.array([0, 1, 2]), n=4)
    assert items.shape == (3, 4) and scores.shape == (3, 4)
    assert items.dtype == np.int64 and scores.dtype == np.float32
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    single_items, _ = model.recommend(0, n=4)
    assert single_items.shape == (1, 4)
    np.testing.assert_array_equal(single_items[0], items[0])


def test_exclude_seen_is_honoured(fitted, block_dataset):
    _, _, model = fitted
    users = np.arange(block_dataset.n_users)
    items, _ = model.recommend(users, n=block_dataset.n_items)
    for u in users:
        seen = set(block_dataset.interactions[u].indices)
        assert not seen & set(items[u][items[u] >= 0].tolist())
    # asking for more than is left pads with -1 / -inf
    n_seen = block_dataset.interactions[0].nnz
    assert (items[0] == -1).sum() == n_seen
    kept, _ = model.recommend(0, n=block_dataset.n_items, exclude_seen=False)
    assert (kept[0] >= 0).all()


def test_candidates_are_honoured(fitted, block_dataset):
    _, _, model = fitted
    candidates = np.array([1, 3, 9, 12, 17])
    items, _ = model.recommend(np.arange(6), n=3, candidates=candidates, exclude_seen=False)
    assert set(items[items >= 0].tolist()) <= set(candidates.tolist())


def test_score_agrees_with_recommend(fitted, block_dataset):
    _, _, model = fitted
    users = np.array([0, 5, 14])
    items, scores = model.recommend(users, n=5)
    direct = model.score(users, np.where(items >= 0, items, 0))
    mask = items >= 0
    np.testing.assert_allclose(direct[mask], scores[mask], rtol=1e-5, atol=1e-5)
    same_items = model.score(users, np.array([2, 4]))
    assert same_items.shape == (3, 2) and same_items.dtype == np.float32


def test_similar_items_leave_the_item_out(fitted, block_dataset):
    _, _, model = fitted
    query = np.array([0, 3, 10])
    items, _ = model.similar_items(query, n=5)
    assert items.shape == (3, 5)
    for row, item in zip(items, query, strict=True):
        assert item not in row


def test_save_load_round_trip(fitted, block_dataset, tmp_path):
    _, _, model = fitted
    path = model.save(tmp_path / "model.pkl")
    loaded = type(model).load(path)
    users = np.array([0, 3, 20])
    for a, b in zip(model.recommend(users, n=5), loaded.recommend(users, n=5), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.score(users, np.arange(6)),
                                  loaded.score(users, np.arange(6)))
    assert Recommender.load(path).get_params().keys() == model.get_params().keys()


def test_unfitted_use_raises(fitted, tmp_path):
    _, factory, _ = fitted
    model = factory()
    for call in (lambda: model.recommend(0), lambda: model.score(0, [1]),
                 lambda: model.similar_items(0), lambda: model.save(tmp_path / "m.pkl")):
        with pytest.raises(NotFittedError):
            call()


def test_fitting_twice_is_deterministic(fitted, block_dataset):
    _, factory, model = fitted
    again = factory().fit(block_dataset)
    users = np.arange(block_dataset.n_users)
    np.testing.assert_allclose(again.score(users, np.arange(block_dataset.n_items)),
                               model.score(users, np.arange(block_dataset.n_items)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(BLOCK_LEARNERS))
def test_recommendations_stay_in_the_users_block(name, block_dataset):
    model = dict(MODEL_FACTORIES)[name]().fit(block_dataset)
    users = np.arange(block_dataset.n_users)
    items, _ = model.recommend(users, n=2)
    wrong = 0
    for u in users:
        picked = items[u][items[u] >= 0]
        wrong += int((item_blocks(block_dataset, picked) != user_block(block_dataset, u)).sum())
    assert wrong == 0, f"{name}: {wrong} cross-block recommendations"
