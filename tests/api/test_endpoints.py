"""Every endpoint through TestClient: shapes, real-time updates, feedback, cold start."""

from __future__ import annotations

import numpy as np


def recs(client, user, **params):
    response = client.get(f"/users/{user}/recommendations", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def ids(payload) -> list[str]:
    return [i["item_id"] for i in payload["items"]]


def test_health_and_openapi(client, world) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["model_version"] == world.v1 and body["model"] == "als"
    spec = client.get("/openapi.json").json()
    for path in ("/events", "/users/{user_id}/recommendations", "/recommend",
                 "/items/{item_id}/similar", "/users/{user_id}/profile", "/segments",
                 "/feedback", "/health", "/metrics"):
        assert path in spec["paths"], path
    assert "examples" in str(spec["paths"]["/events"]["post"]["requestBody"])


def test_recommendations_for_known_user(client, world) -> None:
    user = world.active_users[0]
    body = recs(client, user, n=7, explain="true")
    assert body["model_version"] == world.v1 and body["source"] == "model"
    assert body["fallback"] is None and len(body["items"]) == 7
    from limelight.settings import Settings

    weights = Settings().dataset.event_weights
    # interactions (events with a positive weight); a mere impression is not one
    mine = world.events[(world.events.user_id == user)
                        & (world.events.type.map(lambda t: weights.get(t, 0.0)) > 0)]
    seen = set(mine["item_id"].dropna())
    assert not seen & set(ids(body)), "seen items must be excluded by default"
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(i["explanations"] for i in body["items"])
    texts = [e["text"] for i in body["items"] for e in i["explanations"]]
    assert any(t.startswith("because you ") for t in texts)
    with_seen = recs(client, user, n=50, exclude_seen="false")
    assert seen & set(ids(with_seen))


def test_event_updates_next_recommendations(client, world) -> None:
    user = world.active_users[1]
    before = recs(client, user, n=10)
    target = before["items"][0]["item_id"]
    response = client.post("/events", json={"user_id": user, "item_id": target,
                                            "type": "purchase", "value": 20.0})
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    after = recs(client, user, n=10)
    assert target not in ids(after), "a just-bought item is excluded at once"
    assert after["source"] == "fold_in"
    assert ids(after) != ids(before)
    profile = client.get(f"/users/{user}/profile").json()
    assert profile["history"]["live_events"] >= 1 and target in profile["history"]["recent_items"]


def test_events_batch_counts_and_idempotency(client, world) -> None:
    user = world.active_users[2]
    item = world.items.item_id.iloc[3]
    batch = [
        {"event_id": "api-e1", "user_id": user, "item_id": item, "type": "view",
         "timestamp": "2025-01-02T10:00:00Z"},
        {"event_id": "api-e2", "user_id": user, "item_id": item, "type": "teleport",
         "timestamp": "2025-01-02T10:00:00Z"},
        {"event_id": "api-e3", "user_id": user, "item_id": item, "type": "click",
         "timestamp": "not a time"},
    ]
    body = client.post("/events", json=batch).json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (1, 0, 2)
    assert {r["index"] for r in body["rejections"]} == {1, 2}
    assert body["accepted_event_ids"] == ["api-e1"]
    again = client.post("/events", json=batch)
    assert again.status_code == 200
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 1)
    quarantined = world.store.read("quarantine")
    assert len(quarantined) >= 2


def test_events_all_invalid_is_422_and_quarantined(client, world) -> None:
    before = world.store.count("quarantine") if hasattr(world.store, "count") else 0
    response = client.post("/events", json=[{"user_id": "x", "type": "nonsense",
                                             "timestamp": "2025-01-01T00:00:00Z"}])
    assert response.status_code == 422
    assert response.json()["rejected"] == 1
    assert len(world.store.read("quarantine")) > before - 1


def test_recommend_scores_given_items(client, world) -> None:
    user = world.active_users[3]
    items = list(world.items.item_id.iloc[:4])
    body = client.post("/recommend", json={"user": user, "items": items}).json()
    assert [s["item_id"] for s in body["scores"]] == items
    assert all(isinstance(s["score"], float) for s in body["scores"])
    top = client.post("/recommend", json={"user": user, "n": 3}).json()
    assert len(top["items"]) == 3
    # the same numbers as the GET endpoint's top list
    assert ids(top) == ids(recs(client, user, n=3))


