"""MovieLens 100K leaderboard: ranking and rating protocols, every model, with tuning.

Ranking protocol: every rating is one interaction; per user, interactions sorted by
(timestamp, item id), the last 20% (rounded up) are the test; full ranking over the catalogue
with the user's training items excluded; hyperparameters tuned on the last 10% of each user's
training interactions, then refit on all training data.

Rating protocol: the official folds u1..u5; RMSE and MAE averaged; each fold is tuned on a
validation cut of its own training part only.

Also measured: the fit time of Limelight's ALS against calling ``implicit`` directly on the same
matrix in the same process (one BLAS thread and one solver thread for both; median of runs).

Reference numbers (libraries people use today, same protocol) are read at run time from
``results_ml100k_*.json`` in ``--peers-dir`` when present and shown beside ours.

Run::

    python benchmarks/ml100k.py [--data-dir DIR] [--peers-dir DIR] [--budget 10] [--no-tune]

Writes ``benchmarks/results/ml100k.json`` and ``.png`` plots next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from limelight.evaluation.leaderboard import Leaderboard, run_leaderboard
from limelight.evaluation.split import TemporalHoldout, ml100k_dataset, ml100k_folds

REPO = Path(__file__).resolve().parents[1]
RANKING_MODELS = ["popularity", "item_knn", "user_knn", "als", "bpr", "ease", "rp3beta",
                  "content"]
RATING_MODELS = ["mf_als", "mf_sgd", "knn_baseline"]
#: the blend combines every tuned model whose validation score is within this share of the
#: best validation score (chosen on validation only; its weights are learned inside fit)
BLEND_WITHIN = 0.10
#: our model -> the peer measured with the same protocol
PEER_OF = {"popularity": "popularity", "ease": "ease", "als": "implicit-als",
           "item_knn": "implicit-itemknn-cosine", "bpr": "implicit-bpr"}
TARGETS = {"best_ndcg@10": 0.205, "best_recall@10": 0.12, "within_of_reference": 0.03,
           "rmse": 0.910, "rating_fit_seconds": 2.0, "als_fit_ratio": 1.1,
           "total_seconds": 300.0}


def _default_data_dir() -> Path:
    root = os.environ.get("LIMELIGHT_DATA_DIR")
    return Path(root) / "ml-100k" if root else REPO.parent / "shared" / "data" / "ml-100k"


def _read_peers(peers_dir: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for kind in ("ranking", "rating"):
        path = peers_dir / f"results_ml100k_{kind}.json"
        if path.is_file():
            out[kind] = json.loads(path.read_text())
    return out


def als_fit_ratio(train_matrix: Any, runs: int = 9) -> dict[str, float]:
    """Median fit seconds of our ALS and of implicit's, same matrix and parameters."""
    import implicit
    from threadpoolctl import threadpool_limits

    from limelight.data.dataset import Dataset
    from limelight.data.vocab import IdVocab
    from limelight.models.registry import create

    params = {"n_factors": 64, "n_epochs": 15, "regularization": 0.1, "alpha": 5.0}
    dataset = Dataset(interactions=train_matrix.tocsr().astype("float32"),
                      users=IdVocab(map(str, range(train_matrix.shape[0]))),
                      items=IdVocab(map(str, range(train_matrix.shape[1]))))
    ours, theirs = [], []
    with threadpool_limits(1, "blas"):
        for run in range(runs):  # interleaved, alternating who goes first: load hits both
            for who in ((0, 1) if run % 2 == 0 else (1, 0)):
                if who == 0:
                    model = create("als", num_threads=1, random_state=0, **params)
                    start = time.perf_counter()
                    model.fit(dataset)
                    ours.append(time.perf_counter() - start)
                else:
                    ref = implicit.cpu.als.AlternatingLeastSquares(
                        factors=params["n_factors"], iterations=params["n_epochs"],
                        regularization=params["regularization"], alpha=params["alpha"],
                        random_state=0, num_threads=1)
                    start = time.perf_counter()
                    ref.fit(dataset.interactions, show_progress=False)
                    theirs.append(time.perf_counter() - start)
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    return {"ours_seconds": ours_s, "implicit_seconds": theirs_s, "ratio": ours_s / theirs_s,
            "runs": runs, "params": params}


