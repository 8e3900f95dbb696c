"""Tuning: search spaces as data, budgets, and a test set the search never sees."""

from __future__ import annotations

import time

import optuna
import pytest

from limelight.data.dataset import Dataset
from limelight.errors import ConfigError
from limelight.evaluation.leaderboard import run_leaderboard
from limelight.evaluation.split import TemporalHoldout
from limelight.evaluation.tuning import (
    DEFAULT_SPACES,
    STARTING_POINTS,
    space_for,
    suggest,
    tune,
    validate_space,
)
from limelight.models.registry import MODELS, create


class SpySplitter:
    """A real temporal splitter that records every dataset it is asked to split."""

    def __init__(self, fraction: float = 0.1) -> None:
        self.inner = TemporalHoldout(fraction)
        self.seen: list[Dataset] = []

    def split(self, dataset: Dataset) -> tuple[Dataset, Dataset]:
        self.seen.append(dataset)
        return self.inner.split(dataset)


def _pairs(ds: Dataset) -> set[tuple[int, int]]:
    return set(zip(ds.log["user_idx"].tolist(), ds.log["item_idx"].tolist(), strict=True))


def test_validate_space_accepts_data_and_json() -> None:
    space = validate_space('{"n_factors": {"type": "int", "low": 8, "high": 64, "log": true},'
                           ' "regularization": {"type": "log", "low": 0.001, "high": 1},'
                           ' "weighting": {"type": "categorical", "choices": ["a", "b"]}}')
    params = suggest(optuna.trial.FixedTrial(
        {"n_factors": 16, "regularization": 0.01, "weighting": "b"}), space)
    assert params == {"n_factors": 16, "regularization": 0.01, "weighting": "b"}


@pytest.mark.parametrize("bad", [
    {"x": {"type": "int", "low": 5, "high": 1}},
    {"x": {"type": "log", "low": 0, "high": 1}},
    {"x": {"type": "categorical", "choices": []}},
    {"x": {"type": "uniform", "low": 0, "high": 1}},
    {"x": {"low": 0, "high": 1}},
    "[1, 2]",
    "{not json",
])
def test_validate_space_rejects_bad_specs(bad) -> None:
    with pytest.raises(ConfigError):
        validate_space(bad)


def test_default_spaces_match_the_models_parameters() -> None:
    for name, space in DEFAULT_SPACES.items():
        if name not in MODELS:
            continue
        params = create(name).get_params()
        missing = [p for p in space if p not in params]
        assert not missing, f"{name}: default space names unknown parameters {missing}"
    for name, points in STARTING_POINTS.items():
        for point in points:
            assert set(point) <= set(DEFAULT_SPACES[name]), (name, point)
    with pytest.raises(ConfigError, match="no parameter"):
        space_for("ease", create("ease"), {"nonsense": {"type": "int", "low": 1, "high": 2}})


def test_tune_only_sees_training_data(clustered: Dataset) -> None:
    train, test = TemporalHoldout(0.2).split(clustered)
    spy = SpySplitter()
    result = tune("item_knn", train, budget_seconds=30, n_trials=4, validation_splitter=spy)
    assert len(spy.seen) == 1 and spy.seen[0] is train
    assert not _pairs(spy.seen[0]) & _pairs(test)
    assert result.n_trials == 4
    assert result.best_value >= result.default_value  # the defaults are among the trials
    assert result.model is not None and result.model.n_users_ == train.n_users
    # the refit model saw all of train, not just the validation fit part
    assert result.model.user_items_.nnz == train.interactions.nnz


def test_leaderboard_tuning_never_touches_the_test_split(clustered: Dataset) -> None:
    spy = SpySplitter()
    board = run_leaderboard(["item_knn"], dataset=clustered, tune=True, budget_seconds=30,
                            n_trials=3, validation_splitter=spy, progress=False)
    train, test = TemporalHoldout(0.2).split(clustered)
    assert len(spy.seen) == 1
    assert _pairs(spy.seen[0]) == _pairs(train)
    assert not _pairs(spy.seen[0]) & _pairs(test)
    assert board.rows[0].tuned and board.rows[0].n_trials == 3


def test_budget_is_respected(clustered: Dataset) -> None:
    start = time.perf_counter()
    result = tune("item_knn", clustered, budget_seconds=1.0, sampler="random", refit=False)
    elapsed = time.perf_counter() - start
    assert result.n_trials >= 1 and result.seconds < 4.0 and elapsed < 8.0
    assert result.model is None


def test_rating_tuning_minimises_rmse(rated: Dataset) -> None:
    result = tune("mf_als", rated, kind="rating", n_trials=3, budget_seconds=30,
                  fixed_params={"n_epochs": 5}, refit=False)
    assert result.metric == "rmse"
    assert result.best_value <= result.default_value
    assert result.best_params["n_epochs"] == 5  # fixed parameters are not searched
    assert all(t["params"].get("n_epochs") is None for t in result.trials)


def test_unknown_sampler_is_refused(clustered: Dataset) -> None:
    with pytest.raises(ConfigError):
        tune("item_knn", clustered, sampler="grid", n_trials=1)
