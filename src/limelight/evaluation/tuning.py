"""Hyperparameter search on a validation split carved from the training data only.

A search space is plain data -- a dict (or JSON object) from parameter name to a spec::

    {"n_factors": {"type": "int", "low": 16, "high": 256, "log": true},
     "regularization": {"type": "log", "low": 1e-3, "high": 10.0},
     "alpha": {"type": "float", "low": 0.5, "high": 40.0},
     "similarity": {"type": "categorical", "choices": ["cosine", "bm25"]}}

``type`` is ``int`` (optional ``log`` and ``step``), ``float`` (optional ``log``), ``log``
(a float searched on a log scale) or ``categorical`` (``choices``). :data:`DEFAULT_SPACES`
holds a sensible space per registered model.

:func:`tune` never sees a test set: it receives the *training* dataset, cuts a validation split
from it with the protocol's splitter (by default the last 10% of each user's training items),
searches with optuna (TPE, or random) within a time budget, and refits the best parameters on
all of the training data. The first trials are the known-good :data:`STARTING_POINTS`, then
the model's defaults (so, budget allowing, tuning can only match or beat them on validation),
then the sampler's proposals. The first trial always runs; the budget bounds the rest.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from limelight.errors import ConfigError
from limelight.evaluation.split import Splitter, TemporalHoldout

if TYPE_CHECKING:
    import optuna

    from limelight.data.dataset import Dataset
    from limelight.models.base import Recommender

ParamSpec = dict[str, Any]
SearchSpace = dict[str, ParamSpec]

#: Scoring users from a recency-weighted history (half-life in interactions; None = off).
_RECENCY: ParamSpec = {"type": "categorical", "choices": [None, 2, 3, 5, 10, 20, 50]}

#: A default search space per model name (parameters a model lacks are skipped).
DEFAULT_SPACES: dict[str, SearchSpace] = {
    "popularity": {},
    "item_knn": {
        "n_neighbors": {"type": "int", "low": 10, "high": 400, "log": True},
        "shrinkage": {"type": "float", "low": 0.0, "high": 50.0},
        "weighting": {"type": "categorical", "choices": ["cosine", "tfidf", "bm25"]},
        "history_half_life": _RECENCY,
    },
    "user_knn": {
        "n_neighbors": {"type": "int", "low": 10, "high": 400, "log": True},
        "shrinkage": {"type": "float", "low": 0.0, "high": 50.0},
        "weighting": {"type": "categorical", "choices": ["cosine", "tfidf", "bm25"]},
    },
    "als": {
        "n_factors": {"type": "int", "low": 16, "high": 256, "log": True},
        "regularization": {"type": "log", "low": 1e-3, "high": 10.0},
        "alpha": {"type": "log", "low": 0.3, "high": 50.0},
        "n_epochs": {"type": "int", "low": 5, "high": 30},
        "confidence": {"type": "categorical", "choices": ["linear", "bm25"]},
        "history_half_life": _RECENCY,
    },
    "bpr": {
        "n_factors": {"type": "int", "low": 16, "high": 256, "log": True},
        "learning_rate": {"type": "log", "low": 1e-3, "high": 0.1},
        "regularization": {"type": "log", "low": 1e-4, "high": 0.1},
        "n_epochs": {"type": "int", "low": 50, "high": 400, "log": True},
    },
    "ease": {
        "regularization": {"type": "log", "low": 10.0, "high": 5000.0},
        "history_half_life": _RECENCY,
    },
    "rp3beta": {
        "alpha": {"type": "float", "low": 0.2, "high": 1.5},
        "beta": {"type": "float", "low": 0.0, "high": 1.0},
        "n_neighbors": {"type": "int", "low": 20, "high": 500, "log": True},
        "history_half_life": _RECENCY,
    },
    "content": {
        "idf": {"type": "categorical", "choices": [True, False]},
    },
    "mf_als": {
        "n_factors": {"type": "int", "low": 4, "high": 128, "log": True},
        "regularization": {"type": "log", "low": 1e-3, "high": 1.0},
        "bias_regularization": {"type": "log", "low": 1e-3, "high": 1.0},
        "n_epochs": {"type": "int", "low": 5, "high": 30},
        "neighbor_weight": {"type": "float", "low": 0.0, "high": 0.8},
        "user_neighbor_weight": {"type": "float", "low": 0.0, "high": 0.5},
    },
    "mf_sgd": {
        "n_factors": {"type": "int", "low": 4, "high": 128, "log": True},
        "learning_rate": {"type": "log", "low": 1e-3, "high": 0.05},
        "regularization": {"type": "log", "low": 1e-3, "high": 0.3},
        "n_epochs": {"type": "int", "low": 10, "high": 60},
        "neighbor_weight": {"type": "float", "low": 0.0, "high": 0.8},
        "user_neighbor_weight": {"type": "float", "low": 0.0, "high": 0.5},
    },
    "knn_baseline": {
        "n_neighbors": {"type": "int", "low": 10, "high": 200, "log": True},
        "shrinkage": {"type": "float", "low": 0.0, "high": 300.0},
    },
    "blend": {},
}


#: Known-good starting points tried right after a model's defaults (then the search goes on):
#: a short budget then never ends below a configuration the field already knows works.
STARTING_POINTS: dict[str, list[dict[str, Any]]] = {
    # ranking models: common configurations; the recency half-life of 5 interactions was the
    # best on another dataset's validation split (MovieLens latest-small, temporal)
    "als": [{"n_factors": 32, "regularization": 0.1, "alpha": 1.0, "n_epochs": 15,
             "confidence": "linear", "history_half_life": 5}],
    "bpr": [{"n_factors": 64, "learning_rate": 0.01, "regularization": 0.01, "n_epochs": 100}],
    "ease": [{"regularization": 400.0, "history_half_life": 5}, {"regularization": 200.0}],
    "item_knn": [{"n_neighbors": 100, "shrinkage": 10.0, "weighting": "cosine",
                  "history_half_life": 5}],
    "rp3beta": [{"alpha": 0.8, "beta": 0.4, "n_neighbors": 100, "history_half_life": 5}],
    # rating models: found on another dataset (MovieLens latest-small), blending in kNN
    "mf_als": [{"n_factors": 8, "regularization": 0.1, "bias_regularization": 0.05,
                "n_epochs": 10, "neighbor_weight": 0.4}],
    "mf_sgd": [{"n_factors": 50, "learning_rate": 0.005, "regularization": 0.02,
                "n_epochs": 20, "neighbor_weight": 0.4}],
}


def validate_space(space: Mapping[str, Any]) -> SearchSpace:
    """Check a search space (a dict, or a JSON string/file path holding one); return it."""
    if isinstance(space, str | Path):
        text = str(space)
        path = Path(text)
        try:
            text = path.read_text() if path.suffix == ".json" and path.is_file() else text
            space = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"search space is not valid JSON: {exc}") from exc
    if not isinstance(space, Mapping):
        raise ConfigError("a search space is a JSON object: name -> {type, low, high, choices}")
    out: SearchSpace = {}
    for name, spec in space.items():
        if not isinstance(spec, Mapping) or "type" not in spec:
            raise ConfigError(f"search space entry {name!r} needs a 'type'")
        kind = spec["type"]
        if kind == "categorical":
            if not spec.get("choices"):
                raise ConfigError(f"categorical parameter {name!r} needs non-empty 'choices'")
        elif kind in ("int", "float", "log"):
            if "low" not in spec or "high" not in spec or spec["low"] > spec["high"]:
                raise ConfigError(f"parameter {name!r} needs 'low' <= 'high'")
            if (kind == "log" or spec.get("log")) and spec["low"] <= 0:
                raise ConfigError(f"log-scale parameter {name!r} needs 'low' > 0")
        else:
            raise ConfigError(f"parameter {name!r}: unknown type {kind!r} "
                              "(use int, float, log or categorical)")
        out[str(name)] = dict(spec)
    return out


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """Draw one parameter set from ``space`` through an optuna trial."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec["type"]
        if kind == "categorical":
            params[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif kind == "int":
            params[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]),
                                             step=int(spec.get("step", 1)),
                                             log=bool(spec.get("log", False)))
        else:
            params[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]),
                                               log=kind == "log" or bool(spec.get("log")))
    return params


