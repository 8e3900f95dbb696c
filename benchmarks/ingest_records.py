"""Small-batch ingest: ``ingest_records`` (the API's write path) against bulk ``ingest_frame``.

A store holding 100,000 events (as ML-100K does) takes batches of 1 and 100 new events, with
event ids given and derived, through ``ingest_records`` (the small-batch path) and, as the
reference in the same process, through ``ingest_frame`` with the same rules. Figures are
medians over ``--calls`` calls, wall and CPU time; on a busy machine they are pessimistic.

Usage::

    python benchmarks/ingest_records.py
    python benchmarks/ingest_records.py --calls 50 --store duckdb:///tmp/bench.duckdb
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
import pandas as pd
import pyarrow as pa

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _batch(size: int, base: int, ids: bool) -> list[dict[str, Any]]:
    rows = []
    for i in range(size):
        second = base + i
        row = {"user_id": f"u{i % 50}", "item_id": f"i{second % 1000}", "type": "view",
               "timestamp": f"2024-05-{1 + (second // 86400) % 28:02d}T"
                            f"{(second // 3600) % 24:02d}:{(second // 60) % 60:02d}:"
                            f"{second % 60:02d}Z"}
        if ids:
            row["event_id"] = f"ev-{base}-{i}"
        rows.append(row)
    return rows


def _as_frame(records: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per scenario")
    parser.add_argument("--store", default="memory://", help="store URL")
    parser.add_argument("--stored", type=int, default=100_000, help="events stored first")
    args = parser.parse_args()

    from limelight.data.ingest import ingest_frame, ingest_records
    from limelight.store import open_store

    store = open_store(args.store)
    rng = np.random.default_rng(0)
    n = args.stored
    ingest_frame(store, pd.DataFrame({
        "user_id": rng.integers(0, 943, n).astype(str),
        "item_id": rng.integers(0, 1682, n).astype(str), "type": "rating", "value": "4",
        "timestamp": (880_000_000 + np.arange(n)).astype(str)}))
    rows = []
    base = 0
    for size in (1, 100):
        for ids in (True, False):
            timings: dict[str, tuple[list[float], list[float]]] = {}
            for name, call in (("ingest_records", lambda b: ingest_records(store, b)),
                               ("ingest_frame (bulk)",
                                lambda b: ingest_frame(store, _as_frame(b), source_name="api"))):
                calls = args.calls if name == "ingest_records" else max(args.calls // 4, 10)
                wall, cpu = [], []
                for _ in range(calls):
                    base += 1000
                    batch = _batch(size, base, ids)
                    t0, c0 = time.perf_counter(), time.process_time()
                    report = call(batch)
                    wall.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
                    assert report.accepted == size and report.reconciled, report
                timings[name] = (wall, cpu)
            fast = statistics.median(timings["ingest_records"][0])
            for name, (wall, cpu) in timings.items():
                rows.append({"batch": size, "ids_given": ids, "path": name, "calls": len(wall),
                             "wall_p50_ms": statistics.median(wall) * 1e3,
                             "wall_p90_ms": float(np.percentile(wall, 90)) * 1e3,
                             "cpu_p50_ms": statistics.median(cpu) * 1e3,
                             "ratio_to_records": statistics.median(wall) / fast})
    load = os.getloadavg()
    print(f"{'batch':>5} {'ids':>5}  {'path':<20} {'wall p50':>9} {'wall p90':>9} "
          f"{'cpu p50':>8} {'x records':>9}")
    for r in rows:
        print(f"{r['batch']:>5} {r['ids_given']!s:>5}  {r['path']:<20} "
              f"{r['wall_p50_ms']:>7.2f}ms {r['wall_p90_ms']:>7.2f}ms {r['cpu_p50_ms']:>6.2f}ms "
              f"{r['ratio_to_records']:>8.1f}x")
    print(f"load average: {load[0]:.1f} on {os.cpu_count()} cores; store {args.store}, "
          f"{n:,} events stored first")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "ingest_records.json"
    out.write_text(json.dumps({"args": vars(args), "load_avg": load, "cpus": os.cpu_count(),
                               "rows": rows}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
