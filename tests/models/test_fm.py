"""Factorization machine: every loss learns tastes; cold start through features; context."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

pytest.importorskip("torch")

from limelight.data.dataset import Dataset
from limelight.data.vocab import IdVocab
from limelight.models.fm import FactorizationMachine

N_USERS, N_HELD_OUT, ITEMS_PER_CATEGORY = 40, 6, 10
MORNING, EVENING = 8 * 3600, 20 * 3600  # seconds after midnight UTC


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def taste_dataset(seed: int = 0) -> Dataset:
    """Users of group A pick items of category a, group B of category b. The last
    ``N_HELD_OUT`` users (half A, half B) have features but no events (cold start)."""
    rng = np.random.default_rng(seed)
    users = IdVocab([f"u{u}" for u in range(N_USERS)])
    items = IdVocab([f"i{i}" for i in range(2 * ITEMS_PER_CATEGORY)])
    group = np.arange(N_USERS) % 2                      # 0 = A, 1 = B
    rows = []
    for u in range(N_USERS - N_HELD_OUT):
        picked = rng.choice(ITEMS_PER_CATEGORY, size=5, replace=False)
        for k, i in enumerate(picked):
            rows.append((f"u{u}", f"i{group[u] * ITEMS_PER_CATEGORY + i}", 86_400 * k + MORNING))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    dataset = Dataset.from_frame(events, users=users, items=items)
    dataset.user_features = sp.csr_matrix(np.eye(2, dtype=np.float32)[group])
    dataset.user_feature_names = ["group=A", "group=B"]
    category = np.arange(2 * ITEMS_PER_CATEGORY) // ITEMS_PER_CATEGORY
    dataset.item_features = sp.csr_matrix(np.eye(2, dtype=np.float32)[category])
    dataset.item_feature_names = ["category=a", "category=b"]
    return dataset


def small_fm(**params) -> FactorizationMachine:
    defaults = {"n_factors": 8, "n_epochs": 25, "batch_size": 32, "learning_rate": 0.05,
                "user_id_dropout": 0.5, "item_id_dropout": 0.2, "early_stopping": False,
                "device": "cpu"}
    return FactorizationMachine(**{**defaults, **params})


@pytest.fixture(scope="module")
def taste():
    import torch

    torch.set_num_threads(1)
    dataset = taste_dataset()
    return dataset, small_fm().fit(dataset)


def category_of(items: np.ndarray) -> np.ndarray:
    return items // ITEMS_PER_CATEGORY


@pytest.mark.parametrize("loss", ["bpr", "warp", "logistic", "softmax"])
def test_every_loss_learns_the_users_taste(loss):
    dataset = taste_dataset(seed=1)
    # WARP's hardest-of-k negative is an unseen item of the user's own taste when k is large
    # next to a 20-item catalogue, so it samples fewer
    extra = {"n_negatives": 5} if loss == "warp" else {}
    model = small_fm(loss=loss, **extra).fit(dataset)
    warm = np.arange(N_USERS - N_HELD_OUT)
    top, _ = model.recommend(warm, n=3)
    share = (category_of(top) == (warm % 2)[:, None]).mean()
    assert share >= 0.9, f"{loss}: only {share:.0%} of recommendations match the taste"


def test_users_unseen_in_training_are_scored_by_their_features(taste):
    _, model = taste
    held_out = np.arange(N_USERS - N_HELD_OUT, N_USERS)
    assert model.user_items_[held_out].nnz == 0
    top, _ = model.recommend(held_out, n=5)
    assert (category_of(top) == (held_out % 2)[:, None]).all()


def test_recommend_cold_from_feature_names_and_rows(taste):
    _, model = taste
    by_name, _ = model.recommend_cold([["group=A"], {"group=B": 1.0}], n=5)
    by_row, _ = model.recommend_cold(sp.csr_matrix(np.array([[1, 0], [0, 1]], np.float32)), n=5)
    np.testing.assert_array_equal(by_name, by_row)
    assert (category_of(by_name[0]) == 0).all() and (category_of(by_name[1]) == 1).all()
    model.feature_rows([["group=A", "planet=Mars"]])
    assert model.last_unknown_ == 1
    with pytest.raises(ValueError, match="columns"):
        model.recommend_cold(np.ones((1, 3)))


def test_items_unseen_in_training_are_scored_by_their_features(taste):
    _, model = taste
    scores = model.score_cold([["group=A"], ["group=B"]],
                              [["category=a"], ["category=b"]])
    assert scores.shape == (2, 2)
    assert scores[0, 0] > scores[0, 1] and scores[1, 1] > scores[1, 0]


def test_save_load_keeps_cold_start_scores(taste, tmp_path):
    _, model = taste
    loaded = FactorizationMachine.load(model.save(tmp_path / "fm.pkl"))
    np.testing.assert_allclose(loaded.score_cold([["group=B"]]), model.score_cold([["group=B"]]),
                               rtol=1e-6)


def test_context_changes_the_ranking():
    """Mornings go to items 0-4, evenings to items 5-9, for every user."""
    rng = np.random.default_rng(2)
    rows = []
    for u in range(30):
        for day in range(6):
            rows.append((f"u{u}", f"i{rng.integers(5)}", 86_400 * day + MORNING))
            rows.append((f"u{u}", f"i{5 + rng.integers(5)}", 86_400 * day + EVENING))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    dataset = Dataset.from_frame(events, items=IdVocab([f"i{i}" for i in range(10)]))
    model = small_fm(loss="softmax", n_epochs=30).fit(dataset)
    assert {"time_of_day=morning", "time_of_day=evening"} <= set(model.context_names_)
    users = np.arange(dataset.n_users)
    morning, _ = model.recommend_with_context(users, {"time_of_day": "morning"}, n=3,
                                              exclude_seen=False)
    evening, _ = model.recommend_with_context(users, {"time_of_day": "evening"}, n=3,
                                              exclude_seen=False)
    assert (morning < 5).mean() >= 0.9 and (evening >= 5).mean() >= 0.9


def test_bad_loss_is_rejected():
    with pytest.raises(ValueError, match="loss must be"):
        small_fm(loss="hinge").fit(taste_dataset())


def test_features_only_users_are_scored_by_their_features_alone():
    """With the user id always hidden (dropout 1), a trained user is exactly the vector of
    their features: their scores equal a new user's with the same features."""
    dataset = taste_dataset(seed=3)
    model = small_fm(loss="softmax", user_id_dropout=1.0).fit(dataset)
    warm = np.arange(4)
    names = [["group=A"] if u % 2 == 0 else ["group=B"] for u in warm]
    np.testing.assert_allclose(model._score_users(warm, model.user_items_[warm]),
                               model.score_cold(names), rtol=1e-5,
                               atol=1e-5)
    # ... and the features carry the taste: each group's own category ranks first
    top, _ = model.recommend_cold([["group=A"], ["group=B"]], n=5)
    assert (category_of(top[0]) == 0).all() and (category_of(top[1]) == 1).all()


