"""Through the real HTTP stack: uvicorn on 127.0.0.1, httpx as the client."""

from __future__ import annotations

import threading
import time

import httpx


def test_real_http_round_trip(live, world) -> None:
    world.artifacts.activate(world.v1)
    with httpx.Client(base_url=live.url, timeout=10) as http:
        assert http.get("/health").json()["status"] == "ok"
        user = world.active_users[7]
        before = http.get(f"/users/{user}/recommendations", params={"n": 5}).json()
        target = before["items"][0]["item_id"]
        sent = http.post("/events", json={"user_id": user, "item_id": target, "type": "view"})
        assert sent.status_code == 200 and sent.json()["accepted"] == 1
        after = http.get(f"/users/{user}/recommendations", params={"n": 5}).json()
        assert target not in [i["item_id"] for i in after["items"]]
        assert http.post("/events", content=b"{oops",
                         headers={"content-type": "application/json"}).status_code == 400
        assert "limelight_http_requests_total" in http.get("/metrics").text


def test_version_switch_without_dropping_requests(live, world) -> None:
    world.artifacts.activate(world.v1)
    user = world.active_users[8]
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=live.url, timeout=10) as http:
            while not stop.is_set():
                response = http.get(f"/users/{user}/recommendations", params={"n": 10})
                statuses.append(response.status_code)
                if response.status_code == 200:
                    versions.add(response.json()["model_version"])

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        time.sleep(0.3)
        world.artifacts.activate(world.v2)  # what `limelight models activate` does
        with httpx.Client(base_url=live.url, timeout=10) as http:
            deadline = time.monotonic() + 20
            while http.get("/health").json()["model_version"] != world.v2:
                assert time.monotonic() < deadline, "the server did not pick up the switch"
                time.sleep(0.1)
            time.sleep(0.3)
            world.artifacts.rollback()  # `limelight models rollback`
            deadline = time.monotonic() + 20
            while http.get("/health").json()["model_version"] != world.v1:
                assert time.monotonic() < deadline, "the server did not pick up the rollback"
                time.sleep(0.1)
    finally:
        stop.set()
        worker.join()
    assert statuses and set(statuses) == {200}, set(statuses)
    assert {world.v1, world.v2} <= versions


def test_single_event_is_visible_before_its_store_write_returns(client, world) -> None:
    """A valid single event is applied at once and confirmed by ingest; an invalid one is
    rejected and leaves no trace; a duplicate is undone."""
    state = client.app.state.serving
    user = world.active_users[11]
    item = world.items.item_id.iloc[7]
    record = {"user_id": user, "item_id": item, "type": "click",
              "timestamp": "2025-03-01T12:00:00Z", "event_id": "prov-1"}
    before = state.snapshot.histories.get(user).live_events
    provisional = state.apply_provisionally(dict(record))
    assert provisional is not None
    assert state.snapshot.histories.get(user).live_events == before + 1  # visible already
    report = state.ingest([dict(record)], "api", provisional)
    assert report.accepted == 1
    assert state.snapshot.histories.get(user).live_events == before + 1  # not twice
    again = state.apply_provisionally(dict(record))
    assert again is None  # a known event id is left to ingest
    replay = {**record, "event_id": None}
    replay.pop("event_id")
    dup = state.apply_provisionally(dict(replay))
    report = state.ingest([dict(replay)], "api", dup)
    # the content-derived id differs from "prov-1", so it is new unless content-deduplicated
    live = state.snapshot.histories.get(user).live_events
    assert live == before + 1 + report.accepted
    # the very same content again: applied ahead, then undone when ingest calls it a duplicate
    dup = state.apply_provisionally(dict(replay))
    assert dup is not None
    report = state.ingest([dict(replay)], "api", dup)
    assert report.duplicates == 1 and report.accepted == 0
    assert state.snapshot.histories.get(user).live_events == live
    bad = {"user_id": user, "item_id": item, "type": "click", "timestamp": "1970-01-01T00:00:00Z"}
    assert state.apply_provisionally(bad) is None


def test_pseudonymized_store_is_served_by_raw_ids(world) -> None:
    from fastapi.testclient import TestClient

    from limelight.api.app import create_app
    from limelight.settings import Settings

    settings = Settings(ingest={"pseudonymize": True, "pseudonym_secret": "test-secret"})
    app = create_app(settings, world.store, artifacts_dir=world.artifacts_dir, watch=False,
                     build_profiles=False)
    items = list(world.items.item_id.iloc[10:14])
    with TestClient(app) as c:
        sent = c.post("/events", json=[{"user_id": "alice", "item_id": i, "type": "purchase"}
                                       for i in items])
        assert sent.json()["accepted"] == 4
        stored = world.store.read("events", where="item_id IN ('" + "','".join(items) + "')")
        assert "alice" not in set(stored.user_id)  # the raw id never reaches the store
        body = c.get("/users/alice/recommendations", params={"n": 10}).json()
        assert body["user_id"] == "alice" and body["source"] == "fold_in"
        assert not set(items) & {i["item_id"] for i in body["items"]}
        profile = c.get("/users/alice/profile").json()
        assert profile["history"]["events"] == 4
