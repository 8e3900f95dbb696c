"""SASRec: learns a known sequential pattern, answers from the current sequence, persists."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from limelight.data.dataset import Dataset
from limelight.data.vocab import IdVocab
from limelight.errors import UnknownIdError
from limelight.models.sasrec import SASRec

N_ITEMS = 12


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def successor_dataset(n_users: int = 60, length: int = 6, seed: int = 0) -> Dataset:
    """Every user walks the ring 0 -> 1 -> ... -> 11 -> 0 from a random start."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        start = int(rng.integers(N_ITEMS))
        for step in range(length):
            rows.append((f"u{u}", f"i{(start + step) % N_ITEMS}", 1_000 + 60 * step))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Dataset.from_frame(events, items=IdVocab([f"i{k}" for k in range(N_ITEMS)]))


def item_number(dataset: Dataset, idx: np.ndarray) -> np.ndarray:
    return np.array([int(x[1:]) for x in dataset.items.ids_of(idx)])


def item_index(dataset: Dataset, numbers: list[int]) -> np.ndarray:
    return dataset.items.index([f"i{k}" for k in numbers])


@pytest.fixture(scope="module")
def ring() -> tuple[Dataset, SASRec]:
    import torch

    torch.set_num_threads(1)
    dataset = successor_dataset()
    model = SASRec(n_factors=32, n_layers=1, n_heads=1, max_len=8, dropout=0.0, n_epochs=60,
                   batch_size=32, learning_rate=0.01, device="cpu").fit(dataset)
    return dataset, model


def test_learns_that_item_i_is_followed_by_i_plus_1(ring):
    dataset, model = ring
    prefixes = [item_index(dataset, [(s + k) % N_ITEMS for k in range(3)]) for s in range(N_ITEMS)]
    top, _ = model.recommend_from_sequence(prefixes, n=1)
    predicted = item_number(dataset, top[:, 0])
    expected = np.array([(s + 3) % N_ITEMS for s in range(N_ITEMS)])
    assert (predicted == expected).mean() >= 0.9, (predicted, expected)


def test_a_new_event_changes_the_next_answer_without_retraining(ring):
    dataset, model = ring
    before, _ = model.recommend_from_sequence([item_index(dataset, [2, 3])], n=1)
    after, _ = model.recommend_from_sequence([item_index(dataset, [2, 3, 4])], n=1)
    assert item_number(dataset, before[0]).tolist() == [4]
    assert item_number(dataset, after[0]).tolist() == [5]


def test_user_items_fold_in_appends_unseen_items_last(ring):
    dataset, model = ring
    user = 0
    history = model.sequences_[user]
    last = int(item_number(dataset, history[-1:])[0])
    new_item = item_index(dataset, [(last + 1) % N_ITEMS])[0]
    row = dataset.interactions[[user]].copy().tolil()
    row[0, new_item] = 1.0
    top, _ = model.recommend(user, n=1, user_items=row.tocsr())
    assert item_number(dataset, top[0]).tolist() == [(last + 2) % N_ITEMS]


def test_empty_history_falls_back_to_popularity(ring):
    _, model = ring
    scores = model.score_sequences([[]])
    np.testing.assert_allclose(scores[0], model.item_popularity_)


def test_save_load_keeps_scores(ring, tmp_path):
    _, model = ring
    loaded = SASRec.load(model.save(tmp_path / "sasrec.pkl"))
    np.testing.assert_allclose(loaded.score_sequences([[1, 2, 3], [7]]),
                               model.score_sequences([[1, 2, 3], [7]]), rtol=1e-5, atol=1e-5)


def test_rejects_unknown_items_and_bad_parameters(ring):
    _, model = ring
    with pytest.raises(UnknownIdError):
        model.score_sequences([[0, N_ITEMS + 5]])
    with pytest.raises(ValueError, match="loss"):
        SASRec(loss="hinge", n_epochs=1).fit(successor_dataset(n_users=4))
    with pytest.raises(ValueError, match="multiple of n_heads"):
        SASRec(n_factors=10, n_heads=3, n_epochs=1).fit(successor_dataset(n_users=4))


def test_sampled_softmax_and_early_stopping_learn_the_pattern():
    dataset = successor_dataset(n_users=40, length=6, seed=1)
    model = SASRec(n_factors=32, n_layers=1, n_heads=2, max_len=8, dropout=0.0, n_epochs=40,
                   batch_size=32, learning_rate=0.01, loss="sampled", n_negatives=6,
                   target_window=2, early_stopping=True, patience=40,
                   device="cpu").fit(dataset)
    assert "valid_ndcg10" in model.history_[0]
    assert max(h["valid_ndcg10"] for h in model.history_) > 0.8
    top, _ = model.recommend_from_sequence([item_index(dataset, [5, 6])], n=1)
    assert item_number(dataset, top[0]).tolist() == [7]
