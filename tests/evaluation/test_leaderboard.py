"""Leaderboard and protocol: tables, JSON, plots, rating folds, cold start, real data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from limelight.data.dataset import Dataset
from limelight.evaluation.leaderboard import run_leaderboard
from limelight.evaluation.protocol import evaluate_ranking, evaluate_rating
from limelight.evaluation.split import (
    HeldOutUsers,
    RandomHoldout,
    TemporalHoldout,
    ml100k_dataset,
    ml100k_fold,
)
from limelight.models.registry import create


def test_ranking_leaderboard_writes_json_and_plot(clustered: Dataset, tmp_path) -> None:
    board = run_leaderboard(["popularity", "item_knn"], dataset=clustered,
                            dataset_name="clustered", progress=False)
    names = [r.model for r in board.ranked()]
    assert set(names) == {"popularity", "item_knn"}
    by_name = {r.model: r for r in board.rows}
    # the clusters are learnable: neighbours beat global popularity
    assert by_name["item_knn"].metrics["ndcg@10"] > by_name["popularity"].metrics["ndcg@10"]
    assert names[0] == "item_knn" and board.best().model == "item_knn"
    for row in board.rows:
        assert row.fit_seconds >= 0 and row.error is None
        assert 0 <= row.metrics["recall@10"] <= 1 and 0 <= row.metrics["auc"] <= 1
    payload = json.loads(board.write_json(tmp_path / "b.json").read_text())
    assert payload["primary_metric"] == "ndcg@10" and len(payload["results"]) == 2
    png = board.plot(tmp_path / "b.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = board.table_rows()
    assert rows[0]["model"] == "item_knn" and "ndcg@10" in rows[0] and "fit s" in rows[0]


def test_a_failing_model_is_reported_not_fatal(clustered: Dataset) -> None:
    board = run_leaderboard({"popularity": {}, "item_knn": {"weighting": "nonsense"}},
                            dataset=clustered, progress=False)
    failed = next(r for r in board.rows if r.model == "item_knn")
    assert failed.error and "weighting" in failed.error
    assert board.best().model == "popularity"
    assert board.ranked()[-1].model == "item_knn"


def test_full_ranking_excludes_training_items(clustered: Dataset) -> None:
    train, test = TemporalHoldout(0.2).split(clustered)
    model = create("popularity").fit(train)
    # testing on the training pairs: every one is excluded, so nothing can be hit
    assert evaluate_ranking(model, train, train)["recall@10"] == 0.0
    res = evaluate_ranking(model, train, test, sampled_negatives=20)
    assert res["users"] == len(set(test.log["user_idx"]))
    # sampled metrics are labelled as such and are optimistic
    assert res["sampled_negatives"] == 20
    assert res["sampled_ndcg@10"] > res["ndcg@10"]


def test_rating_protocol_over_folds(rated: Dataset) -> None:
    folds = [RandomHoldout(0.2, random_state=s).split(rated) for s in range(2)]
    board = run_leaderboard({"mf_als": {"n_epochs": 5}}, protocol="rating", folds=folds,
                            progress=False)
    row = board.rows[0]
    assert row.error is None and len(row.metrics["rmse_folds"]) == 2
    assert row.metrics["rmse"] == pytest.approx(np.mean(row.metrics["rmse_folds"]))
    assert row.metrics["mae"] <= row.metrics["rmse"]
    train, test = folds[0]
    direct = evaluate_rating(create("mf_als", n_epochs=5).fit(train), train, test)
    assert direct["rmse"] == pytest.approx(row.metrics["rmse_folds"][0], rel=1e-6)


def test_cold_start_protocol_uses_only_the_given_history(clustered: Dataset) -> None:
    board = run_leaderboard(["popularity", "item_knn"], protocol="cold-start",
                            dataset=clustered, progress=False)
    held = HeldOutUsers(0.2, given=5)
    train, history, test = held.split_with_history(clustered)
    by_name = {r.model: r for r in board.rows}
    assert by_name["item_knn"].metrics["users"] == len(set(test.log["user_idx"]))
    # item-kNN uses the five given items of a new user; popularity cannot
    assert by_name["item_knn"].metrics["ndcg@10"] > by_name["popularity"].metrics["ndcg@10"]
    model = create("item_knn").fit(train)
    direct = evaluate_ranking(model, train, test, history=history)
    assert direct["ndcg@10"] == pytest.approx(by_name["item_knn"].metrics["ndcg@10"])


@pytest.mark.realdata
def test_ml100k_popularity_matches_the_reference_protocol(ml100k_dir) -> None:
    dataset = ml100k_dataset(ml100k_dir, implicit=True)
    train, test = TemporalHoldout(0.2).split(dataset)
    res = evaluate_ranking(create("popularity").fit(train), train, test)
    assert res["users"] == 943
    assert res["ndcg@10"] == pytest.approx(0.1163, abs=0.002)
    assert res["precision@10"] == pytest.approx(0.1053, abs=0.002)
    assert res["recall@10"] == pytest.approx(0.0602, abs=0.002)


@pytest.mark.realdata
def test_ml100k_rating_fold_sanity(ml100k_dir) -> None:
    train, test = ml100k_fold(ml100k_dir, 1)
    res = evaluate_rating(create("mf_als", n_epochs=5).fit(train), train, test)
    assert res["ratings"] == 20_000
    assert 0.85 < res["rmse"] < 1.0


def test_evaluate_and_publish_activates_the_best(clustered: Dataset, tmp_path) -> None:
    from limelight.evaluation.leaderboard import default_models, evaluate_and_publish
    from limelight.store.artifacts import ArtifactStore

    names = default_models(clustered)
    assert "ease" in names and "ease" not in default_models(clustered, max_dense_items=10)
    out = evaluate_and_publish(clustered, ["popularity", "item_knn"], out_dir=tmp_path / "lb",
                               artifacts_dir=tmp_path / "art", dataset_name="clustered")
    assert out["best"] == "item_knn" and out["version"] == "v0001"
    art = ArtifactStore(tmp_path / "art").load()
    assert art.metadata["name"] == "item_knn" and "ndcg@10" in art.metadata["metrics"]
    # refitted on everything, not only the training part
    assert art.model.user_items_.nnz == clustered.interactions.nnz
    assert (tmp_path / "lb" / "clustered-ranking.png").is_file()


def test_max_users_scores_a_seeded_sample(clustered: Dataset) -> None:
    train, test = TemporalHoldout(0.2).split(clustered)
    model = create("popularity").fit(train)
    a = evaluate_ranking(model, train, test, max_users=30, extras=False)
    b = evaluate_ranking(model, train, test, max_users=30, extras=False)
    assert a["users"] == 30 and a == b
