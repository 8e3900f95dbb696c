"""The per-user candidate cache behind the API: warmed at load, and every answer it gives is
the answer of exact scoring (filters, exclusion, feedback, after a new event)."""

from __future__ import annotations

import time

QUERIES = [
    {"n": 10, "exclude_seen": "true", "diversity": 0.3},
    {"n": 5},
    {"n": 10, "exclude_seen": "false"},
    {"n": 8, "novelty": 1.0, "max_per_category": 2},
    {"n": 10, "min_price": 5, "max_price": 80, "diversity": 0.5},
]


def _answers(client, users, queries) -> list[list[tuple[str, float, str]]]:
    out = []
    for user in users:
        for params in queries:
            got = client.get(f"/users/{user}/recommendations", params=params)
            assert got.status_code == 200, got.text
            out.append([(i["item_id"], i["score"], i["source"]) for i in got.json()["items"]])
    return out


def _exact(client, users, queries):
    """The same requests with the cache switched off (every request scores the catalogue)."""
    cache = client.app.state.serving.snapshot.pipeline.cache
    saved = cache.max_users
    cache.max_users = 0
    cache.clear()
    try:
        return _answers(client, users, queries)
    finally:
        cache.max_users = saved


def test_cache_is_warmed_and_answers_exactly(world, app_factory) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app_factory(world, candidate_cache_min_items=0)) as client:
        deadline = time.monotonic() + 60
        while (health := client.get("/health").json())["candidates"]["status"] != "ready":
            assert time.monotonic() < deadline, health
            time.sleep(0.05)
        assert health["candidates"]["users"] > 0
        pipeline = client.app.state.serving.snapshot.pipeline
        users = world.active_users[:12]
        categories = sorted(pipeline.catalog.categories.ids.tolist())
        queries = [*QUERIES, {"n": 10, "categories": categories[0]},
                   {"n": 10, "exclude_categories": ",".join(categories[:2])}]
        hits = pipeline.cache.hits
        cached = _answers(client, users, queries)
        assert pipeline.cache.hits - hits >= len(users) * 3  # the warmed entries answered
        assert cached == _exact(client, users, queries)

        # feedback: applied to the cached candidates on the very next request
        user = users[0]
        top = cached[0][0][0]
        second = cached[0][1][0]
        category = pipeline.catalog.category_names(pipeline.catalog.items.get(second))[0]
        _answers(client, [user], QUERIES[:1])  # refill the entry (_exact emptied the cache)
        assert client.post("/feedback", json={"user": user, "action": "hide",
                                              "item": top}).status_code == 200
        assert client.post("/feedback", json={"user": user, "action": "not_interested",
                                              "category": category}).status_code == 200
        hits = pipeline.cache.hits
        after_feedback = _answers(client, [user], QUERIES[:1])
        assert pipeline.cache.hits > hits
        assert not {top, second} & {i for i, _, _ in after_feedback[0]}
        assert after_feedback == _exact(client, [user], QUERIES[:1])

        # a new event: the user's entry is stale, the answer is the fold-in's exact one
        _answers(client, [users[1]], QUERIES[:1])  # (re)fill the entry
        first = cached[len(queries)][0][0]
        posted = client.post("/events", json={"user_id": users[1], "item_id": first,
                                              "type": "purchase"})
        assert posted.status_code == 200 and posted.json()["accepted"] == 1
        after_event = _answers(client, [users[1]], QUERIES[:2])
        assert first not in [i for i, _, _ in after_event[0]]
        assert client.get(f"/users/{users[1]}/recommendations").json()["source"] == "fold_in"
        assert after_event == _exact(client, [users[1]], QUERIES[:2])

    with TestClient(app_factory(world)) as client:  # a small catalogue is scored in full
        assert client.get("/health").json()["candidates"] == {"status": "off", "users": 0}
        assert client.get(f"/users/{users[2]}/recommendations").status_code == 200
        assert not len(client.app.state.serving.snapshot.pipeline.cache)
