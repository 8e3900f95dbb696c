"""Fixtures for the API tests: a tiny sample world in a DuckDB store, a trained ALS model in an
artifact store, apps over them (TestClient) and a real uvicorn server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from limelight.api.auth import hash_key

KEYS = {"reader": ["read"], "writer": ["write"], "admin-key": ["admin"],
        "rw": ["read", "write"]}


class World:
    """What the tests need to know about the served world."""

    def __init__(self, root: Path) -> None:
        from limelight.data.dataset import build_dataset
        from limelight.data.ingest import ingest_frame
        from limelight.data.schema import ITEMS
        from limelight.models.registry import create
        from limelight.sim.world import generate_world
        from limelight.store import open_store
        from limelight.store.artifacts import ArtifactStore

        world = generate_world("tiny", seed=3)
        self.users = world.users
        self.events = world.events
        self.store = open_store(f"duckdb:///{root / 'store.duckdb'}")
        # one item nobody has interacted with: reachable only through content similarity
        top_category = world.items["categories"].map(lambda c: c[0]).value_counts().index[0]
        template = world.items[world.items["categories"].map(lambda c: c[0]) == top_category]
        cold = template.iloc[[0]].copy()
        cold["item_id"] = "cold-1"
        cold["title"] = "Brand new thing"
        self.cold_item, self.cold_category = "cold-1", top_category
        items = pd.concat([world.items, cold], ignore_index=True)
        self.items = items
        self.store.write("items", pa.Table.from_pandas(items[ITEMS.names], schema=ITEMS,
                                                       preserve_index=False))
        for entity in ("users", "events"):
            ingest_frame(self.store, getattr(world, entity), entity)
        # one item nobody has interacted with: cold start through content similarity
        self._build_segments()
        self.artifacts_dir = root / "artifacts"
        dataset = build_dataset(self.store, with_features=False)
        self.dataset = dataset
        self.artifacts = ArtifactStore(self.artifacts_dir)
        model = create("als", n_factors=16, n_epochs=8, random_state=0).fit(dataset)
        self.v1 = self.artifacts.save(model, "als", dataset=dataset, activate=True)
        knn = create("item_knn").fit(dataset)
        self.v2 = self.artifacts.save(knn, "item_knn", dataset=dataset)
        self.active_users = [u for u in dataset.users.to_list()
                             if dataset.interactions[dataset.users.get(u)].nnz >= 5]


    def _build_segments(self) -> None:
        """Profiles and K-means segments saved as a profile build (what `limelight profile
        build` stores), so the API serves segment popularity and GET /segments."""
        from limelight.profile.features import ProfileBuilder
        from limelight.profile.repository import ProfileRepository
        from limelight.profile.segments import SegmentModel

        builder = ProfileBuilder().fit(self.store)
        segments = SegmentModel(k=3, random_state=0).fit(builder.profiles_)
        ProfileRepository(self.store).save(
            builder.profiles_, segments=segments, as_of_us=builder.as_of_us_,
            rfm_boundaries=builder.rfm_boundaries_, interest_columns=builder.interest_columns_)
        self.segment_table = segments.table()


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("served"))


def make_settings(**serve: Any) -> Any:
    from limelight.settings import Settings

    return Settings(serve=serve)


def make_app(world: World, *, auth: bool = False, watch: bool = False, **serve: Any) -> Any:
    from limelight.api.app import create_app

    if auth:
        serve["api_keys"] = {hash_key(k): scopes for k, scopes in KEYS.items()}
    return create_app(make_settings(**serve), world.store, artifacts_dir=world.artifacts_dir,
                      watch=watch, watch_interval=0.2, build_profiles=False)


@pytest.fixture(scope="session")
def app_factory() -> Any:
    """``make_app(world, auth=False, watch=False, **serve)`` for tests needing their own app."""
    return make_app


@pytest.fixture(scope="session")
def client(world: World) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(make_app(world, max_batch=50)) as c:
        yield c


@pytest.fixture(scope="session")
def auth_client(world: World) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(make_app(world, auth=True)) as c:
        yield c


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """uvicorn serving an app on 127.0.0.1 in a thread (started and stopped by the fixture)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live(world: World) -> Iterator[LiveServer]:
    with LiveServer(make_app(world, watch=True)) as server:
        yield server
