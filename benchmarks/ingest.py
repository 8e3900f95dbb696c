"""Ingest throughput: Limelight's validated ingest vs DuckDB's raw read of the same file.

Generates an event file (default 10M rows) as CSV and as Parquet with numpy/pyarrow, then
measures, each in a fresh subprocess so peak memory is per measurement:

* ``raw``: ``CREATE TABLE t AS SELECT * FROM read_csv/read_parquet(file)`` into a new DuckDB file
  (DuckDB's own parse-and-store, no validation): the reference.
* ``floor``: one ``INSERT INTO event_log SELECT <derived event key>, <columns> FROM
  read_csv/read_parquet(file)`` into a new Limelight store: the data model's cheapest write
  (ids derived as ingest derives them) with no validation, deduplication, quarantine or
  chunking. Limelight's ingest does all of this statement's work and more, so the floor
  splits the gap to ``raw`` into storing the events at all and the product's own work.
* ``limelight``: ``ingest_file`` into a new DuckDB store (chunked, validated, event ids derived,
  deduplicated, quarantined, one transaction per chunk).

Prints a table (events/s, wall and CPU seconds, ratios to raw, peak RSS) and writes
``benchmarks/results/ingest.json``. CPU seconds (user + system of the measuring process) are
reported beside wall time because on a shared, busy machine wall time mostly measures the
neighbours. Re-run: ``.venv/bin/python benchmarks/ingest.py``
(``--rows 1000000`` for a quick look, ``--repeats 3`` for medians over more runs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

RESULTS = Path(__file__).resolve().parent / "results"
TYPES = np.array(["view", "click", "add_to_cart", "purchase", "rating", "like"])


def generate(n_rows: int, out_dir: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``events.csv`` and ``events.parquet`` with ``n_rows`` synthetic events."""
    rng = np.random.default_rng(seed)
    csv_path, pq_path = out_dir / "events.csv", out_dir / "events.parquet"
    writer, step = None, 1_000_000
    start = np.datetime64("2023-01-01T00:00:00", "s").astype(np.int64)
    with pacsv.CSVWriter(csv_path, _schema()) as csv_writer:
        for lo in range(0, n_rows, step):
            n = min(step, n_rows - lo)
            users = rng.zipf(1.3, n) % 200_000
            items = rng.zipf(1.2, n) % 50_000
            ts = start + np.sort(rng.integers(0, 365 * 86_400, n))
            table = pa.table({
                "user_id": pa.array(np.char.add("u", users.astype(str))),
                "item_id": pa.array(np.char.add("i", items.astype(str))),
                "type": pa.array(TYPES[rng.integers(0, len(TYPES), n)]),
                "timestamp": pa.array(ts.astype("datetime64[s]"), pa.timestamp("s", tz="UTC")),
                "value": pa.array(np.round(rng.uniform(0.5, 5.0, n), 1)),
                "session_id": pa.array(np.char.add("s", (users * 31 + ts // 1800).astype(str))),
                "device": pa.array(np.array(["web", "ios", "android"])[rng.integers(0, 3, n)]),
            })
            csv_writer.write_table(table)
            if writer is None:
                writer = pq.ParquetWriter(pq_path, table.schema)
            writer.write_table(table)
    writer.close()
    return csv_path, pq_path


def _schema() -> pa.Schema:
    return pa.schema([("user_id", pa.string()), ("item_id", pa.string()), ("type", pa.string()),
                      ("timestamp", pa.timestamp("s", tz="UTC")), ("value", pa.float64()),
                      ("session_id", pa.string()), ("device", pa.string())])


def measure(kind: str, path: Path, workdir: Path, chunk_rows: int | None
            ) -> dict[str, float]:
    """One measurement in this process: seconds, rows stored and peak RSS (MiB)."""
    db = workdir / f"{kind}-{path.suffix.lstrip('.')}-{time.time_ns()}.duckdb"
    if kind != "raw":  # import before the clock starts, as the raw path imports duckdb
        import limelight.data.ingest  # noqa: F401
    import duckdb

    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage0.ru_utime + usage0.ru_stime
    t0 = time.perf_counter()
    if kind == "raw":
        import duckdb

        con = duckdb.connect(str(db))
        reader = "read_parquet" if path.suffix == ".parquet" else "read_csv"
        con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}('{path}')")
        rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
        con.close()
    elif kind == "floor":
        from limelight.data.event_keys import KEY, derived_key_sql
        from limelight.store.duckdb import EVENT_TABLE, DuckDBEventStore

        store = DuckDBEventStore(str(db))
        reader = "read_parquet" if path.suffix == ".parquet" else "read_csv"
        cols = [n for n in _schema().names if n != "timestamp"]
        col_sql = ", ".join(cols)
        key = derived_key_sql("user_id", "item_id", "type", "timestamp")
        store.execute(f"INSERT INTO {EVENT_TABLE} ({KEY}, timestamp, {col_sql}) "
                      f"SELECT {key}, timestamp, {col_sql} FROM ("
                      f"SELECT * REPLACE (CAST(timestamp AS TIMESTAMPTZ) AS timestamp) "
                      f"FROM {reader}('{path}'))")
        rows = store.count("events")
        store.close()
    else:
        from limelight.data.ingest import ingest_file
        from limelight.store.duckdb import DuckDBEventStore

        store = DuckDBEventStore(str(db))
        report = ingest_file(store, path, chunk_rows=chunk_rows)
        assert report.reconciled, report.to_dict()
        rows = store.count("events")
        store.close()
    seconds = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu0
    db.unlink(missing_ok=True)
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": rows,
            "peak_mib": usage.ru_maxrss / 1024}


def _chunk_rows(given: int | None) -> int:
    from limelight.settings import get_settings

    return given or get_settings().ingest.chunk_rows


def _child(kind: str, path: Path, workdir: Path, chunk_rows: int | None) -> dict[str, float]:
    rows = [] if chunk_rows is None else ["--chunk-rows", str(chunk_rows)]
    out = subprocess.run(
        [sys.executable, __file__, "--measure", kind, "--file", str(path), "--workdir",
         str(workdir), *rows],
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--chunk-rows", type=int, default=None,
                        help="rows per ingest chunk (default: the ingest.chunk_rows setting)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--measure", choices=["raw", "floor", "limelight"], default=None)
    parser.add_argument("--file", type=Path, default=None)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.file, args.workdir, args.chunk_rows)))
        return
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        csv_path, pq_path = generate(args.rows, work)
        print(f"generated {args.rows:,} events in {time.perf_counter() - t0:.1f}s "
              f"(csv {csv_path.stat().st_size / 2**20:.0f} MiB, "
              f"parquet {pq_path.stat().st_size / 2**20:.0f} MiB)", flush=True)
        results = []
        for fmt, path in (("parquet", pq_path), ("csv", csv_path)):
            runs = {k: [_child(k, path, work, args.chunk_rows) for _ in range(args.repeats)]
                    for k in ("raw", "floor", "limelight")}
            row = {"format": fmt, "rows": args.rows}
            for kind, rs in runs.items():
                row[f"{kind}_seconds"] = statistics.median(r["seconds"] for r in rs)
                row[f"{kind}_cpu_seconds"] = statistics.median(r["cpu_seconds"] for r in rs)
                row[f"{kind}_events_per_s"] = args.rows / row[f"{kind}_seconds"]
                row[f"{kind}_peak_mib"] = max(r["peak_mib"] for r in rs)
            row["stored_rows"] = runs["limelight"][0]["rows"]
            row["ratio_to_raw"] = row["limelight_seconds"] / row["raw_seconds"]
            row["cpu_ratio_to_raw"] = row["limelight_cpu_seconds"] / row["raw_cpu_seconds"]
            row["floor_ratio_to_raw"] = row["floor_seconds"] / row["raw_seconds"]
            row["ratio_to_floor"] = row["limelight_seconds"] / row["floor_seconds"]
            results.append(row)
            print(f"{fmt}: done", flush=True)
    load = (load_before[0], os.getloadavg()[0])
    print(f"load average (1 min) {load[0]:.1f} at the start, {load[1]:.1f} at the end; "
          f"{os.cpu_count()} cores; {_chunk_rows(args.chunk_rows):,} rows per chunk")
    header = (f"{'format':8} {'limelight ev/s':>15} {'floor ev/s':>11} {'raw DuckDB ev/s':>16} "
              f"{'ratio':>6} {'floor ratio':>11} {'ll s':>7} {'floor s':>8} {'raw s':>7} "
              f"{'ll cpu s':>9} {'floor cpu s':>11} {'raw cpu s':>9} {'cpu ratio':>9} "
              f"{'ll peak MiB':>12} {'raw peak MiB':>13}")
    print(header)
    for r in results:
        print(f"{r['format']:8} {r['limelight_events_per_s']:>15,.0f} "
              f"{r['floor_events_per_s']:>11,.0f} {r['raw_events_per_s']:>16,.0f} "
              f"{r['ratio_to_raw']:>6.2f} {r['floor_ratio_to_raw']:>11.2f} "
              f"{r['limelight_seconds']:>7.1f} {r['floor_seconds']:>8.1f} "
              f"{r['raw_seconds']:>7.1f} {r['limelight_cpu_seconds']:>9.1f} "
              f"{r['floor_cpu_seconds']:>11.1f} {r['raw_cpu_seconds']:>9.1f} "
              f"{r['cpu_ratio_to_raw']:>9.2f} "
              f"{r['limelight_peak_mib']:>12,.0f} {r['raw_peak_mib']:>13,.0f}")
    print("ratio: limelight / raw wall time; floor ratio: floor / raw (one INSERT of the "
          "events with derived ids, nothing else)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(
        {"rows": args.rows, "repeats": args.repeats, "chunk_rows": _chunk_rows(args.chunk_rows),
         "load_average": load, "cores": os.cpu_count(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
