"""``limelight evaluate | train | tune | models ...``: the leaderboard and model artifacts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from limelight.cli.common import console, fail, friendly_errors, print_json, print_table

if TYPE_CHECKING:
    from limelight.data.dataset import Dataset
    from limelight.store.artifacts import ArtifactStore

DEFAULT_MODELS = {
    "ranking": ["popularity", "item_knn", "user_knn", "als", "bpr", "ease", "rp3beta"],
    "rating": ["mf_als", "mf_sgd"],
    "cold-start": ["popularity", "item_knn", "als", "ease", "rp3beta", "content"],
}
SOURCES = ("ml-100k", "sample", "store")

models_app = typer.Typer(help="List, activate and roll back saved model versions.",
                         no_args_is_help=True)



# -- data ----------------------------------------------------------------------------------

def _ml100k_dir(data_dir: Path | None) -> Path:
    if data_dir is None:
        root = os.environ.get("LIMELIGHT_DATA_DIR")
        if not root:
            fail("--dataset ml-100k needs --data-dir DIR (the folder holding u.data) or "
                 "LIMELIGHT_DATA_DIR")
        data_dir = Path(root) / "ml-100k"
    if not (data_dir / "u.data").is_file():
        fail(f"{data_dir} does not hold MovieLens 100K (no u.data)")
    return data_dir


def load_evaluation_data(source: str, protocol: str, *, data_dir: Path | None = None,
                         store_url: str | None = None, size: str = "tiny", seed: int = 0
                         ) -> tuple[Dataset | None, list[tuple[Dataset, Dataset]] | None]:
    """(dataset, folds) for ``source``: ML-100K (official folds for the rating protocol),
    the generated sample world, or the configured event store."""
    from limelight.data.dataset import Dataset, add_features
    from limelight.evaluation import split

    if source == "ml-100k":
        path = _ml100k_dir(data_dir)
        if protocol == "rating":
            return None, split.ml100k_folds(path)
        return split.ml100k_dataset(path, implicit=True, with_features=True), None
    if source == "sample":
        from limelight.settings import get_settings
        from limelight.sim import generate_world

        world = generate_world(size, seed=seed)
        dataset = Dataset.from_frame(world.events,
                                     event_weights=get_settings().dataset.event_weights)
        add_features(dataset, world.users, world.items)
        return dataset, None
    if source == "store":
        from limelight.cli.common import open_configured_store

        return _store_dataset(open_configured_store(store_url)), None
    fail(f"unknown dataset {source!r}; choose one of {', '.join(SOURCES)}")


def _store_dataset(store: Any) -> Dataset:
    """The training dataset of an event store, built as the settings' [dataset] section says."""
    from limelight.data.dataset import build_dataset
    from limelight.settings import get_settings

    cfg = get_settings().dataset
    return build_dataset(store, event_weights=cfg.event_weights,
                         half_life_days=cfg.half_life_days,
                         min_user_interactions=cfg.min_user_interactions,
                         min_item_interactions=cfg.min_item_interactions)


def _models_arg(models: str | None, protocol: str) -> list[str]:
    from limelight.models.registry import MODELS

    names = [m.strip() for m in models.split(",") if m.strip()] if models else list(
        DEFAULT_MODELS.get(protocol, DEFAULT_MODELS["ranking"]))
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        fail(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(sorted(MODELS))}")
    return names


def _params_arg(params: str | None) -> dict[str, Any]:
    if not params:
        return {}
    try:
        value = json.loads(params)
    except ValueError as exc:
        fail(f"--params is not valid JSON: {exc}")
    if not isinstance(value, dict):
        fail('--params must be a JSON object, e.g. \'{"n_factors": 64}\'')
    return value


def _artifacts(artifacts: Path | None) -> ArtifactStore:
    from limelight.settings import get_settings
    from limelight.store.artifacts import ArtifactStore

    return ArtifactStore(artifacts or get_settings().artifacts_dir)


# -- commands ------------------------------------------------------------------------------