def space_for(name: str, model: Recommender | None = None,
              space: Mapping[str, Any] | None = None) -> SearchSpace:
    """The search space of model ``name``: ``space`` when given, else the default, restricted
    to parameters the model actually has."""
    chosen = validate_space(space if space is not None else DEFAULT_SPACES.get(name, {}))
    if model is None:
        return chosen
    known = model.get_params()
    unknown = [p for p in chosen if p not in known]
    if unknown and space is not None:
        raise ConfigError(f"{name} has no parameter(s) {unknown}; it has {sorted(known)}")
    return {p: spec for p, spec in chosen.items() if p in known}


@dataclass
class TuningResult:
    """Outcome of :func:`tune`."""

    model_name: str
    metric: str
    best_params: dict[str, Any]
    best_value: float
    default_value: float
    n_trials: int
    seconds: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    model: Recommender | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model_name, "metric": self.metric, "best_params": self.best_params,
                "best_value": self.best_value, "default_value": self.default_value,
                "n_trials": self.n_trials, "seconds": self.seconds, "trials": self.trials}


def _default_metric(kind: str) -> tuple[str, bool]:
    return ("rmse", False) if kind == "rating" else ("ndcg@10", True)


def tune(name: str, train: Dataset, *, space: Mapping[str, Any] | None = None,
         kind: str = "ranking", metric: str | None = None, budget_seconds: float = 30.0,
         n_trials: int | None = None, sampler: str = "tpe",
         validation_splitter: Splitter | None = None, fixed_params: Mapping[str, Any] | None = None,
         refit: bool = True, random_state: int = 0,
         factory: Callable[..., Recommender] | None = None,
         callback: Callable[[int, float], None] | None = None) -> TuningResult:
    """Search hyperparameters of model ``name`` on a validation split of ``train``.

    Parameters
    ----------
    name
        Registry name of the model.
    train
        The training data. The test set is never an argument: validation comes from here.
    space
        Search space (see module doc); defaults to :data:`DEFAULT_SPACES`.
    kind
        ``"ranking"`` (maximise ``ndcg@10`` by full ranking) or ``"rating"`` (minimise RMSE).
    metric
        The key of the evaluation result to optimise (direction follows the metric: error
        metrics ``rmse``/``mae`` are minimised, everything else maximised).
    budget_seconds
        Wall-clock budget of the search (the trial running at the deadline finishes).
    n_trials
        Optional cap on trials.
    sampler
        ``"tpe"`` (Bayesian) or ``"random"``.
    validation_splitter
        Cuts (fit, validation) from ``train``; default: last 10% of each user by time.
    fixed_params
        Parameters set on every trial and not searched.
    refit
        Refit the best parameters on all of ``train`` and return the model.
    random_state
        Seed of the sampler.
    factory
        ``factory(**params) -> Recommender``; defaults to ``limelight.models.registry.create``
        with ``name``.
    callback
        Called after each trial with (trial number, best value so far) -- progress bars.

    Returns
    -------
    TuningResult
    """
    import optuna

    from limelight.evaluation.protocol import evaluate_ranking, evaluate_rating

    if sampler not in ("tpe", "random"):
        raise ConfigError(f"unknown sampler {sampler!r}: use tpe or random")
    if factory is None:
        from limelight.models.registry import create

        def factory(**params: Any) -> Recommender:
            return create(name, **params)

    fixed = dict(fixed_params or {})
    metric, maximize = (metric, metric not in ("rmse", "mae")) if metric else _default_metric(kind)
    splitter = validation_splitter or TemporalHoldout(0.1)
    fit_part, valid_part = splitter.split(train)
    defaults = factory(**fixed)
    full_space = space_for(name, defaults, space)
    searched = {p: s for p, s in full_space.items() if p not in fixed}

    def score(params: dict[str, Any]) -> float:
        model = factory(**fixed, **params).fit(fit_part)
        if kind == "rating":
            result = evaluate_rating(model, fit_part, valid_part)
        else:
            result = evaluate_ranking(model, fit_part, valid_part, extras=False)
        if metric not in result:
            raise ConfigError(f"unknown metric {metric!r}; available: {sorted(result)}")
        return float(result[metric])

    trials: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, searched)
        value = score(params)
        trials.append({"number": trial.number, "params": params, "value": value})
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    chosen = (optuna.samplers.RandomSampler(seed=random_state) if sampler == "random"
              else optuna.samplers.TPESampler(seed=random_state))
    study = optuna.create_study(direction="maximize" if maximize else "minimize", sampler=chosen)
    start = time.perf_counter()
    default_params = _defaults_inside(defaults.get_params(), searched)
    if searched:
        queued = []
        for point in STARTING_POINTS.get(name, []) if space is None else []:
            inside = _defaults_inside(point, searched)
            if inside and inside not in queued and inside != default_params:
                queued.append(inside)
        queued.append(default_params)
        grid = _grid_size(searched)
        if grid is not None:  # all-categorical: no point repeating a finished grid
            n_trials = min(n_trials or grid, grid)
        if n_trials is not None:
            queued = queued[:n_trials]
        for params in queued:
            study.enqueue_trial(params, skip_if_exists=True)
        callbacks = []
        if callback is not None:
            callbacks.append(lambda st, tr: callback(tr.number, st.best_value))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
            # the first queued point always runs, whatever the budget; the rest obey it
            study.optimize(objective, n_trials=1, callbacks=callbacks,
                           catch=(ArithmeticError, ValueError))
            remaining = budget_seconds - (time.perf_counter() - start)
            left = None if n_trials is None else n_trials - 1
            if remaining > 0 and (left is None or left > 0):
                study.optimize(objective, n_trials=left, timeout=remaining,
                               callbacks=callbacks, catch=(ArithmeticError, ValueError))
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not done:
            raise ConfigError(f"every tuning trial of {name} failed; check the search space")
        best_params, best_value = dict(study.best_params), float(study.best_value)
        default_value = next((t["value"] for t in trials if t["params"] == default_params),
                             float("nan"))
    else:  # nothing to search: one validation score of the defaults
        best_params, best_value = {}, score({})
        default_value = best_value
        trials.append({"number": 0, "params": {}, "value": best_value})
    seconds = time.perf_counter() - start
    model = factory(**fixed, **best_params).fit(train) if refit else None
    return TuningResult(model_name=name, metric=metric, best_params={**fixed, **best_params},
                        best_value=best_value, default_value=default_value,
                        n_trials=len(trials), seconds=seconds, trials=trials, model=model)


def _grid_size(space: SearchSpace) -> int | None:
    """Number of distinct points of an all-categorical space (None otherwise)."""
    if not all(spec["type"] == "categorical" for spec in space.values()):
        return None
    size = 1
    for spec in space.values():
        size *= len(spec["choices"])
    return size


def _defaults_inside(params: Mapping[str, Any], space: SearchSpace) -> dict[str, Any]:
    """The model's default values of the searched parameters, where they lie in the space."""
    out: dict[str, Any] = {}
    for name, spec in space.items():
        if name not in params:
            continue
        value = params[name]
        if spec["type"] == "categorical":
            if value in spec["choices"]:  # None is a valid choice (e.g. "off")
                out[name] = value
        elif value is not None and spec["low"] <= value <= spec["high"]:
            out[name] = int(value) if spec["type"] == "int" else float(value)
    return out
