"""Each serving stage on hand-checkable inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from limelight.data.vocab import IdVocab
from limelight.pipeline.candidates import GroupPopularity, age_band, candidate_pool, user_groups
from limelight.pipeline.catalog import build_catalog
from limelight.pipeline.context import RecRequest, UserContext
from limelight.pipeline.exposure import ExposureCounter
from limelight.pipeline.filters import (
    BoostBuryFilter,
    CategoryFilter,
    PriceFilter,
    SeenFilter,
    StockFilter,
)
from limelight.pipeline.history import HistoryIndex
from limelight.pipeline.rerankers import (
    CategoryCapReranker,
    MMRReranker,
    NoveltyReranker,
    intra_list_diversity,
)


def _catalog() -> object:
    items = pd.DataFrame({
        "item_id": ["a", "b", "c", "d", "e"],
        "categories": [["x"], ["x"], ["y"], ["y", "x"], []],
        "price": [1.0, 5.0, 10.0, None, 3.0],
        "in_stock": [True, False, True, True, None]})
    return build_catalog(IdVocab(["a", "b", "c"]), items, np.array([30, 10, 1]))


def _user(history=(), hidden=(), blocked=()) -> UserContext:
    index = HistoryIndex()
    for item in history:
        index.append("u", item, "view")
    return UserContext("u", 0, index.get("u"), hidden_items=np.asarray(hidden, dtype=np.int64),
                       blocked_categories=list(blocked))


def test_catalog_aligns_model_items_first_and_appends_cold() -> None:
    cat = _catalog()
    assert cat.items.to_list() == ["a", "b", "c", "d", "e"]
    assert cat.n_model_items == 3 and cat.is_cold.tolist() == [False] * 3 + [True] * 2
    assert cat.category_mask(["x"]).tolist() == [True, True, False, True, False]
    assert cat.primary_category[3] == cat.categories.get("y")
    assert cat.in_stock.tolist() == [True, False, True, True, True]  # unknown = in stock
    assert cat.popularity.tolist() == [30, 10, 1, 0, 0]
    assert np.allclose(np.linalg.norm(cat.content[:4], axis=1), 1.0)
    assert not cat.content[4].any()


def test_filters() -> None:
    cat = _catalog()
    scores = np.arange(5, dtype=np.float32)
    request = RecRequest(min_price=2.0, max_price=10.0)
    for stage in (SeenFilter(), StockFilter(cat), PriceFilter(cat)):
        stage(scores, _user(history=[0], hidden=[4]), request)
    # a (seen, price 1), b (out of stock), d (no price), e (hidden) are out
    assert np.isfinite(scores).tolist() == [False, False, True, False, False]
    scores = np.arange(5, dtype=np.float32)
    CategoryFilter(cat)(scores, _user(blocked=["y"]), RecRequest(categories=["x"]))
    assert np.isfinite(scores).tolist() == [True, True, False, False, False]
    scores = np.arange(5, dtype=np.float32)
    scores[2] = -np.inf
    BoostBuryFilter(cat, boost=["a", "c"], bury=["e"])(scores, _user(), RecRequest())
    order = np.argsort(-scores)
    assert order[0] == 0 and order[3] == 4 and scores[2] == -np.inf  # c stays filtered


def test_candidate_pool_drops_excluded_and_sorts() -> None:
    items, scores = candidate_pool(np.array([0.1, -np.inf, 0.9, 0.5], dtype=np.float32), 10)
    assert items.tolist() == [2, 3, 0] and scores.tolist() == pytest.approx([0.9, 0.5, 0.1])
    assert candidate_pool(np.full(3, -np.inf, dtype=np.float32), 2)[0].size == 0


def test_mmr_trades_relevance_for_diversity() -> None:
    # items 0 and 1 are near-duplicates; 2 is different and a little less relevant
    vectors = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.7, 0.7]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = np.array([0, 1, 2, 3])
    scores = np.array([1.0, 0.95, 0.8, 0.1], dtype=np.float32)
    mmr = MMRReranker(vectors)
    same, _ = mmr(items, scores, RecRequest(n=3, diversity=0.0))
    assert same.tolist() == [0, 1, 2, 3]
    diverse, _ = mmr(items, scores, RecRequest(n=3, diversity=0.5))
    assert diverse[:2].tolist() == [0, 2]
    assert intra_list_diversity(vectors, diverse[:2]) > intra_list_diversity(vectors, same[:2])


def test_category_cap_and_novelty() -> None:
    cat = _catalog()
    items = np.array([0, 1, 3, 2])  # x, x, y, y
    capped, _ = CategoryCapReranker(cat)(items, np.ones(4, np.float32),
                                         RecRequest(max_per_category=1))
    assert capped.tolist() == [0, 3, 1, 2]
    novelty = NoveltyReranker(cat)
    scores = np.array([1.0, 0.9, 0.8], dtype=np.float32)
    plain, _ = novelty(np.array([0, 1, 2]), scores, RecRequest(novelty=0.0))
    boosted, _ = novelty(np.array([0, 1, 2]), scores, RecRequest(novelty=2.0))
    assert plain.tolist() == [0, 1, 2] and boosted[0] == 2  # the least popular rises


def test_group_popularity_prefers_specific_groups_with_enough_users() -> None:
    histories = HistoryIndex()
    for user, items in {"u1": [0, 1], "u2": [0], "u3": [0], "u4": [2], "u5": [2],
                        "u6": [2], "u7": [2]}.items():
        for item in items:
            histories.append(user, item, "view")
    groups = {"u1": [("region", "n")], "u2": [("region", "n")], "u3": [("region", "n")],
              "u4": [("region", "s")], "u5": [("region", "s")], "u6": [("region", "s")]}
    pop = GroupPopularity.from_histories(histories, 3, groups)
    scores, used = pop.scores([("segment", "9"), ("region", "n")])
    assert used == ("region", "n") and scores.argmax() == 0
    assert pop.scores([("region", "s")])[0].argmax() == 2
    overall, used = pop.scores([("region", "nowhere")])
    assert used is None and overall.tolist() == pytest.approx([3 / 8, 1 / 8, 4 / 8])
    assert age_band(31) == "25-34" and age_band("x") is None
    assert user_groups({"region": "n", "age": 70, "gender": "f"}, segment=2) == [
        ("segment", "2"), ("region", "n"), ("demographic", "65+/f"), ("age", "65+"),
        ("gender", "f")]


def test_history_weights_and_live_appends() -> None:
    events = pd.DataFrame({"user_id": ["u", "u", "u", "v"], "item_id": ["a", "b", "zzz", "a"],
                           "type": ["view", "not_interested", "view", "rating"],
                           "value": [None, None, None, 4.0],
                           "timestamp": pd.to_datetime([3, 1, 2, 1], unit="s", utc=True)})
    index = HistoryIndex.from_events(events, IdVocab(["a", "b"]),
                                     event_weights={"view": 1.0, "rating": 0.5,
                                                    "not_interested": -2.0})
    assert index.get("u").items.tolist() == [0]  # negative weight and unknown item left out
    assert index.get("v").weights.tolist() == [2.0]
    assert index.append("u", 1, "view") and not index.append("u", 1, "not_interested")
    got = index.get("u")
    assert got.items.tolist() == [0, 1] and got.live_events == 1
    assert got.recent(5).tolist() == [1, 0]


def test_single_event_weight_equals_the_vectorised_one() -> None:
    index = HistoryIndex(event_weights={"view": 1.0, "rating": 0.3, "purchase": 5.0,
                                        "not_interested": -2.0})
    cases = [("view", None), ("rating", 4.0), ("rating", None), ("rating", float("nan")),
             ("rating", 0.7), ("purchase", 19.9), ("not_interested", None), ("unknown", 3.0)]
    vectorised = index.weights_of(np.array([t for t, _ in cases]),
                                  np.array([np.nan if v is None else v for _, v in cases]))
    assert [index.weight_of(t, v) for t, v in cases] == vectorised.tolist()
    assert HistoryIndex().weight_of("anything") == 1.0


def test_exposure_counter() -> None:
    counter = ExposureCounter()
    for _ in range(3):
        counter.record(["a", "b"])
    counter.record(["a"])
    assert counter.top(2) == [("a", 4), ("b", 3)] and counter.total == 7
    assert counter.head_share(0.25, n_items=4) == pytest.approx(4 / 7)
    # counts (4, 3, 0, 0): Gini = sum over ordered pairs |xi-xj| / (2 n^2 mean) = 30 / 56
    assert counter.gini(n_items=4) == pytest.approx(30 / 56)