def test_softmax_starts_from_item_popularity():
    """Before any epoch the softmax model ranks by training popularity (item biases start at
    log frequency), so training only has to learn how features move away from it."""
    dataset = taste_dataset(seed=4)
    model = small_fm(loss="softmax", n_epochs=0, user_id_dropout=1.0).fit(dataset)
    counts = np.asarray(dataset.interactions.sum(axis=0)).ravel()
    scores = model.score_cold([["group=A"]])[0]
    more_popular = counts[:, None] > counts[None, :]
    assert (scores[:, None] > scores[None, :])[more_popular].all()


def test_validation_on_held_out_users_stops_early_and_keeps_them_cold():
    dataset = taste_dataset(seed=5)
    model = small_fm(loss="softmax", early_stopping=True, validation="users",
                     validation_fraction=0.25, n_epochs=40, patience=2).fit(dataset)
    assert all("valid_ndcg10" in h for h in model.history_)
    assert len(model.history_) < 40          # it stopped on its own
    # the validation users were scored from their features: their ids are switched off
    assert (model.user_val_[:, 0] == 0).sum() > N_HELD_OUT
    held_out = np.arange(N_USERS - N_HELD_OUT, N_USERS)
    top, _ = model.recommend(held_out, n=5)
    assert (category_of(top) == (held_out % 2)[:, None]).mean() >= 0.9
    with pytest.raises(ValueError, match="validation must be"):
        small_fm(validation="later").fit(dataset)