def test_similar_items(client, world) -> None:
    item = world.items.item_id.iloc[0]
    body = client.get(f"/items/{item}/similar", params={"n": 5}).json()
    assert body["source"] == "model" and len(body["items"]) == 5
    assert item not in [i["item_id"] for i in body["items"]]
    sims = [i["similarity"] for i in body["items"]]
    assert sims == sorted(sims, reverse=True)


def test_cold_item_reachable_through_content(client, world) -> None:
    body = client.get(f"/items/{world.cold_item}/similar", params={"n": 5}).json()
    assert body["source"] == "content" and len(body["items"]) == 5
    # a new user who only looked at items of the cold item's category
    members = world.items[world.items.categories.map(lambda c: c[0] == world.cold_category)]
    user = "content-fan"
    client.post("/events", json=[{"user_id": user, "item_id": i, "type": "purchase"}
                                 for i in members.item_id.iloc[:6]])
    out = recs(client, user, n=20, categories=world.cold_category)
    sources = {i["item_id"]: i["source"] for i in out["items"]}
    assert sources.get(world.cold_item) == "content"


def test_cold_start_user_gets_group_popularity(client, world) -> None:
    region = world.users.region.value_counts().index[0]
    body = recs(client, "brand-new-user", n=5, region=region, explain="true")
    assert body["source"] == "popular" and body["fallback"] == "popular_region"
    assert all(i["source"] == "popular" for i in body["items"])
    anonymous = recs(client, "another-new-user", n=5)
    assert anonymous["fallback"] == "popular_global"
    demo = recs(client, "third-new-user", n=5, age=30, gender=world.users.gender.iloc[0])
    assert demo["fallback"] in {"popular_demographic", "popular_age", "popular_gender"}
    # a stored user's attributes are used without query params
    stored = world.users.user_id[~world.users.user_id.isin(world.dataset.users.to_list())]
    if len(stored):
        assert recs(client, stored.iloc[0], n=3)["fallback"] == "popular_region"


def test_feedback_takes_effect_on_next_request(client, world) -> None:
    user = world.active_users[4]
    first = recs(client, user, n=10)
    hidden = first["items"][0]["item_id"]
    response = client.post("/feedback", json={"user": user, "action": "hide", "item": hidden})
    assert response.status_code == 200 and response.json()["stored"]
    assert hidden not in ids(recs(client, user, n=10))
    category = world.items.set_index("item_id").loc[first["items"][1]["item_id"],
                                                    "categories"][0]
    client.post("/feedback", json={"user": user, "action": "not_interested",
                                   "category": category})
    after = recs(client, user, n=20)
    cats = world.items.set_index("item_id").loc[ids(after), "categories"]
    assert not any(category in c for c in cats)
    stored = world.store.read("events", where=f"user_id = '{user}' AND type IN "
                                              "('hide', 'not_interested')")
    assert len(stored) == 2
    liked = first["items"][2]["item_id"]
    assert client.post("/feedback", json={"user": user, "action": "like",
                                          "item": liked}).status_code == 200
    assert liked not in ids(recs(client, user, n=10))


def test_filters(client, world) -> None:
    user = world.active_users[5]
    items = world.items.set_index("item_id")
    cat = world.cold_category
    only = recs(client, user, n=10, categories=cat)
    assert only["items"] and all(cat in items.loc[i, "categories"] for i in ids(only)
                                 if i in items.index)
    excluded = recs(client, user, n=30, exclude_categories=cat)
    assert not any(cat in items.loc[i, "categories"] for i in ids(excluded))
    prices = items["price"].dropna()
    lo, hi = float(prices.quantile(0.25)), float(prices.quantile(0.75))
    ranged = recs(client, user, n=20, min_price=lo, max_price=hi)
    assert all(lo <= items.loc[i, "price"] <= hi for i in ids(ranged))
    out_of_stock = set(items.index[items["in_stock"] == False])  # noqa: E712
    assert not out_of_stock & set(ids(recs(client, user, n=100)))


def test_mmr_diversity_rises_with_lambda(client, world) -> None:
    from limelight.pipeline.rerankers import intra_list_diversity

    snapshot = client.app.state.serving.snapshot
    vectors = snapshot.pipeline.diversity_vectors
    index = snapshot.catalog.items
    low, high = [], []
    for user in world.active_users[10:30]:
        for lam, out in ((0.0, low), (0.7, high)):
            body = recs(client, user, n=10, diversity=lam)
            out.append(intra_list_diversity(vectors, index.index(ids(body))))
    assert np.mean(high) > np.mean(low) + 0.05, (np.mean(low), np.mean(high))


