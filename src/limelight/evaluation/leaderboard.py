"""The leaderboard: several models, one dataset, one protocol, one table.

:func:`run_leaderboard` splits the data once (or takes predefined folds), optionally tunes each
model on a validation cut of the *training* part (:func:`~limelight.evaluation.tuning.tune`),
fits it on all of the training part (timed), scores it with the protocol and collects a
:class:`Leaderboard` that prints as a table, writes JSON and draws a bar chart.
"""

from __future__ import annotations

import json
import statistics
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from limelight.errors import ConfigError, LimelightError
from limelight.evaluation.protocol import (
    ProtocolSpec,
    evaluate_ranking,
    evaluate_rating,
    get_protocol,
)
from limelight.evaluation.split import HeldOutUsers, Splitter

if TYPE_CHECKING:
    from rich.console import Console

    from limelight.data.dataset import Dataset
    from limelight.models.base import Recommender

#: Columns shown in the printed table per protocol kind (all metrics go to JSON).
TABLE_COLUMNS = {
    "ranking": ["ndcg@10", "recall@10", "recall@20", "precision@10", "map@10", "mrr@10",
                "hit_rate@10", "auc", "coverage@10", "novelty@10", "gini@10"],
    "rating": ["rmse", "mae"],
}


#: The few columns shown where space is short (the main job's summary).
COMPACT_COLUMNS = ["ndcg@10", "recall@10", "map@10", "hit_rate@10", "coverage@10", "novelty@10"]


@dataclass
class ModelResult:
    """One row of the leaderboard."""

    model: str
    metrics: dict[str, float] = field(default_factory=dict)
    fit_seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    tuned: bool = False
    validation: float | None = None
    tune_seconds: float = 0.0
    n_trials: int = 0
    error: str | None = None
    fitted: Any = field(default=None, repr=False, compare=False)  # last fitted model

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("fitted")
        return out


@dataclass
class Leaderboard:
    """Results of several models under one protocol."""

    protocol: str
    dataset: str
    primary_metric: str
    higher_is_better: bool
    rows: list[ModelResult] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def ranked(self) -> list[ModelResult]:
        """Rows best first by the primary metric; failed models last."""
        def key(row: ModelResult) -> float:
            value = row.metrics.get(self.primary_metric)
            if value is None or row.error:
                return float("inf")
            return -value if self.higher_is_better else value
        return sorted(self.rows, key=key)

    def best(self) -> ModelResult | None:
        ranked = [r for r in self.ranked() if not r.error]
        return ranked[0] if ranked else None

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "dataset": self.dataset,
                "primary_metric": self.primary_metric, "higher_is_better": self.higher_is_better,
                "info": self.info, "results": [r.to_dict() for r in self.ranked()]}

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        return path

    def table_rows(self, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        kind = "rating" if self.primary_metric in ("rmse", "mae") else "ranking"
        columns = columns or TABLE_COLUMNS[kind]
        rows = []
        for r in self.ranked():
            row: dict[str, Any] = {"model": r.model}
            for col in columns:
                if any(col in x.metrics for x in self.rows):
                    row[col] = r.metrics.get(col)
            row["fit s"] = r.fit_seconds
            if any(x.tuned for x in self.rows):
                row["tuned"] = f"{r.n_trials} trials"
            if r.error:
                row["error"] = r.error
            rows.append(row)
        return rows

    def print(self, console: Console | None = None, columns: Sequence[str] | None = None
              ) -> None:
        """Print a rich table, best model first (``columns``: metrics to show)."""
        from rich.console import Console
        from rich.table import Table

        console = console or Console()
        if columns is None and console.width < 140 and self.primary_metric not in ("rmse",
                                                                                     "mae"):
            columns = COMPACT_COLUMNS  # a narrow terminal: the full set stays in the JSON
        rows = self.table_rows(columns)
        table = Table(title=f"{self.dataset} -- {self.protocol} protocol "
                            f"(by {self.primary_metric})")
        columns = list(dict.fromkeys(c for row in rows for c in row))
        for col in columns:
            table.add_column(col, justify="left" if col in ("model", "error") else "right")
        for row in rows:
            table.add_row(*(_fmt(row.get(c)) for c in columns))
        console.print(table)

    def plot(self, path: str | Path, metric: str | None = None) -> Path:
        """Save a bar chart of ``metric`` (default: the primary one) by model as PNG."""
        import matplotlib

        matplotlib.use("Agg")  # no display needed; safe in servers and CI
        import matplotlib.pyplot as plt

        metric = metric or self.primary_metric
        rows = [r for r in self.ranked() if metric in r.metrics]
        fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(rows) + 2), 3.5))
        names = [r.model for r in rows]
        values = [r.metrics[metric] for r in rows]
        bars = ax.bar(names, values, color="#d4a017")
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
        ax.set_ylabel(metric)
        ax.set_title(f"{self.dataset}: {metric} by model ({self.protocol})")
        ax.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
    return "" if value is None else str(value)


