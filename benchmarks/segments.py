"""Does profile-based segmentation recover the sample world's hidden segments?

Generates a sample world, builds profiles from its events, users, items and edges (never from
the hidden truth), segments them with K-means (k by silhouette) and a Gaussian mixture (k by
BIC), and prints the adjusted Rand index of each against the hidden segment labels (target
>= 0.8), with the chosen k, timings and the segment table. The truth is only read to score.

Run: ``python benchmarks/segments.py [--size small] [--seed 0] [--k-max 8]``
Writes ``benchmarks/results/segments.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from limelight.profile.features import ProfileBuilder
from limelight.profile.segments import DEFAULT_GROUPS, SegmentModel
from limelight.sim import generate_world

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", help="sample world size (tiny, small, ...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k-min", type=int, default=2)
    parser.add_argument("--k-max", type=int, default=8)
    parser.add_argument("--methods", default="kmeans,gmm")
    parser.add_argument("--groups", default=",".join(DEFAULT_GROUPS))
    args = parser.parse_args()

    t0 = time.perf_counter()
    world = generate_world(args.size, seed=args.seed)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    profiles = ProfileBuilder().fit(world).profiles_
    t_build = time.perf_counter() - t0
    truth = world.truth.users.set_index("user_id")["segment"]
    truth.index = truth.index.astype(str)
    truth = truth.reindex(profiles.index)
    print(f"world {args.size} seed {args.seed}: {len(world.events):,} events, "
          f"{len(profiles):,} users ({int((profiles['n_events'] == 0).sum())} without events), "
          f"{truth.nunique()} hidden segments; generated in {t_gen:.1f} s, "
          f"profiles built in {t_build:.1f} s")

    groups = tuple(g for g in args.groups.split(",") if g)
    results = []
    for method in args.methods.split(","):
        t0 = time.perf_counter()
        model = SegmentModel(method=method, k_range=(args.k_min, args.k_max), groups=groups,
                             random_state=args.seed).fit(profiles)
        seconds = time.perf_counter() - t0
        labels = model.labels_.to_numpy()
        ari = adjusted_rand_score(truth.to_numpy(), labels)
        active = (profiles["n_events"] > 0).to_numpy()
        ari_active = adjusted_rand_score(truth.to_numpy()[active], labels[active])
        results.append({"method": method, "k": model.k_, "ari": ari,
                        "ari_users_with_events": ari_active, "seconds": seconds,
                        "selection_scores": model.selection_scores_,
                        "segments": model.table().to_dict("records"),
                        "crosstab": pd.crosstab(truth.to_numpy(), labels).to_dict()})

    print(f"\n{'method':8} {'k':>3} {'ARI':>7} {'ARI(active)':>12} {'fit s':>7}  target ARI >= 0.8")
    for r in results:
        ok = "ok" if r["ari"] >= 0.8 else "BELOW TARGET"
        print(f"{r['method']:8} {r['k']:>3} {r['ari']:7.3f} {r['ari_users_with_events']:12.3f} "
              f"{r['seconds']:7.1f}  {ok}")
    for r in results:
        print(f"\n{r['method']} segments (selection scores "
              f"{ {k: round(v, 3) for k, v in r['selection_scores'].items()} }):")
        for s in r["segments"]:
            print(f"  {s['segment_id']:>2}  {s['size']:>6}  {s['description']}")
    names = dict(enumerate(world.truth.meta.get("segment_names", []))) \
        if isinstance(world.truth.meta, dict) else {}
    if names:
        print("\nhidden segments:", ", ".join(f"{k}={v}" for k, v in names.items()))
    RESULTS.mkdir(exist_ok=True)
    out = {"size": args.size, "seed": args.seed, "events": len(world.events),
           "users": len(profiles), "build_seconds": t_build, "groups": list(groups),
           "results": results}
    path = RESULTS / "segments.json"
    path.write_text(json.dumps(out, indent=2, default=_plain))
    print(f"\nwrote {path}")


def _plain(v: object) -> object:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


if __name__ == "__main__":
    main()
