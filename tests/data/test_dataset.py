"""Dataset building: event weights, time decay, k-core, side features, store round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from limelight.data.dataset import Dataset, add_features, build_dataset, k_core
from limelight.data.vocab import IdVocab
from limelight.errors import SchemaError

DAY = 86_400
WEIGHTS = {"purchase": 5.0, "click": 1.0, "rating": 1.0, "not_interested": -2.0}


def events_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": ["a", "a", "a", "b", "b", "c", "c"],
        "item_id": ["x", "x", "y", "x", "z", "y", None],
        "type": ["click", "purchase", "rating", "not_interested", "view", "click", "click"],
        "value": [None, None, 4.0, None, None, None, None],
        "timestamp": [10 * DAY, 11 * DAY, 12 * DAY, 5 * DAY, 6 * DAY, 20 * DAY, 20 * DAY],
    })


def matrix_of(ds: Dataset) -> dict[tuple[str, str], float]:
    coo = ds.interactions.tocoo()
    return {(ds.users.ids_of([r])[0], ds.items.ids_of([c])[0]): float(v)
            for r, c, v in zip(coo.row, coo.col, coo.data, strict=True)}


def test_event_weights_sum_per_pair_and_everything_left_out_is_counted():
    ds = Dataset.from_frame(events_frame(), event_weights=WEIGHTS)
    assert matrix_of(ds) == {("a", "x"): 6.0, ("a", "y"): 4.0, ("b", "x"): -2.0,
                             ("c", "y"): 1.0}
    assert ds.report["events_read"] == 7
    assert ds.report["events_without_item"] == 1
    assert ds.report["events_unweighted"] == 1 and ds.report["reasons"] == {"view": 1}
    assert ds.report["events_kept"] == 5 == len(ds.log)
    assert ds.interactions.dtype == np.float32


def test_log_is_sorted_by_user_time_item_and_ratings_keep_the_last_value():
    frame = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["i", "i", "j"],
                          "type": "rating", "value": [2.0, 5.0, 3.0], "timestamp": [2, 1, 3]})
    ds = Dataset.from_frame(frame, event_weights={"rating": 1.0})
    assert ds.log["timestamp"].tolist() == [1, 2, 3]
    assert ds.ratings[0, 0] == 2.0  # the later rating (timestamp 2) wins
    assert ds.interactions[0, 0] == 7.0


def test_time_decay_halves_a_weight_every_half_life():
    frame = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["x", "x", "x"],
                          "timestamp": [100 * DAY, 90 * DAY, 80 * DAY]})
    ds = Dataset.from_frame(frame, half_life_days=10)
    weights = dict(zip(ds.users.ids_of(ds.log["user_idx"]), ds.log["weight"], strict=True))
    assert weights == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.25})
    later = Dataset.from_frame(frame, half_life_days=10, reference_time=110 * DAY)
    assert later.log["weight"].max() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="positive"):
        Dataset.from_frame(frame, half_life_days=0)


def test_k_core_filter_iterates_until_stable():
    # d-w is the only interaction of w; dropping w leaves d with 1 item, so d goes too
    frame = pd.DataFrame({
        "user_id": ["a", "a", "b", "b", "c", "c", "d", "d"],
        "item_id": ["x", "y", "x", "y", "x", "y", "x", "w"],
    })
    kept = k_core(frame, 2, 2)
    assert set(kept["user_id"]) == {"a", "b", "c"} and set(kept["item_id"]) == {"x", "y"}
    assert len(k_core(frame, 1, 1)) == len(frame)
    ds = Dataset.from_frame(frame, min_user_interactions=2, min_item_interactions=2)
    assert "w" not in ds.items and "d" not in ds.users
    assert ds.report["events_filtered"] == 2
    assert ds.report["items_filtered"] == 1 and ds.report["users_filtered"] == 1
    strict = Dataset.from_frame(frame, min_user_interactions=3, min_item_interactions=1)
    assert strict.n_users == 0 and strict.report["users_filtered"] == 4


def test_given_vocabularies_keep_their_indices():
    users, items = IdVocab(["z", "a"]), IdVocab(["y"])
    ds = Dataset.from_frame(events_frame(), event_weights=WEIGHTS, users=users, items=items)
    assert ds.users.ids_of([0, 1]).tolist() == ["z", "a"]
    assert ds.items.index(["y"]).tolist() == [0]
    assert ds.interactions[0].nnz == 0  # "z" has no events but keeps its row


def test_missing_columns_raise_a_named_error():
    with pytest.raises(SchemaError, match="item_id"):
        Dataset.from_frame(pd.DataFrame({"user_id": ["a"]}))


def test_restrict_rebuilds_the_matrix_from_the_kept_log_rows():
    ds = Dataset.from_frame(events_frame(), event_weights=WEIGHTS)
    first_two = ds.restrict(np.arange(len(ds.log)) < 2)
    assert first_two.users is ds.users and first_two.items is ds.items
    assert first_two.interactions.shape == ds.interactions.shape
    assert first_two.interactions.sum() == pytest.approx(ds.log["weight"][:2].sum())
    with pytest.raises(ValueError):
        ds.restrict(np.ones(2, dtype=bool))


def test_user_and_item_features_are_aligned_and_named():
    ds = Dataset.from_frame(events_frame(), event_weights=WEIGHTS)
    users = pd.DataFrame({"user_id": ["a", "b", "stranger"], "age": [23, 61, 30],
                          "gender": ["F", None, "M"], "region": ["north", "south", "east"]})
    items = pd.DataFrame({"item_id": ["x", "y", "unseen"],
                          "title": ["Space Opera", "Quiet Romance", "Space Romance"],
                          "categories": [["scifi"], ["drama", "romance"], ["scifi"]],
                          "tags": [["epic"], None, []]})
    add_features(ds, users, items)
    names = ds.user_feature_names
    row_a = dict(zip(names, ds.user_features[ds.users.get("a")].toarray()[0], strict=True))
    assert row_a["age=18-24"] == 1 and row_a["gender=F"] == 1 and row_a["region=north"] == 1
    assert sum(row_a.values()) == 3
    row_b = dict(zip(names, ds.user_features[ds.users.get("b")].toarray()[0], strict=True))
    assert row_b["age=56+"] == 1 and sum(v for k, v in row_b.items() if "gender" in k) == 0
    assert ds.user_features[ds.users.get("c")].nnz == 0  # no users row: all zeros
    assert "region=east" not in names  # the stranger is not in the dataset
    inames = ds.item_feature_names
    assert {"category=scifi", "category=drama", "category=romance", "tag=epic"} <= set(inames)
    assert {"text=space", "text=opera", "text=romance"} <= set(inames)
    y = dict(zip(inames, ds.item_features[ds.items.get("y")].toarray()[0], strict=True))
    assert y["category=drama"] == 1 and y["category=romance"] == 1 and y["text=quiet"] > 0
    assert y["text=space"] == 0
    assert ds.item_features.shape == (ds.n_items, len(inames))


def test_build_dataset_reads_the_store_with_the_default_weights():
    from limelight.data.ingest import ingest_frame
    from limelight.store import open_store

    store = open_store("memory://")
    frame = events_frame().dropna(subset=["item_id"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"] + 1_600_000_000, unit="s", utc=True)
    report = ingest_frame(store, frame)
    assert report.accepted == len(frame)
    ingest_frame(store, pd.DataFrame({"item_id": ["x", "y"], "title": ["Space", "Romance"],
                                      "categories": [["scifi"], ["drama"]]}), entity="items")
    ingest_frame(store, pd.DataFrame({"user_id": ["a", "b"], "age": [30, 40]}),
                 entity="users")
    ds = build_dataset(store)
    # defaults: purchase 5 + click 1, rating 1 x 4, not_interested -2, view 0.5, click 1
    assert matrix_of(ds) == {("a", "x"): 6.0, ("a", "y"): 4.0, ("b", "x"): -2.0,
                             ("b", "z"): 0.5, ("c", "y"): 1.0}
    assert "category=scifi" in ds.item_feature_names
    assert "age=25-34" in ds.user_feature_names
    assert ds.item_features.shape[0] == ds.n_items
    decayed = build_dataset(store, half_life_days=1, with_features=False)
    assert decayed.item_features is None
    assert decayed.interactions.sum() < ds.interactions.sum()
    core = build_dataset(store, min_user_interactions=2, with_features=False)
    assert set(core.users.to_list()) == {"a", "b"}


def test_json_encoded_lists_and_extra_attributes_become_features():
    ds = Dataset.from_frame(events_frame(), event_weights=WEIGHTS)
    users = pd.DataFrame({"user_id": ["a", "b"],
                          "extra": ['{"occupation": "writer", "zip": "123"}', "not json"]})
    items = pd.DataFrame({"item_id": ["x", "y"], "categories": ['["Drama", "War"]', "Comedy"]})
    add_features(ds, users, items)
    assert "occupation=writer" in ds.user_feature_names
    assert "zip=123" in ds.user_feature_names  # one distinct value: few enough to one-hot
    assert ds.user_features[ds.users.get("b")].nnz == 0
    assert {"category=Drama", "category=War", "category=Comedy"} <= set(ds.item_feature_names)


@pytest.mark.realdata
def test_movielens_100k_features(ml100k_dir):
    from limelight.data.sources import load_movielens_100k

    frames = load_movielens_100k(ml100k_dir)
    ds = Dataset.from_frame(frames["events"], event_weights={"rating": 1.0})
    add_features(ds, frames["users"], frames["items"])
    categories = [n for n in ds.item_feature_names if n.startswith("category=")]
    assert len(categories) == 19  # 18 genres and "unknown"
    occupations = [n for n in ds.user_feature_names if n.startswith("occupation=")]
    assert len(occupations) == 21
    assert ds.user_features.sum(axis=1).min() == 3  # one age bin, one gender, one occupation
    assert ds.ratings.nnz == 100_000 and ds.ratings.max() == 5.0