def evaluate(
    dataset: str = typer.Option("sample", "--dataset", help="ml-100k, sample or store."),
    protocol: str = typer.Option("ranking", help="ranking, rating or cold-start."),
    models: str | None = typer.Option(None, help="Comma-separated model names "
                                      "(default: the protocol's usual set)."),
    tune: bool = typer.Option(False, "--tune/--no-tune", help="Tune each model first."),
    budget: float = typer.Option(20.0, help="Tuning budget in seconds per model."),
    out: Path = typer.Option(Path("leaderboard"), help="Folder for leaderboard JSON and PNG."),
    data_dir: Path | None = typer.Option(None, help="MovieLens 100K folder (ml-100k)."),
    store: str | None = typer.Option(None, help="Event store URL (--dataset store)."),
    size: str = typer.Option("tiny", help="Sample world size (--dataset sample)."),
    seed: int = typer.Option(0, help="Seed of the sample world and of tuning."),
    sampled: int | None = typer.Option(None, help="Also report sampled-negative metrics "
                                       "with this many negatives (labelled sampled_)."),
    as_json: bool = typer.Option(False, "--json", help="Print the leaderboard as JSON."),
) -> None:
    """Run a leaderboard: fit and score models under one protocol.

    Example: limelight evaluate --dataset ml-100k --data-dir data/ml-100k --models ease,als --tune
    """
    from limelight.evaluation.leaderboard import run_leaderboard
    from limelight.evaluation.protocol import get_protocol

    get_protocol(protocol)
    names = _models_arg(models, protocol)
    data, folds = load_evaluation_data(dataset, protocol, data_dir=data_dir, store_url=store,
                                       size=size, seed=seed)
    board = run_leaderboard(names, protocol=protocol, dataset=data, folds=folds,
                            dataset_name=dataset, tune=tune, budget_seconds=budget,
                            sampled_negatives=sampled, random_state=seed,
                            progress=not as_json)
    stem = f"{dataset}-{protocol}"
    json_path = board.write_json(out / f"{stem}.json")
    png_path = board.plot(out / f"{stem}.png")
    if as_json:
        print_json({**board.to_dict(), "files": [str(json_path), str(png_path)]})
        return
    board.print(console)
    console.print(f"wrote {json_path} and {png_path}")


