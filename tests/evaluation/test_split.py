"""Splitters: no leakage, temporal order respected, shared vocabularies, official folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from limelight.data.dataset import Dataset
from limelight.errors import SchemaError
from limelight.evaluation.split import (
    GlobalTimeCut,
    HeldOutUsers,
    LeaveLastOut,
    RandomHoldout,
    TemporalHoldout,
    binarize,
    ml100k_dataset,
    ml100k_fold,
)


def _events(n_users: int = 30, n_items: int = 40, per_user: int = 12, seed: int = 0
            ) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        items = rng.choice(n_items, size=per_user, replace=False)
        times = rng.integers(0, 1000, size=per_user)  # ties on purpose
        for i, t in zip(items, times, strict=True):
            rows.append({"user_id": f"u{u}", "item_id": f"i{i}", "type": "click",
                         "timestamp": int(t)})
    # a repeated pair: the same item clicked twice, early and late
    rows.append({"user_id": "u0", "item_id": rows[0]["item_id"], "type": "click",
                 "timestamp": 5000})
    return pd.DataFrame(rows)


@pytest.fixture
def dataset() -> Dataset:
    return Dataset.from_frame(_events(), event_weights={"click": 1.0})


def _pairs(ds: Dataset) -> set[tuple[int, int]]:
    return set(zip(ds.log["user_idx"].tolist(), ds.log["item_idx"].tolist(), strict=True))


ALL_SPLITTERS = [TemporalHoldout(0.2), RandomHoldout(0.2, random_state=3), GlobalTimeCut(),
                 LeaveLastOut(2), HeldOutUsers(0.2, given=3, random_state=1)]


@pytest.mark.parametrize("splitter", ALL_SPLITTERS, ids=lambda s: type(s).__name__)
def test_no_leakage_and_shared_vocab(dataset: Dataset, splitter) -> None:
    train, test = splitter.split(dataset)
    assert train.users is dataset.users and test.items is dataset.items
    assert train.interactions.shape == test.interactions.shape == dataset.interactions.shape
    assert len(test.log) > 0 and len(train.log) > 0
    # a test (user, item) pair never appears in training, not even as an earlier repeat
    assert not (_pairs(train) & _pairs(test))
    # the matrices agree with the logs
    assert train.interactions.multiply(test.interactions).nnz == 0
    if not isinstance(splitter, HeldOutUsers):  # cold start leaves the history out of both
        assert len(train.log) + len(test.log) == len(dataset.log)


@pytest.mark.parametrize("splitter", [TemporalHoldout(0.2), LeaveLastOut(2)],
                         ids=lambda s: type(s).__name__)
def test_temporal_splits_never_train_on_a_later_event(dataset: Dataset, splitter) -> None:
    train, test = splitter.split(dataset)
    # an interaction's time is its latest event: a pair repeated later moves to test whole
    pair_time = lambda ds: ds.log.groupby(["user_idx", "item_idx"])["timestamp"].max()  # noqa: E731
    last_train = pair_time(train).groupby("user_idx").max()
    first_test = pair_time(test).groupby("user_idx").min()
    both = last_train.index.intersection(first_test.index)
    assert len(both) > 0
    assert (last_train[both] <= first_test[both]).all()


def test_temporal_split_on_single_events_orders_raw_times() -> None:
    ds = Dataset.from_frame(_events().iloc[:-1])  # no repeated pair
    train, test = TemporalHoldout(0.25).split(ds)
    last_train = train.log.groupby("user_idx")["timestamp"].max()
    first_test = test.log.groupby("user_idx")["timestamp"].min()
    assert (last_train <= first_test[last_train.index]).all()


def test_temporal_holdout_takes_ceil_fraction_by_time_then_item() -> None:
    # one user, 6 items; items "a" and "b" share the last timestamp: the higher index goes last
    frame = pd.DataFrame({"user_id": ["u"] * 6, "item_id": list("cdefba"),
                          "timestamp": [1, 2, 3, 4, 9, 9]})
    ds = Dataset.from_frame(frame)
    _, test = TemporalHoldout(0.2).split(ds)  # ceil(6 * 0.2) = 2
    assert sorted(ds.items.ids_of(test.log["item_idx"]).tolist()) == ["a", "b"]
    _, test = TemporalHoldout(0.1).split(ds)  # ceil(0.6) = 1: index order breaks the tie
    assert ds.items.ids_of(test.log["item_idx"]).tolist() == ["a"]  # "a" has the higher index


def test_global_time_cut(dataset: Dataset) -> None:
    splitter = GlobalTimeCut(cut=500)
    train, test = splitter.split(dataset)
    pair_last = dataset.log.groupby(["user_idx", "item_idx"])["timestamp"].max()
    test_keys = set(zip(test.log["user_idx"], test.log["item_idx"], strict=True))
    for key, last in pair_last.items():
        assert (key in test_keys) == (last >= 500)
    assert train.log["timestamp"].max() < 500 or (train.log["timestamp"] >= 500).sum() == 0


def test_leave_last_out_counts(dataset: Dataset) -> None:
    _, test = LeaveLastOut(3).split(dataset)
    assert (test.log.groupby("user_idx")["item_idx"].nunique() == 3).all()


def test_random_holdout_is_reproducible_and_per_user(dataset: Dataset) -> None:
    a = RandomHoldout(0.25, random_state=7).split(dataset)[1]
    b = RandomHoldout(0.25, random_state=7).split(dataset)[1]
    c = RandomHoldout(0.25, random_state=8).split(dataset)[1]
    assert _pairs(a) == _pairs(b) != _pairs(c)
    assert (a.log.groupby("user_idx")["item_idx"].nunique() == 3).all()  # ceil(12 * .25)


def test_held_out_users_leave_training_entirely(dataset: Dataset) -> None:
    train, history, test = HeldOutUsers(0.2, given=4, random_state=0).split_with_history(
        dataset)
    held = set(test.log["user_idx"])
    assert len(held) == 6  # ceil(30 * 0.2)
    assert not held & set(train.log["user_idx"])
    assert set(history.log["user_idx"]) == held
    assert (history.log.groupby("user_idx")["item_idx"].nunique() == 4).all()
    assert not _pairs(history) & _pairs(test)


def test_binarize_keeps_values(dataset: Dataset) -> None:
    rated = Dataset.from_frame(pd.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "y"],
                                             "type": "rating", "value": [4.0, 2.0]}))
    flat = binarize(rated)
    assert flat.interactions.toarray().tolist() == [[1.0, 1.0]]
    assert flat.ratings.toarray().tolist() == [[4.0, 2.0]]


def test_split_needs_a_log() -> None:
    empty = Dataset.from_frame(pd.DataFrame({"user_id": [], "item_id": []}))
    with pytest.raises(SchemaError):
        TemporalHoldout().split(empty)


@pytest.mark.realdata
def test_ml100k_official_folds(ml100k_dir) -> None:
    train, test = ml100k_fold(ml100k_dir, 1)
    assert train.users is test.users
    assert (train.n_users, train.n_items) == (943, 1682)
    assert train.ratings.nnz == 80_000 and test.ratings.nnz == 20_000
    assert train.ratings.multiply(test.ratings).nnz == 0
    # user "1" is row 0, item "1" is column 0 (numeric order), ratings kept as values
    assert train.users.index(["1"])[0] == 0 and train.items.index(["1"])[0] == 0
    assert set(np.unique(test.ratings.data)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    with pytest.raises(ValueError):
        ml100k_fold(ml100k_dir, 6)


@pytest.mark.realdata
def test_ml100k_temporal_split_matches_protocol(ml100k_dir) -> None:
    ds = ml100k_dataset(ml100k_dir, implicit=True)
    train, test = TemporalHoldout(0.2).split(ds)
    assert ds.interactions.nnz == 100_000
    assert (train.interactions.nnz, test.interactions.nnz) == (79_619, 20_381)