def _ranking_table(board: Leaderboard, peers: dict[str, Any]) -> tuple[Table, list[dict]]:
    table = Table(title="ML-100K ranking (temporal 80/20, full ranking) -- ours vs reference")
    for col in ("model", "NDCG@10", "ref NDCG@10", "ours/ref", "Recall@10", "ref Recall@10",
                "Recall@20", "MAP@10", "coverage", "fit s", "trials", "params"):
        _column(table, col)
    rows = []
    for r in board.ranked():
        ref = peers.get(PEER_OF.get(r.model, ""), {})
        ndcg = r.metrics.get("ndcg@10", float("nan"))
        ratio = ndcg / ref["ndcg"] if ref else None
        rows.append({"model": r.model, "ndcg@10": ndcg, "recall@10": r.metrics.get("recall@10"),
                     "reference": PEER_OF.get(r.model), "ref_ndcg@10": ref.get("ndcg"),
                     "ref_recall@10": ref.get("recall"), "ratio": ratio, "error": r.error})
        table.add_row(r.model, _f(ndcg), _f(ref.get("ndcg")), _f(ratio),
                      _f(r.metrics.get("recall@10")), _f(ref.get("recall")),
                      _f(r.metrics.get("recall@20")), _f(r.metrics.get("map@10")),
                      _f(r.metrics.get("coverage@10")), _f(r.fit_seconds), str(r.n_trials),
                      r.error or json.dumps(r.params, default=str))
    for name, ref in peers.items():
        if name not in PEER_OF.values():
            table.add_row(f"[dim]{name} (ref)[/]", "", _f(ref.get("ndcg")), "", "",
                          _f(ref.get("recall")), "", "", "", _f(ref.get("fit_seconds")), "", "")
    return table, rows


def _rating_table(board: Leaderboard, peers: dict[str, Any]) -> Table:
    table = Table(title="ML-100K rating (official folds u1..u5) -- ours vs reference")
    for col in ("model", "RMSE", "MAE", "fit s/fold (median)", "fit s max", "trials", "params"):
        _column(table, col)
    for r in board.ranked():
        table.add_row(r.model, _f(r.metrics.get("rmse")), _f(r.metrics.get("mae")),
                      _f(r.fit_seconds), _f(r.metrics.get("fit_seconds_max")), str(r.n_trials),
                      r.error or json.dumps(r.params, default=str))
    for name, ref in peers.items():
        table.add_row(f"[dim]surprise {name} (ref)[/]", _f(ref.get("rmse")), _f(ref.get("mae")),
                      _f(ref.get("fit_seconds")), "", "", "")
    return table


def _available(names: list[str], console: Console) -> list[str]:
    """The models of ``names`` that the registry can build here (a missing one is reported)."""
    from limelight.models.registry import create

    out = []
    for name in names:
        try:
            create(name)
        except Exception as exc:  # an optional model whose module is absent
            console.print(f"[yellow]skipping {name}: {type(exc).__name__}: {exc}[/]")
            continue
        out.append(name)
    return out


def _add_blend(board: Leaderboard, dataset: Any, console: Console) -> None:
    """Blend the tuned models that did best *on validation* and add the blend to ``board``.

    The blend learns its weights on a validation cut of the training part inside ``fit``;
    the components' parameters were tuned on training data only, so the test stays unseen.
    """
    scored = [r for r in board.rows if not r.error and r.validation is not None]
    if not scored:  # untuned run: the blend's default components
        board.rows.extend(run_leaderboard(["blend"], protocol="ranking", dataset=dataset,
                                          dataset_name=board.dataset, console=console).rows)
        return
    best = max(r.validation for r in scored)
    components = [(r.model, dict(r.params)) for r in scored
                  if r.validation >= (1 - BLEND_WITHIN) * best]
    if len(components) < 2:
        return
    extra = run_leaderboard({"blend": {"models": components}}, protocol="ranking",
                            dataset=dataset, dataset_name=board.dataset, console=console)
    board.rows.extend(extra.rows)


def _column(table: Table, name: str) -> None:
    if name == "params":
        table.add_column(name, no_wrap=True, overflow="ellipsis", max_width=44)
    else:
        table.add_column(name, justify="left" if name == "model" else "right")


