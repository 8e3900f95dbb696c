"""Serving experiments: users bucketed at request time, variant parameters and model versions
answering, exposures logged in the background and analysed against later events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from limelight.marketing.experiments import Experiment
from limelight.pipeline.rerankers import intra_list_diversity


@pytest.fixture
def exp_client(world, app_factory) -> Iterator[TestClient]:
    """An app of its own; every experiment a test starts is stopped afterwards, so other
    apps over the same store never bucket users into it."""
    with TestClient(app_factory(world)) as c:
        names: list[str] = []
        c.started = names  # type: ignore[attr-defined]
        yield c
        for name in names:
            c.post(f"/experiments/{name}/stop")


def start(client: TestClient, name: str, variants: dict[str, Any], params: dict[str, Any],
          **extra: Any) -> None:
    r = client.post("/experiments", json={"name": name, "variants": variants,
                                          "params": params, **extra})
    assert r.status_code == 201, r.text
    client.started.append(name)  # type: ignore[attr-defined]


def ids(payload: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in payload["items"]]


def test_diversity_arms_bucketed_and_measurably_different(exp_client, world) -> None:
    name = "mmr-lambda"
    start(exp_client, name, {"plain": 1, "diverse": 1},
          {"plain": {"diversity": 0.0}, "diverse": {"diversity": 0.8}})
    snapshot = exp_client.app.state.serving.snapshot
    vectors, index = snapshot.pipeline.diversity_vectors, snapshot.catalog.items
    experiment = Experiment(name, {"plain": 1, "diverse": 1})
    by_arm: dict[str, list[float]] = {"plain": [], "diverse": []}
    users = world.active_users[:40]
    for user in users:
        body = exp_client.get(f"/users/{user}/recommendations?n=10").json()
        variant = body["experiments"][name]
        # deterministic: the salted hash alone decides, and asking again changes nothing
        assert variant == experiment.assign_one(user)
        again = exp_client.get(f"/users/{user}/recommendations?n=10").json()
        assert again["experiments"][name] == variant and ids(again) == ids(body)
        by_arm[variant].append(intra_list_diversity(vectors, index.index(ids(body))))
    assert min(len(v) for v in by_arm.values()) >= 5, by_arm
    assert np.mean(by_arm["diverse"]) > np.mean(by_arm["plain"]) + 0.05, by_arm
    # a value the caller sends explicitly still wins over the variant's
    diverse_user = next(u for u in users if experiment.assign_one(u) == "diverse")
    explicit = exp_client.get(f"/users/{diverse_user}/recommendations?n=10&diversity=0").json()
    assert explicit["experiments"][name] == "diverse"
    assert ids(explicit) != ids(
        exp_client.get(f"/users/{diverse_user}/recommendations?n=10").json())

    # exposures: one row per user, counting every request, written by flush (not per request)
    state = exp_client.app.state.serving
    state.experiments.flush()
    rows = state.store.sql("SELECT user_id, variant, exposures FROM marketing_exposures "
                           "WHERE experiment = ?", [name]).set_index("user_id")
    assert len(rows) == len(users)
    assert rows.loc[diverse_user, "exposures"] == 4
    assert (rows.drop(index=diverse_user)["exposures"] == 2).all()
    assert all(rows.loc[u, "variant"] == experiment.assign_one(u) for u in users)


def test_model_version_arms_and_post_recommend(exp_client, world) -> None:
    name = "ranker"
    start(exp_client, name, {"als": 1, "knn": 1},
          {"als": {"model_version": world.v1}, "knn": {"model": "item_knn", "n": 4}})
    seen = set()
    for user in world.active_users[:20]:
        body = exp_client.get(f"/users/{user}/recommendations").json()
        variant = body["experiments"][name]
        expected = world.v1 if variant == "als" else world.v2
        assert body["model_version"] == expected
        assert len(body["items"]) == (4 if variant == "knn" else 10)
        posted = exp_client.post("/recommend", json={"user": user}).json()
        assert posted["model_version"] == expected and posted["experiments"] == {name: variant}
        scored = exp_client.post("/recommend", json={"user": user, "items": ids(body)[:3]})
        assert scored.json()["model_version"] == expected
        seen.add(variant)
    assert seen == {"als", "knn"}
    # the active version is untouched
    assert exp_client.app.state.serving.snapshot.version == world.v1


def test_invalid_serving_experiments_refused(exp_client, world) -> None:
    for params in ({"a": {"model_version": "v9999"}}, {"a": {"model": "nope"}},
                   {"a": {"temperature": 2}}, {"a": {"diversity": 3}}):
        r = exp_client.post("/experiments", json={"name": "bad", "variants": {"a": 1, "b": 1},
                                                  "params": params})
        assert r.status_code == 422, (params, r.text)
    assert exp_client.post("/experiments/nothing/stop").status_code == 404


def test_report_from_exposures_and_events(exp_client, world) -> None:
    name = "report-arms"
    start(exp_client, name, {"control": 1, "treat": 1},
          {"treat": {"diversity": 0.5}}, control="control")
    users = world.active_users[40:80]
    for user in users:
        assert name in exp_client.get(f"/users/{user}/recommendations?n=5").json()["experiments"]
    exp_client.app.state.serving.experiments.flush()
    item = world.items["item_id"].iloc[0]
    now = datetime.now(UTC).isoformat()
    clickers = users[::2]
    buyers = users[::4]
    events = ([{"user_id": u, "item_id": item, "type": "click", "timestamp": now}
               for u in clickers]
              + [{"user_id": u, "item_id": item, "type": "purchase", "value": 10.0,
                  "timestamp": now} for u in buyers])
    r = exp_client.post("/events", json=events)
    assert r.status_code == 200 and r.json()["accepted"] == len(events), r.text
    report = exp_client.get(f"/experiments/{name}/report").json()
    variants = {v["variant"]: v for v in report["variants"]}
    assert sum(v["users"] for v in variants.values()) == len(users)
    experiment = Experiment(name, {"control": 1, "treat": 1}, control="control")
    for arm, stats in variants.items():
        members = [u for u in users if experiment.assign_one(u) == arm]
        assert stats["users"] == len(members)
        assert stats["clicks"] == len(set(members) & set(clickers))
        assert stats["conversions"] == len(set(members) & set(buyers))
        assert stats["revenue"] == pytest.approx(10.0 * len(set(members) & set(buyers)))
    assert "treat" in report["comparisons"]
    # stopping ends bucketing at once
    exp_client.post(f"/experiments/{name}/stop")
    body = exp_client.get(f"/users/{users[0]}/recommendations?n=5").json()
    assert name not in body["experiments"]
