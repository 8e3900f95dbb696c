"""Candidate retrieval on large catalogues: ALS top-100 by exact scoring vs a faiss index.

Generates implicit feedback from a hidden factor model over a large catalogue (a long
popularity tail, overlapping tastes), fits ALS, then asks for sampled users' top-100 unseen
items, all in this process:

* ``exact``: the ALS model's own ``recommend`` (every item scored) -- the reference;
* ``ivf``: :class:`~limelight.models.ann.ANNRetriever` over the same fitted ALS (k-means
  cells), probing 16 to 128 cells per query (64 is the default).

For each: index build seconds; time per user in batches of 256 (median of 3 passes after a
warm-up: how two-stage training and offline scoring call it); the median time of one-user
requests (how serving calls it); recall@100 against the exact lists; speed-ups against exact
measured in the same run. Prints a table and writes ``benchmarks/results/retrieval.json``.

    python benchmarks/retrieval.py                       # 50k and 200k items
    python benchmarks/retrieval.py --items 50000 --users 10000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from limelight.data.dataset import Dataset
from limelight.data.vocab import IdVocab
from limelight.models.als import ALS
from limelight.models.ann import ANNRetriever
from limelight.models.base import Recommender

RESULTS = Path(__file__).resolve().parent / "results"
ALS_PARAMS = {"n_factors": 64, "n_epochs": 10, "regularization": 0.05}
N = 100
BATCH = 256
REPEATS = 3
#: probed cells measured: recall against speed (64 is the default)
PROBES = (16, 32, 64, 128)


def generate(n_users: int, n_items: int, per_user: int, seed: int = 0) -> Dataset:
    """Implicit feedback from a hidden factor model: each user picks ``per_user`` distinct
    items with probability ~ ``popularity**0.5 * exp(user . item)`` over 16 hidden dimensions
    (Gumbel top-k sampling), so the catalogue has a long tail and tastes overlap."""
    rng = np.random.default_rng(seed)
    dim = 16
    items = rng.normal(0, 1, (n_items, dim)).astype(np.float32) / np.sqrt(dim)
    log_pop = (-0.5 * np.log1p(rng.permutation(n_items))).astype(np.float32)
    cols = []
    for lo in range(0, n_users, 500):
        users = rng.normal(0, 2.5, (min(500, n_users - lo), dim)).astype(np.float32)
        logits = users @ items.T + log_pop
        logits += rng.gumbel(size=logits.shape).astype(np.float32)
        cols.append(np.argpartition(-logits, per_user, axis=1)[:, :per_user])
    picked = np.concatenate(cols)
    matrix = sp.csr_matrix((np.ones(picked.size, np.float32),
                            (np.repeat(np.arange(n_users), per_user), picked.ravel())),
                           shape=(n_users, n_items))
    return Dataset(matrix, IdVocab([f"u{u}" for u in range(n_users)]),
                   IdVocab([f"i{i}" for i in range(n_items)]))


def _timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _batched(model: Recommender, users: np.ndarray) -> tuple[np.ndarray, float]:
    """The lists, and the median over ``REPEATS`` passes of seconds per user in batches."""
    model.recommend(users[:BATCH], n=N)  # warm-up: thread pools, first allocations
    per_pass = []
    for _ in range(REPEATS):
        lists, seconds = [], 0.0
        for lo in range(0, len(users), BATCH):
            (items, _), s = _timed(lambda lo=lo: model.recommend(users[lo:lo + BATCH], n=N))
            lists.append(items)
            seconds += s
        per_pass.append(seconds / len(users))
    return np.concatenate(lists), statistics.median(per_pass)


def _single(model: Recommender, users: np.ndarray) -> float:
    model.recommend(users[:1], n=N)
    times = [_timed(lambda u=u: model.recommend([u], n=N))[1] for u in users]
    return statistics.median(times)


def _recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact,
                                                                          strict=True)]))


def run(n_items: int, n_users: int, per_user: int, n_queries: int, n_single: int
        ) -> list[dict[str, Any]]:
    dataset = generate(n_users, n_items, per_user)
    rng = np.random.default_rng(1)
    users = np.sort(rng.choice(n_users, n_queries, replace=False))
    single = users[:n_single]
    base, fit_s = _timed(lambda: ALS(**ALS_PARAMS).fit(dataset))
    print(f"{n_items:,} items x {n_users:,} users ({dataset.interactions.nnz:,} interactions):"
          f" ALS fitted in {fit_s:.0f} s", flush=True)
    exact, exact_batch = _batched(base, users)
    exact_single = _single(base, single)
    rows = [{"items": n_items, "method": "exact (ALS)", "build_s": 0.0,
             "batch_ms_per_user": exact_batch * 1e3, "single_ms": exact_single * 1e3,
             "recall@100": 1.0, "batch_speedup": 1.0, "single_speedup": 1.0}]
    for n_probe in PROBES:
        # the index over the already fitted ALS: build time is the index alone
        model, build_s = _timed(lambda p=n_probe: ANNRetriever.over(base, n_probe=p))
        approx, batch = _batched(model, users)
        single_s = _single(model, single)
        rows.append({"items": n_items, "method": f"ivf: {model.index_.nlist} cells, "
                                                  f"{n_probe} probed",
                     "build_s": build_s, "batch_ms_per_user": batch * 1e3,
                     "single_ms": single_s * 1e3, "recall@100": _recall(approx, exact),
                     "batch_speedup": exact_batch / batch,
                     "single_speedup": exact_single / single_s})
        print(f"  {rows[-1]['method']}: built in {build_s:.1f} s, recall@100 "
              f"{rows[-1]['recall@100']:.3f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", default="50000,200000")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--per-user", type=int, default=50)
    parser.add_argument("--queries", type=int, default=1_024)
    parser.add_argument("--single", type=int, default=200)
    args = parser.parse_args()
    load = [os.getloadavg()[0]]
    rows = []
    for n_items in map(int, args.items.split(",")):
        rows += run(n_items, args.users, args.per_user, args.queries, args.single)
    load.append(os.getloadavg()[0])
    print(f"\nALS {ALS_PARAMS}, top-{N} unseen items; {os.cpu_count()} cores, load "
          f"{load[0]:.1f} -> {load[1]:.1f}")
    print(f"{'items':>8} {'method':34} {'build s':>8} {'batch ms/user':>14} "
          f"{'single ms':>10} {'recall@100':>11} {'batch x':>8} {'single x':>9}")
    for r in rows:
        print(f"{r['items']:>8,} {r['method']:34} {r['build_s']:>8.1f} "
              f"{r['batch_ms_per_user']:>14.3f} {r['single_ms']:>10.3f} "
              f"{r['recall@100']:>11.3f} {r['batch_speedup']:>8.1f} "
              f"{r['single_speedup']:>9.1f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "retrieval.json").write_text(json.dumps(
        {"args": vars(args), "als": ALS_PARAMS, "load_average": load, "rows": rows},
        indent=2))
    print(f"written {RESULTS / 'retrieval.json'}")


if __name__ == "__main__":
    main()