ModelsArg = Sequence[str] | Mapping[str, Mapping[str, Any]]


def _model_params(models: ModelsArg) -> dict[str, dict[str, Any]]:
    if isinstance(models, Mapping):
        return {name: dict(params or {}) for name, params in models.items()}
    return {name: {} for name in models}


def run_leaderboard(models: ModelsArg, *, protocol: str | ProtocolSpec = "ranking",
                    dataset: Dataset | None = None,
                    folds: Sequence[tuple[Dataset, Dataset]] | None = None,
                    dataset_name: str = "dataset", tune: bool = False,
                    budget_seconds: float = 30.0, n_trials: int | None = None,
                    validation_splitter: Splitter | None = None,
                    sampled_negatives: int | None = None, random_state: int = 0,
                    progress: bool = True, console: Console | None = None,
                    factory: Any = None, max_eval_users: int | None = None) -> Leaderboard:
    """Evaluate ``models`` under ``protocol`` and collect a :class:`Leaderboard`.

    Parameters
    ----------
    models
        Registry names, or a mapping name -> fixed parameters.
    protocol
        ``"ranking"``, ``"rating"`` or ``"cold-start"`` (see :data:`PROTOCOLS`) or a spec.
    dataset
        The data to split with the protocol's splitter; or give ``folds`` instead.
    folds
        Predefined (train, test) pairs (e.g. ML-100K's u1..u5); metrics are averaged over them.
    tune
        Tune each model on a validation cut of each training part (never the test part).
    budget_seconds
        Tuning budget per model (split evenly over folds).
    n_trials
        Optional cap on tuning trials per model and fold.
    validation_splitter
        Overrides the protocol's validation splitter.
    sampled_negatives
        Also report sampled-negative ranking metrics (labelled ``sampled_...``).
    progress
        Show a progress bar.
    factory
        ``factory(name, **params) -> Recommender``; defaults to the model registry.
    max_eval_users
        Score a seeded sample of this many test users (large data); None scores all.

    Returns
    -------
    Leaderboard
    """
    from limelight.evaluation.tuning import tune as tune_model

    spec = get_protocol(protocol) if isinstance(protocol, str) else protocol
    if factory is None:
        from limelight.models.registry import create as factory
    if folds is None:
        if dataset is None:
            raise ConfigError("run_leaderboard needs a dataset or folds")
        folds = [_split(spec, dataset)]
    folds = [tuple(f) for f in folds]
    params = _model_params(models)
    board = Leaderboard(protocol=spec.name, dataset=dataset_name,
                        primary_metric=spec.primary_metric,
                        higher_is_better=spec.higher_is_better,
                        info={"description": spec.description, "folds": len(folds),
                              "tuned": tune, "budget_seconds_per_model": budget_seconds,
                              "candidates": "full catalogue, training items excluded"})
    val_splitter = validation_splitter or spec.validation_splitter
    with _progress(progress, console) as bar:
        task = bar.add_task("models", total=len(params) * len(folds)) if bar else None
        for name, fixed in params.items():
            row = ModelResult(model=name, params=dict(fixed), tuned=tune)
            per_fold: list[dict[str, float]] = []
            fit_times: list[float] = []
            try:
                for fold in folds:
                    train, test = fold[0], fold[-1]
                    history = fold[1] if len(fold) == 3 else None
                    if bar:
                        bar.update(task, description=f"{name}")
                    chosen = dict(fixed)
                    if tune:
                        result = tune_model(
                            name, train, kind=spec.kind, metric=spec.primary_metric,
                            budget_seconds=budget_seconds / len(folds), n_trials=n_trials,
                            validation_splitter=val_splitter, fixed_params=fixed, refit=False,
                            random_state=random_state,
                            factory=lambda _n=name, **p: factory(_n, **p))
                        chosen = result.best_params
                        row.validation = result.best_value
                        row.tune_seconds += result.seconds
                        row.n_trials += result.n_trials
                    model = factory(name, **chosen)
                    start = time.perf_counter()
                    model.fit(train)
                    fit_times.append(time.perf_counter() - start)
                    per_fold.append(_score(spec, model, train, test, history,
                                           sampled_negatives, random_state, max_eval_users))
                    row.params, row.fitted = {**chosen}, model
                    if bar:
                        bar.advance(task)
            except (LimelightError, ValueError, ArithmeticError, MemoryError) as exc:
                row.error = f"{type(exc).__name__}: {exc}"
                row.metrics = {}
                board.info.setdefault("errors", {})[name] = traceback.format_exc(limit=3)
            else:
                row.metrics = _mean(per_fold)
                if len(per_fold) > 1:
                    row.metrics.update({f"{m}_folds": [f[m] for f in per_fold]
                                        for m in ("rmse", "mae") if m in per_fold[0]})
            row.fit_seconds = statistics.median(fit_times) if fit_times else 0.0
            if len(fit_times) > 1:
                row.metrics["fit_seconds_max"] = max(fit_times)
            board.rows.append(row)
    return board