def _f(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=_default_data_dir())
    parser.add_argument("--peers-dir", type=Path, default=REPO.parent / "shared" / "peers")
    parser.add_argument("--budget", type=float, default=10.0,
                        help="tuning seconds per model (rating: spread over the 5 folds)")
    parser.add_argument("--no-tune", action="store_true")
    parser.add_argument("--models", default=",".join([*RANKING_MODELS, "blend",
                                                      *RATING_MODELS]))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" /
                        "ml100k.json")
    args = parser.parse_args(argv)
    if not (args.data_dir / "u.data").is_file():
        print(f"MovieLens 100K not found in {args.data_dir} (use --data-dir)", file=sys.stderr)
        return 2
    console = Console(width=None if sys.stdout.isatty() else 150)
    chosen = _available([m.strip() for m in args.models.split(",") if m.strip()], console)
    peers = _read_peers(args.peers_dir)
    tune = not args.no_tune
    start, cpu_start = time.perf_counter(), time.process_time()

    dataset = ml100k_dataset(args.data_dir, implicit=True, with_features=True)
    ranking = run_leaderboard([m for m in chosen if m in RANKING_MODELS], protocol="ranking",
                              dataset=dataset, dataset_name="ml-100k", tune=tune,
                              budget_seconds=args.budget, console=console)
    if "blend" in chosen:
        _add_blend(ranking, dataset, console)
    rating = run_leaderboard([m for m in chosen if m in RATING_MODELS], protocol="rating",
                             folds=ml100k_folds(args.data_dir), dataset_name="ml-100k",
                             tune=tune, budget_seconds=args.budget, console=console)
    train, _ = TemporalHoldout(0.2).split(dataset)
    als = als_fit_ratio(train.interactions)
    total = time.perf_counter() - start
    cpu_total = time.process_time() - cpu_start  # all threads of this process: load-independent

    table, ranking_rows = _ranking_table(ranking, peers.get("ranking", {}))
    console.print(table)
    console.print(_rating_table(rating, peers.get("rating", {})))
    console.print(f"ALS fit: ours {als['ours_seconds']:.3f}s vs implicit "
                  f"{als['implicit_seconds']:.3f}s (median of {als['runs']}): "
                  f"ratio {als['ratio']:.2f}")

    best = ranking.best()
    best_rating = rating.best()
    checks = {
        "best_ndcg@10": (best.metrics["ndcg@10"] if best else None, ">=",
                         TARGETS["best_ndcg@10"]),
        "best_recall@10": (max((r.metrics.get("recall@10", 0) for r in ranking.rows),
                               default=None), ">=", TARGETS["best_recall@10"]),
        "rmse": (best_rating.metrics["rmse"] if best_rating else None, "<=", TARGETS["rmse"]),
        "rating_fit_seconds_max": (best_rating.metrics.get("fit_seconds_max",
                                                           best_rating.fit_seconds)
                                   if best_rating else None, "<=",
                                   TARGETS["rating_fit_seconds"]),
        "als_fit_ratio": (als["ratio"], "<=", TARGETS["als_fit_ratio"]),
        "total_seconds": (total, "<=", TARGETS["total_seconds"]),
    }
    for row in ranking_rows:
        if row["ratio"] is not None:
            checks[f"{row['model']}_vs_{row['reference']}"] = (
                row["ratio"], ">=", 1 - TARGETS["within_of_reference"])
    verdicts = {}
    for name, (value, op, target) in checks.items():
        ok = value is not None and (value >= target if op == ">=" else value <= target)
        verdicts[name] = {"value": value, "target": f"{op} {target}", "pass": ok}
        mark = "[green]PASS[/]" if ok else "[red]MISS[/]"
        console.print(f"{mark} {name}: {_f(value) if value is not None else 'n/a'} {op} {target}")
    console.print(f"total {total:.1f}s wall, {cpu_total:.1f}s CPU (tuning "
                  f"{'on' if tune else 'off'}, budget {args.budget:.0f}s per model); "
                  f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    ranking.plot(args.out.with_name("ml100k-ranking.png"))
    rating.plot(args.out.with_name("ml100k-rating.png"))
    args.out.write_text(json.dumps({
        "ranking": ranking.to_dict(), "rating": rating.to_dict(), "als_fit": als,
        "peers": peers, "checks": verdicts, "total_seconds": total,
        "total_cpu_seconds": cpu_total, "load_average": os.getloadavg(),
        "command": " ".join(["python", "benchmarks/ml100k.py", *(argv or sys.argv[1:])]),
    }, indent=2, default=str))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
