"""The assembled pipeline with real models: every scoring path, cold items, explanations."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from limelight.models.registry import create
from limelight.pipeline.builder import build_pipeline
from limelight.pipeline.candidates import GroupPopularity, user_groups
from limelight.pipeline.context import RecRequest, UserContext
from limelight.pipeline.history import HistoryIndex
from limelight.pipeline.rerankers import intra_list_diversity

WEIGHTS = {"view": 1.0, "purchase": 5.0, "not_interested": -2.0}


def _pipeline(shop, model_name, **params):
    model = create(model_name, **params).fit(shop["dataset"])
    catalog = shop["catalog"]
    histories = HistoryIndex.from_events(shop["events"], catalog.items, event_weights=WEIGHTS)
    groups = {u: user_groups({"region": r}) for u, r in
              zip(shop["users"].user_id, shop["users"].region, strict=True)}
    popularity = GroupPopularity.from_histories(histories, catalog.n_items, groups)
    return build_pipeline(model, catalog, histories, popularity), histories


def _categories(shop, items):
    """Category numbers of catalogue indices (-1 for the two cold items)."""
    ids = shop["catalog"].items.ids_of(np.asarray(items, dtype=np.int64))
    return np.array([shop["item_cat"][int(i[1:])] if i.startswith("i") else -1 for i in ids])


def _context(shop, histories, user, groups=()):
    return UserContext(user, shop["dataset"].users.get(user), histories.get(user),
                       groups=list(groups))


@pytest.fixture(scope="module")
def als(shop):
    return _pipeline(shop, "als", n_factors=8, n_epochs=10, random_state=0)


def test_model_path_recommends_the_users_taste(shop, als) -> None:
    pipeline, histories = als
    hits = []
    for u in range(20):
        slate = pipeline.recommend(_context(shop, histories, f"u{u}"), RecRequest(n=5))
        assert slate.source == "model" and len(slate.items) == 5
        cats = _categories(shop, slate.items)
        hits.append(np.mean(cats == shop["taste"][u]))
    assert np.mean(hits) > 0.5  # chance is 1/6


def test_live_event_folds_in_and_excludes_the_item(shop, als) -> None:
    pipeline, histories = als
    user = "u3"
    before = pipeline.recommend(_context(shop, histories, user), RecRequest(n=5))
    top = int(before.items[0])
    histories.append(user, top, "purchase")
    after = pipeline.recommend(_context(shop, histories, user), RecRequest(n=5))
    assert after.source == "fold_in" and top not in after.items.tolist()


def test_new_user_with_history_and_without(shop, als) -> None:
    pipeline, histories = als
    cat5 = [f"i{i}" for i in np.flatnonzero(shop["item_cat"] == 5)[:4]]
    for item in shop["catalog"].items.index(cat5):
        histories.append("stranger", int(item), "view")
    slate = pipeline.recommend(_context(shop, histories, "stranger"), RecRequest(n=5))
    assert slate.source == "fold_in"
    assert np.mean(_categories(shop, slate.items) == 5) >= 0.6
    cold = pipeline.recommend(_context(shop, histories, "nobody", [("region", "south")]),
                              RecRequest(n=5, explain=True))
    assert cold.source == "popular" and cold.fallback == "popular_region"
    assert cold.explanations[0][0]["text"] in {"popular in south", "popular right now"}


def test_cold_items_reach_lists_through_content(shop, als) -> None:
    pipeline, histories = als
    catalog = shop["catalog"]
    new_b = catalog.items.get("new-b")  # category c5
    found = 0
    for u in np.flatnonzero(shop["taste"] == 5)[:8]:
        slate = pipeline.recommend(_context(shop, histories, f"u{u}"),
                                   RecRequest(n=20, categories=["c5"], explain=True))
        if new_b in slate.items.tolist():
            found += 1
            k = slate.items.tolist().index(new_b)
            assert slate.item_sources[k] == "content"
            assert any(r["type"] == "new_in_category" and r["category"] == "c5"
                       for r in slate.explanations[k])
    assert found >= 6
    similar, _, source = pipeline.similar(new_b, 5)
    assert source == "content" and set(_categories(shop, similar)) <= {5, -1}


def test_explanations_name_a_history_item(shop, als) -> None:
    pipeline, histories = als
    slate = pipeline.recommend(_context(shop, histories, "u1"), RecRequest(n=5, explain=True))
    history = set(shop["catalog"].items.ids_of(histories.get("u1").items).tolist())
    anchors = [r["item_id"] for reasons in slate.explanations for r in reasons
               if r["type"] == "similar_to_history"]
    assert anchors and set(anchors) <= history
    assert all(r["text"].startswith("because you") for reasons in slate.explanations
               for r in reasons if r["type"] == "similar_to_history")


def test_mmr_raises_intra_list_diversity(shop, als) -> None:
    pipeline, histories = als
    low, high = [], []
    for u in range(30):
        ctx = _context(shop, histories, f"u{u}")
        for lam, out in ((0.0, low), (0.8, high)):
            slate = pipeline.recommend(ctx, RecRequest(n=8, diversity=lam))
            out.append(intra_list_diversity(pipeline.diversity_vectors, slate.items))
    assert np.mean(high) > np.mean(low) + 0.1


def test_score_items_matches_recommend(shop, als) -> None:
    pipeline, histories = als
    ctx = _context(shop, histories, "u7")
    slate = pipeline.recommend(ctx, RecRequest(n=3))
    scores, source = pipeline.score_items(ctx, slate.items)
    assert source == "model" and np.allclose(scores, slate.scores, atol=1e-5)


def test_model_without_fold_in_uses_recent_knn(shop) -> None:
    pipeline, histories = _pipeline(shop, "bpr", n_factors=8, n_epochs=20, random_state=0)
    assert not pipeline.scorer.supports_fold_in
    histories.append("u2", 7, "view")
    slate = pipeline.recommend(_context(shop, histories, "u2"), RecRequest(n=5))
    assert slate.source == "model+recent_knn" and 7 not in slate.items.tolist()
    histories.append("fresh", 7, "view")
    fresh = pipeline.recommend(_context(shop, histories, "fresh"), RecRequest(n=5))
    assert fresh.source == "recent_knn" and len(fresh.items) == 5


def test_fold_in_is_prepared_as_the_pipeline_is_built(shop) -> None:
    """The first live event must not pay for building the ALS solver."""
    pipeline, _ = _pipeline(shop, "als", n_factors=8, n_epochs=3, random_state=0)
    assert 1 in pipeline.scorer.model.__dict__.get("_solvers", {})


def test_reused_fold_in_solver_equals_a_fresh_one(shop, als) -> None:
    pipeline, histories = als
    scorer = pipeline.scorer
    for user in ("u1", "u5", "u9"):
        row = scorer._row(histories.get(user))
        scorer._fold_in_vector(row)
        assert 1 in scorer.model._solvers  # built once, reused from here on
        fresh = pickle.loads(pickle.dumps(scorer.model))  # pickles without its solvers
        assert "_solvers" not in fresh.__dict__
        assert np.array_equal(scorer._fold_in_vector(row),
                              np.asarray(fresh.fold_in(row), np.float32).ravel())


def test_sequence_model_scores_the_ordered_history(shop) -> None:
    pytest.importorskip("torch")
    pipeline, histories = _pipeline(shop, "sasrec", n_factors=16, n_layers=1, n_heads=1,
                                    max_len=20, n_epochs=2, batch_size=64, random_state=0,
                                    device="cpu")
    model = pipeline.scorer.model
    catalog = shop["catalog"]
    order = [catalog.items.get(i) for i in ("i3", "i10", "i17", "i4")]
    for item in order:
        histories.append("seq-user", item, "view")
    context = _context(shop, histories, "seq-user")
    scored = pipeline.scorer.score(context)
    assert scored.source == "fold_in"
    expected = model.score_sequences([np.asarray(order)])[0]
    assert np.array_equal(scored.scores[:catalog.n_model_items], expected)
    # the order matters to the model, and the answer follows it
    reverse = model.score_sequences([np.asarray(order[::-1])])[0]
    assert not np.array_equal(expected, reverse)
    slate = pipeline.recommend(context, RecRequest(n=5))
    assert not set(order) & set(slate.items.tolist())
