"""Sample-world generation speed and memory: ``write_world`` per size, streamed to Parquet.

Each size runs in a fresh subprocess so peak memory is that run's own. The reference, measured
in the same subprocess, is pyarrow alone re-writing the very events file just generated
(read + write Parquet): the ratio says how much of the time is simulation rather than I/O.
CPU seconds are reported beside wall time because on a busy shared machine wall time mostly
measures the neighbours.

Re-run: ``.venv/bin/python benchmarks/generate.py`` (default sizes medium and large;
``--sizes tiny small`` for a quick look, ``--repeats 3`` for medians over more runs).
Writes ``benchmarks/results/generate.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import pyarrow.parquet as pq
from limelight.sim import write_world

out = Path(sys.argv[2])
cpu0, t0 = time.process_time(), time.perf_counter()
manifest = write_world(out, sys.argv[1], seed=0)
wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the reference runs
t1 = time.perf_counter()
pq.write_table(pq.read_table(out / "events.parquet"), out / "rewrite.parquet",
               compression="zstd")
ref = time.perf_counter() - t1
print(json.dumps({"events": manifest["counts"]["events"], "users": manifest["counts"]["users"],
                  "wall_s": wall, "cpu_s": cpu, "reference_s": ref,
                  "peak_rss_mb": peak}))
"""


def measure(size: str) -> dict[str, float]:
    """One generation of ``size`` in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([sys.executable, "-c", _CHILD, size, str(Path(tmp) / "w")],
                             capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["medium", "large"])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        runs = [measure(size) for _ in range(args.repeats)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        med["size"] = size
        med["events_per_s"] = med["events"] / med["wall_s"]
        med["events_per_cpu_s"] = med["events"] / med["cpu_s"]
        med["ratio_to_reference"] = med["wall_s"] / med["reference_s"]
        rows.append(med)
    header = (f"{'size':<8} {'events':>11} {'wall s':>8} {'cpu s':>8} {'events/s':>11} "
              f"{'ev/cpu-s':>11} {'x rewrite':>9} {'peak MB':>8}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['size']:<8} {int(r['events']):>11,} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} "
              f"{r['events_per_s']:>11,.0f} {r['events_per_cpu_s']:>11,.0f} "
              f"{r['ratio_to_reference']:>9.1f} {r['peak_rss_mb']:>8.0f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "generate.json").write_text(json.dumps({"repeats": args.repeats,
                                                        "results": rows}, indent=2))


if __name__ == "__main__":
    main()