def _split(spec: ProtocolSpec, dataset: Dataset) -> tuple[Dataset, ...]:
    if isinstance(spec.test_splitter, HeldOutUsers):
        return spec.test_splitter.split_with_history(dataset)
    return spec.test_splitter.split(dataset)


def _score(spec: ProtocolSpec, model: Recommender, train: Dataset, test: Dataset,
           history: Dataset | None, sampled: int | None, seed: int,
           max_users: int | None = None) -> dict[str, float]:
    if spec.kind == "rating":
        return evaluate_rating(model, train, test)
    return evaluate_ranking(model, train, test, history=history, sampled_negatives=sampled,
                            random_state=seed, max_users=max_users)


def _mean(per_fold: list[dict[str, float]]) -> dict[str, Any]:
    if len(per_fold) == 1:
        return dict(per_fold[0])
    keys = [k for k in per_fold[0] if all(k in f for f in per_fold)]
    return {k: float(sum(f[k] for f in per_fold) / len(per_fold)) for k in keys}


class _NoBar:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _progress(enabled: bool, console: Console | None) -> Any:
    if not enabled:
        return _NoBar()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description:<12}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                    console=console, transient=True)


def evaluate_and_publish(dataset: Dataset, models: ModelsArg, *, out_dir: str | Path,
                         artifacts_dir: str | Path | None = None, dataset_name: str = "dataset",
                         protocol: str = "ranking", tune: bool = False,
                         budget_seconds: float = 10.0, console: Console | None = None,
                         progress: bool = False, max_eval_users: int | None = 2000
                         ) -> dict[str, Any]:
    """Leaderboard on ``dataset``, written to ``out_dir`` (JSON + PNG) and printed; the best
    model is then refitted on all of ``dataset`` and saved (and activated) as an artifact.

    Returns
    -------
    dict
        ``best``, ``metrics`` (primary metric per model), ``json``, ``plot``, ``version``
        (None without ``artifacts_dir``) and a one-line ``summary``.
    """
    from limelight.models.registry import create
    from limelight.store.artifacts import ArtifactStore

    board = run_leaderboard(models, protocol=protocol, dataset=dataset,
                            dataset_name=dataset_name, tune=tune, budget_seconds=budget_seconds,
                            progress=progress, console=console, max_eval_users=max_eval_users)
    out_dir = Path(out_dir)
    json_path = board.write_json(out_dir / f"{dataset_name}-{protocol}.json")
    png_path = board.plot(out_dir / f"{dataset_name}-{protocol}.png")
    if console is not None:
        board.print(console, COMPACT_COLUMNS if board.primary_metric != "rmse" else None)
    best = board.best()
    version = None
    if best is not None and artifacts_dir is not None:
        model = create(best.model, **best.params).fit(dataset)
        version = ArtifactStore(artifacts_dir).save(
            model, best.model, {"metrics": best.metrics, "protocol": protocol,
                                "leaderboard": str(json_path)},
            dataset=dataset, activate=True)
    metric = board.primary_metric
    scores = {r.model: r.metrics.get(metric) for r in board.ranked()}
    summary = (f"best {best.model} {metric} {best.metrics[metric]:.4f} of {len(board.rows)} "
               f"models" + (f", saved as {version} (active)" if version else "")
               if best else "no model finished")
    return {"best": best.model if best else None, "metric": metric, "metrics": scores,
            "json": str(json_path), "plot": str(png_path), "version": version,
            "summary": summary}


def default_models(dataset: Dataset, *, max_dense_items: int = 5000) -> list[str]:
    """A quick, representative model set for ``dataset``: EASE (a dense item-item matrix)
    only while the catalogue is small enough for it."""
    names = ["popularity", "item_knn", "als", "rp3beta"]
    if dataset.n_items <= max_dense_items:
        names.append("ease")
    return names