def train(
    model: str = typer.Option(..., "--model", help="Registry name, e.g. ease or als."),
    params: str | None = typer.Option(None, help='Model parameters as JSON, e.g. '
                                      '\'{"n_factors": 64}\'.'),
    store: str | None = typer.Option(None, help="Event store URL (default: settings)."),
    artifacts: Path | None = typer.Option(None, help="Artifact folder (default: settings)."),
    activate: bool = typer.Option(False, "--activate", help="Make the new version active."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Fit a model on the store's events and save it as a new artifact version.

    Example: limelight train --model ease --params '{"regularization": 300}' --activate
    """
    import time

    from limelight.cli.common import open_configured_store
    from limelight.models.registry import create

    _models_arg(model, "ranking")
    chosen = _params_arg(params)
    event_store = open_configured_store(store)
    if event_store.count("events") == 0:
        fail("the event store holds no events: ingest some first (limelight ingest ...)")
    dataset = _store_dataset(event_store)
    try:
        estimator = create(model, **chosen)
    except (TypeError, ValueError) as exc:
        fail(f"bad --params for {model}: {exc}")
    start = time.perf_counter()
    estimator.fit(dataset)
    seconds = time.perf_counter() - start
    store_ = _artifacts(artifacts)
    version = store_.save(estimator, model, {"fit_seconds": seconds, "source": "store"},
                          dataset=dataset, activate=activate)
    result = {"version": version, "model": model, "params": estimator.get_params(),
              "fit_seconds": round(seconds, 3), "users": dataset.n_users,
              "items": dataset.n_items, "interactions": int(dataset.interactions.nnz),
              "active": store_.active_version() == version, "artifacts": str(store_.root)}
    if as_json:
        print_json(result)
    else:
        console.print(f"saved {model} as [bold]{version}[/] in {store_.root} "
                      f"({dataset.n_users} users x {dataset.n_items} items, fit {seconds:.2f}s)"
                      + (" -- active" if result["active"] else ""))


def tune(
    model: str = typer.Option(..., "--model", help="Registry name, e.g. als."),
    budget: float = typer.Option(30.0, help="Search budget in seconds."),
    dataset: str = typer.Option("store", "--dataset", help="ml-100k, sample or store."),
    protocol: str = typer.Option("ranking", help="ranking (NDCG@10) or rating (RMSE)."),
    space: str | None = typer.Option(None, help="Search space as JSON or a .json file."),
    sampler: str = typer.Option("tpe", help="tpe (Bayesian) or random."),
    n_trials: int | None = typer.Option(None, help="Cap on the number of trials."),
    data_dir: Path | None = typer.Option(None, help="MovieLens 100K folder (ml-100k)."),
    store: str | None = typer.Option(None, help="Event store URL (--dataset store)."),
    size: str = typer.Option("tiny", help="Sample world size (--dataset sample)."),
    seed: int = typer.Option(0, help="Seed."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Search hyperparameters on a validation cut of the training data.

    The protocol's test part is split off first and never seen by the search.

    Example: limelight tune --model als --budget 60 --dataset sample
    """
    from limelight.evaluation.protocol import get_protocol
    from limelight.evaluation.tuning import tune as run_tune
    from limelight.evaluation.tuning import validate_space

    spec = get_protocol(protocol)
    _models_arg(model, protocol)
    chosen_space = validate_space(space) if space else None
    data, folds = load_evaluation_data(dataset, protocol, data_dir=data_dir, store_url=store,
                                       size=size, seed=seed)
    train_part = folds[0][0] if folds else spec.test_splitter.split(data)[0]
    result = run_tune(model, train_part, space=chosen_space, kind=spec.kind,
                      metric=spec.primary_metric, budget_seconds=budget, n_trials=n_trials,
                      sampler=sampler, validation_splitter=spec.validation_splitter,
                      refit=False, random_state=seed)
    payload = result.to_dict()
    if as_json:
        print_json(payload)
        return
    console.print(f"{model}: {result.n_trials} trials in {result.seconds:.1f}s; validation "
                  f"{result.metric} {result.best_value:.4f} (defaults {result.default_value:.4f})")
    console.print(f"best params: {json.dumps(result.best_params)}")


@models_app.command("list")
@friendly_errors
def list_models(
    artifacts: Path | None = typer.Option(None, help="Artifact folder (default: settings)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List saved model versions.

    Example: limelight models list --artifacts artifacts
    """
    rows = _artifacts(artifacts).list()
    if as_json:
        print_json(rows)
        return
    print_table("model versions", [
        {"version": r.get("version"), "active": "*" if r.get("active") else "",
         "name": r.get("name"), "created": r.get("created"),
         "params": json.dumps(r.get("params", {})), "metrics": json.dumps(r.get("metrics", {}))}
        for r in rows])


@models_app.command("activate")
@friendly_errors
def activate_model(
    version: str = typer.Argument(..., help="Version to activate, e.g. v0003."),
    artifacts: Path | None = typer.Option(None, help="Artifact folder (default: settings)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Make a saved version the active one (atomically).

    Example: limelight models activate v0003
    """
    active = _artifacts(artifacts).activate(version)
    if as_json:
        print_json({"active": active})
    else:
        console.print(f"active model: {active}")


@models_app.command("rollback")
@friendly_errors
def rollback_model(
    artifacts: Path | None = typer.Option(None, help="Artifact folder (default: settings)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Re-activate the version that was active before the current one.

    Example: limelight models rollback
    """
    active = _artifacts(artifacts).rollback()
    if as_json:
        print_json({"active": active})
    else:
        console.print(f"rolled back; active model: {active}")


def register(app: typer.Typer) -> None:
    """Add evaluate, train, tune and the models group to the CLI."""
    app.command("evaluate")(friendly_errors(evaluate))
    app.command("train")(friendly_errors(train))
    app.command("tune")(friendly_errors(tune))
    app.add_typer(models_app, name="models")
