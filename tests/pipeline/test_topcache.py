"""The per-user candidate cache answers exactly what scoring the whole catalogue answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from limelight.models.registry import create
from limelight.pipeline.builder import build_pipeline
from limelight.pipeline.candidates import GroupPopularity, candidate_pool, user_groups
from limelight.pipeline.context import RecRequest, UserContext
from limelight.pipeline.history import HistoryIndex
from limelight.pipeline.topcache import CandidateCache

WEIGHTS = {"view": 1.0, "purchase": 5.0, "not_interested": -2.0}

REQUESTS = [
    RecRequest(n=10, diversity=0.3),
    RecRequest(n=10),
    RecRequest(n=5, exclude_seen=False),
    RecRequest(n=10, categories=["c1"]),
    RecRequest(n=10, exclude_categories=["c0", "c2"]),
    RecRequest(n=10, min_price=100.0, max_price=400.0, diversity=0.5),
    RecRequest(n=10, novelty=1.0, max_per_category=2),
    RecRequest(n=60, diversity=0.2),  # a pool larger than the cached candidates
    RecRequest(n=10, min_price=590.0),  # filters leave too few candidates: exact fallback
]


@pytest.fixture(scope="module")
def setup(shop):
    catalog = shop["catalog"]
    histories = HistoryIndex.from_events(shop["events"], catalog.items, event_weights=WEIGHTS)
    groups = {u: user_groups({"region": r}) for u, r in
              zip(shop["users"].user_id, shop["users"].region, strict=True)}
    popularity = GroupPopularity.from_histories(histories, catalog.n_items, groups)
    model = create("als", n_factors=8, n_epochs=10, random_state=0).fit(shop["dataset"])
    cached = build_pipeline(model, catalog, histories, popularity)
    # 100 candidates of 602 items: the cache holds a real subset, so its bound matters
    cached.cache = CandidateCache(min_candidates=100)
    exact = dataclasses.replace(cached, cache=CandidateCache(max_users=0))
    return cached, exact, histories


def _context(shop, histories, user, **extra):
    return UserContext(user, shop["dataset"].users.get(user), histories.get(user), **extra)


def _same(a, b) -> None:
    assert a.items.tolist() == b.items.tolist()
    assert np.array_equal(a.scores, b.scores)
    assert (a.source, a.item_sources) == (b.source, b.item_sources)


def _both(pipeline_pair, context, request):
    cached, exact = pipeline_pair
    first = cached.recommend(context, dataclasses.replace(request))   # miss: fills the cache
    again = cached.recommend(context, dataclasses.replace(request))   # hit (or fallback)
    truth = exact.recommend(context, dataclasses.replace(request))
    _same(first, truth)
    _same(again, truth)


def test_cached_answers_equal_exact_answers_for_every_filter(shop, setup) -> None:
    cached, exact, histories = setup
    hits = cached.cache.hits
    for u in range(0, 60, 3):
        for request in REQUESTS:
            _both((cached, exact), _context(shop, histories, f"u{u}"), request)
    assert cached.cache.hits - hits > 100  # the cache did answer most repeats
    assert not len(exact.cache)


def test_feedback_applies_to_cached_candidates(shop, setup) -> None:
    cached, exact, histories = setup
    user = "u7"
    plain = _context(shop, histories, user)
    top = cached.recommend(plain, RecRequest(n=10)).items
    hidden = _context(shop, histories, user, hidden_items=top[:3],
                      blocked_categories=["c4"])
    hits = cached.cache.hits
    _both((cached, exact), hidden, RecRequest(n=10, diversity=0.3))
    assert cached.cache.hits > hits
    answer = cached.recommend(hidden, RecRequest(n=10))
    assert not set(top[:3].tolist()) & set(answer.items.tolist())


def test_a_new_event_invalidates_the_users_entry(shop, setup) -> None:
    cached, exact, histories = setup
    user = "u11"
    before = cached.recommend(_context(shop, histories, user), RecRequest(n=10))
    assert cached.recommend(_context(shop, histories, user), RecRequest(n=10)).source == "model"
    top = int(before.items[0])
    histories.append(user, top, "purchase")
    misses = cached.cache.misses
    after = _context(shop, histories, user)
    _both((cached, exact), after, RecRequest(n=10, diversity=0.3))
    assert cached.cache.misses > misses
    answer = cached.recommend(after, RecRequest(n=10))
    assert answer.source == "fold_in" and top not in answer.items.tolist()


def test_new_user_and_cold_items_through_the_cache(shop, setup) -> None:
    cached, exact, _ = setup
    catalog = shop["catalog"]
    probe = HistoryIndex(event_weights=WEIGHTS)
    for item in ("i0", "i6", "i12"):
        probe.append("newcomer", catalog.items.get(item), "view")
    context = UserContext("newcomer", -1, probe.get("newcomer"))
    _both((cached, exact), context, RecRequest(n=20))
    _both((cached, exact), context, RecRequest(n=10, categories=["c0"]))


def test_boost_lists_turn_the_cache_off(shop, setup) -> None:
    cached, _, histories = setup
    boosted = build_pipeline(cached.scorer.model, cached.catalog, histories,
                             cached.explainer.popularity, boost_items=["i5"])
    context = _context(shop, histories, "u2")
    boosted.recommend(context, RecRequest(n=10))
    boosted.recommend(context, RecRequest(n=10))
    assert not len(boosted.cache) and boosted.cache.hits == 0


def test_candidate_pool_breaks_ties_by_index() -> None:
    scores = np.array([1.0, 3.0, 2.0, 3.0, 2.0, 2.0, -np.inf, 2.0], dtype=np.float32)
    items, values = candidate_pool(scores, 4)
    assert items.tolist() == [1, 3, 2, 4]
    assert values.tolist() == [3.0, 3.0, 2.0, 2.0]
    assert candidate_pool(scores, 20)[0].tolist() == [1, 3, 2, 4, 5, 7, 0]


def test_cache_evicts_the_oldest_user(shop, setup) -> None:
    cached, _, histories = setup
    small = dataclasses.replace(cached, cache=CandidateCache(max_users=2))
    for user in ("u1", "u2", "u3"):
        small.recommend(_context(shop, histories, user), RecRequest(n=5))
    assert len(small.cache) == 2
    assert small.cache.get(_context(shop, histories, "u1")) is None
    assert small.cache.get(_context(shop, histories, "u3")) is not None


def test_a_model_user_without_serving_history_is_cached(shop, setup) -> None:
    cached, exact, _ = setup
    empty = HistoryIndex(event_weights=WEIGHTS)
    context = lambda: UserContext("u4", shop["dataset"].users.get("u4"),  # noqa: E731
                                  empty.get("u4"))
    _both((cached, exact), context(), RecRequest(n=10))
    hits = cached.cache.hits
    # a new context for the same empty history finds the entry: both requests are hits
    _both((cached, exact), context(), RecRequest(n=10))
    assert cached.cache.hits - hits == 2
