"""ArtifactStore: versions, metadata, the atomic active pointer, rollback."""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest

from limelight.data.dataset import Dataset
from limelight.errors import ArtifactError
from limelight.models.base import Recommender
from limelight.store.artifacts import ArtifactStore, dataset_fingerprint


class CountModel(Recommender):
    """Scores items by how often they were seen, times ``boost`` (picklable test model)."""

    def __init__(self, boost: float = 1.0) -> None:
        self.boost = boost

    def _fit(self, dataset: Dataset) -> None:
        self.counts_ = np.asarray(dataset.interactions.sum(axis=0)).ravel() * self.boost

    def _score_users(self, user_idx: np.ndarray, user_items) -> np.ndarray:
        return np.tile(self.counts_, (len(user_idx), 1))


@pytest.fixture
def dataset() -> Dataset:
    return Dataset.from_frame(pd.DataFrame({"user_id": ["a", "a", "b", "c"],
                                            "item_id": ["x", "y", "y", "z"]}))


def test_save_load_roundtrip_with_vocab_and_metadata(tmp_path, dataset: Dataset) -> None:
    store = ArtifactStore(tmp_path / "art")
    model = CountModel(boost=2.0).fit(dataset)
    version = store.save(model, "count", {"metrics": {"ndcg@10": 0.25}}, dataset=dataset)
    assert version == "v0001"
    art = store.load(version)
    assert art.users.to_list() == ["a", "b", "c"] and art.items.to_list() == ["x", "y", "z"]
    assert art.model.boost == 2.0
    np.testing.assert_array_equal(art.model.score(0, [0, 1, 2]), model.score(0, [0, 1, 2]))
    meta = art.metadata
    assert meta["name"] == "count" and meta["params"] == {"boost": 2.0}
    assert meta["metrics"] == {"ndcg@10": 0.25}
    assert meta["dataset_fingerprint"] == dataset_fingerprint(dataset)
    assert meta["created"].endswith("+00:00") and meta["class"].endswith("CountModel")
    on_disk = json.loads((tmp_path / "art" / "versions" / "v0001" / "metadata.json").read_text())
    assert on_disk["version"] == "v0001"


def test_fingerprint_changes_with_data(dataset: Dataset) -> None:
    other = Dataset.from_frame(pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}))
    assert dataset_fingerprint(dataset) != dataset_fingerprint(other)
    assert dataset_fingerprint(dataset) == dataset_fingerprint(dataset)


def test_activate_list_rollback(tmp_path, dataset: Dataset) -> None:
    store = ArtifactStore(tmp_path)
    model = CountModel().fit(dataset)
    with pytest.raises(ArtifactError, match="no active model"):
        store.load()
    v1 = store.save(model, "count", dataset=dataset, activate=True)
    v2 = store.save(model, "count", dataset=dataset)
    assert store.active_version() == v1  # saving does not switch by itself
    store.activate(v2)
    assert store.load().version == v2
    assert [(m["version"], m["active"]) for m in store.list()] == [(v1, False), (v2, True)]
    assert store.rollback() == v1 and store.active_version() == v1
    with pytest.raises(ArtifactError, match="nothing to roll back"):
        store.rollback()
    with pytest.raises(ArtifactError):
        store.activate("v0099")
    with pytest.raises(ArtifactError):
        store.activate("../etc")


def test_unfitted_model_and_missing_vocab_are_refused(tmp_path, dataset: Dataset) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(Exception, match="not fitted"):
        store.save(CountModel(), "count", dataset=dataset)
    with pytest.raises(ArtifactError, match="vocabularies"):
        store.save(CountModel().fit(dataset), "count")
    assert store.list() == []  # nothing half-written is listed
    assert not [p for p in (tmp_path / "versions").glob(".tmp-*")]


def test_concurrent_saves_get_distinct_versions(tmp_path, dataset: Dataset) -> None:
    store = ArtifactStore(tmp_path)
    model = CountModel().fit(dataset)
    versions: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        v = ArtifactStore(tmp_path).save(model, "count", dataset=dataset)
        with lock:
            versions.append(v)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(versions) == [f"v{i:04d}" for i in range(1, 7)]
    assert len(store.list()) == 6


def test_corrupt_pointer_is_a_named_error(tmp_path, dataset: Dataset) -> None:
    store = ArtifactStore(tmp_path)
    store.save(CountModel().fit(dataset), "count", dataset=dataset, activate=True)
    (tmp_path / "active.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt"):
        store.active_version()