def test_category_cap_and_novelty(client, world) -> None:
    user = world.active_users[6]
    items = world.items.set_index("item_id")
    capped = recs(client, user, n=10, max_per_category=2)
    firsts = [items.loc[i, "categories"][0] for i in ids(capped)]
    n_categories = items["categories"].map(lambda c: c[0]).nunique()
    if n_categories * 2 >= 10:
        assert max(firsts.count(c) for c in set(firsts)) <= 2
    plain = recs(client, user, n=10)
    novel = recs(client, user, n=10, novelty=3)
    pop = client.app.state.serving.snapshot.catalog
    mean_pop = [float(np.mean(pop.popularity[pop.items.index(ids(b))])) for b in (plain, novel)]
    assert mean_pop[1] < mean_pop[0]


def test_profile_segments_metrics(client, world) -> None:
    user = world.active_users[0]
    profile = client.get(f"/users/{user}/profile").json()
    assert profile["user_id"] == user and profile["interests"]
    assert client.get("/users/nobody-at-all/profile").status_code == 404
    segments = client.get("/segments").json()
    assert segments["source"] == "profile" and len(segments["segments"]) == 3
    assert sum(s["size"] for s in segments["segments"]) == int(world.segment_table["size"].sum())
    assert all(s["description"] for s in segments["segments"])
    assert profile["segment"] in {s["segment"] for s in segments["segments"]}
    text = client.get("/metrics").text
    assert "limelight_http_requests_total" in text
    assert f'limelight_model_info{{name="als",version="{world.v1}"}} 1.0' in text
    assert "limelight_http_request_duration_seconds_bucket" in text
    recs(client, user, n=5)
    exposure = client.get("/items/exposure").json()
    assert exposure["impressions"] > 0 and 0 <= exposure["gini"] <= 1


def test_segment_popularity_for_users_without_history(client, world) -> None:
    state = client.app.state.serving
    segment = world.segment_table["segment_id"].astype(str).iloc[0]
    body = recs(client, "segment-newcomer", n=5, segment=segment, explain="true")
    assert body["fallback"] == "popular_segment" and len(body["items"]) == 5
    assert any(e["text"] == "popular in your segment" for i in body["items"]
               for e in i["explanations"])
    # the segment's own popularity, not the overall one
    members = {u for u, s in state.segments.items() if s == segment}
    counts = world.events[world.events.user_id.isin(members)
                          & world.events.type.isin(["view", "click", "purchase"])]
    top_in_segment = set(counts.groupby("item_id").user_id.nunique().nlargest(15).index)
    assert set(ids(body)) & top_in_segment


def test_live_profile_features_follow_events(world, app_factory) -> None:
    import time

    from fastapi.testclient import TestClient

    with TestClient(app_factory(world)) as c:
        c.app.state.serving.start_profiles()
        deadline = time.monotonic() + 60
        user = world.active_users[9]
        while c.get(f"/users/{user}/profile").json().get("features") is None:
            assert time.monotonic() < deadline, "profiles were not built"
            time.sleep(0.2)
        before = c.get(f"/users/{user}/profile").json()["features"]
        item = world.items.item_id.iloc[5]
        c.post("/events", json={"user_id": user, "item_id": item, "type": "purchase",
                                "value": 12.5})
        after = c.get(f"/users/{user}/profile").json()["features"]
        assert after["n_events"] == before["n_events"] + 1
        assert after["n_purchase"] == before["n_purchase"] + 1
        assert after["last_items"][-1] == item
        assert after.get("segment_id") is not None


def test_a_version_that_cannot_score_is_refused(client, world) -> None:
    from limelight.models.registry import create

    broken = create("als", n_factors=4, n_epochs=1).fit(world.dataset)
    del broken.item_factors_  # as an artifact from an incompatible release would be
    version = world.artifacts.save(broken, "als", dataset=world.dataset)
    try:
        body = client.post("/models/activate", json={"version": version}).json()
        assert body["active_version"] == version
        assert body["serving_version"] == world.v1  # the previous version keeps serving
        assert "cannot serve requests" in body["error"]
        health = client.get("/health").json()
        assert health["model_version"] == world.v1 and health["error"]
        assert recs(client, world.active_users[0], n=3)["model_version"] == world.v1
    finally:
        world.artifacts.activate(world.v1)
        client.post("/models/reload")
    assert client.get("/health").json()["error"] is None
