"""Serving benchmark: throughput and latency of `limelight serve` under load on loopback.

Two worlds: ML-100K (943 users x 1,682 items) and a generated 50k-item catalogue. For each,
an ALS model is trained and activated, `limelight serve` runs as a separate process, and wrk
(a separate process too; `apt-get install wrk`) drives it over 127.0.0.1:

- ``recs``: GET top-10 recommendations with seen-item exclusion and MMR (diversity 0.3), users
  drawn at random; the server has warmed its per-user candidate cache (catalogues of 10k+
  items) before the run, and ``recs-nocache`` repeats the scenario on a server with the cache
  off (every request scores the whole catalogue) as the reference;
- ``recommend``: POST /recommend scoring 20 given items;
- ``events``: POST /events batches of 100 new events (write-through to DuckDB);
- ``event->update``: an event is sent for the item at the top of a user's list while the list
  is asked for again and again; the time until an answer no longer holds the item.
  ``event->ack->update`` waits for the event's acknowledgement (the store write) first.

Every request carries an API key (auth on, as in production). Each wrk scenario runs
``--repeats`` times (3) and the table shows the median of each figure (wrk's own
percentiles per run; every run is kept in the JSON); on a busy machine they are pessimistic.

Usage::

    python benchmarks/serve.py                       # both worlds, 10 s per scenario
    python benchmarks/serve.py --duration 5 --worlds ml100k --connections 8
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
KEY = "bench-key"
TARGET_P99_MS = {"ml100k": 15.0, "catalogue50k": 25.0}
TARGET_RPS = 800.0
TARGET_UPDATE_MS = 50.0
#: command prefixes that pin the server and wrk to separate cores (``--pin``)
PIN: dict[str, list[str]] = {"server": [], "wrk": []}


# -- worlds -----------------------------------------------------------------------------------
def prepare_ml100k(root: Path) -> dict[str, Any]:
    """ML-100K ingested into a DuckDB store, ALS trained and activated."""
    from limelight.data.sources import ingest_dataset

    data = Path(os.environ.get("LIMELIGHT_DATA_DIR", ROOT.parent / "shared" / "data"))
    directory = data / "ml-100k"
    if not directory.is_dir():
        raise SystemExit(f"ML-100K not found under {data} (set LIMELIGHT_DATA_DIR)")
    store_url = f"duckdb:///{root / 'ml100k.duckdb'}"
    from limelight.store import open_store

    store = open_store(store_url)
    ingest_dataset(store, "ml-100k", directory)
    return _train(store, store_url, root / "ml100k-artifacts", "ml100k")


def prepare_catalogue(root: Path, n_items: int = 50_000, n_users: int = 20_000,
                      n_events: int = 500_000, seed: int = 0) -> dict[str, Any]:
    """A generated shop: 50k items in 40 categories with tags and prices, users with tastes
    over a few categories, Zipf-skewed popularity; ingested and trained like ML-100K."""
    import pandas as pd

    from limelight.data.ingest import ingest_frame
    from limelight.store import open_store

    rng = np.random.default_rng(seed)
    n_cat = 40
    item_cat = rng.integers(0, n_cat, n_items)
    items = pd.DataFrame({
        "item_id": [f"p{i:06d}" for i in range(n_items)],
        "title": [f"Product {i}" for i in range(n_items)],
        "categories": [[f"cat{c:02d}"] for c in item_cat],
        "tags": [[f"tag{t:03d}" for t in rng.integers(0, 300, 3)] for _ in range(n_items)],
        "price": np.round(rng.lognormal(3, 0.8, n_items), 2),
        "in_stock": rng.random(n_items) > 0.05,
        "created_time": pd.Timestamp("2024-01-01", tz="UTC")
        + pd.to_timedelta(rng.integers(0, 365 * 86400, n_items), unit="s"),
    })
    users = pd.DataFrame({"user_id": [f"c{u:06d}" for u in range(n_users)],
                          "region": rng.choice(["north", "south", "east", "west"], n_users),
                          "age": rng.integers(18, 80, n_users).astype("int32")})
    # each user likes 3 categories; popularity within a category is Zipf-like
    tastes = rng.integers(0, n_cat, (n_users, 3))
    by_cat = [np.flatnonzero(item_cat == c) for c in range(n_cat)]
    ev_user = rng.integers(0, n_users, n_events)
    ev_cat = tastes[ev_user, rng.integers(0, 3, n_events)]
    ranks = np.minimum(rng.zipf(1.3, n_events) - 1, 10**9)
    ev_item = np.array([by_cat[c][r % len(by_cat[c])] for c, r in zip(ev_cat, ranks,
                                                                      strict=True)])
    events = pd.DataFrame({
        "user_id": users["user_id"].to_numpy()[ev_user],
        "item_id": items["item_id"].to_numpy()[ev_item],
        "type": rng.choice(["view", "click", "purchase"], n_events, p=[0.7, 0.2, 0.1]),
        "timestamp": pd.Timestamp("2025-01-01", tz="UTC")
        + pd.to_timedelta(rng.integers(0, 180 * 86400, n_events), unit="s"),
    })
    store_url = f"duckdb:///{root / 'catalogue.duckdb'}"
    store = open_store(store_url)
    for entity, frame in (("items", items), ("users", users), ("events", events)):
        ingest_frame(store, frame, entity)
    return _train(store, store_url, root / "catalogue-artifacts", "catalogue50k")


def _train(store: Any, store_url: str, artifacts_dir: Path, name: str) -> dict[str, Any]:
    from limelight.data.dataset import build_dataset
    from limelight.models.registry import create
    from limelight.store.artifacts import ArtifactStore

    dataset = build_dataset(store, with_features=False)
    model = create("als", n_factors=64, n_epochs=10, random_state=0).fit(dataset)
    ArtifactStore(artifacts_dir).save(model, "als", dataset=dataset, activate=True)
    users = dataset.users.to_list()
    items = dataset.items.to_list()
    store.close()
    return {"name": name, "store_url": store_url, "artifacts": str(artifacts_dir),
            "users": users, "items": items, "n_users": len(users), "n_items": len(items)}


# -- server -----------------------------------------------------------------------------------
def start_server(world: dict[str, Any], port: int, *, cache: bool = True) -> subprocess.Popen:
    import hashlib

    env = {**os.environ, "LIMELIGHT_STORE_URL": world["store_url"],
           "LIMELIGHT_SERVE__API_KEYS": json.dumps(
               {hashlib.sha256(KEY.encode()).hexdigest(): ["read", "write"]}),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    if not cache:
        env["LIMELIGHT_SERVE__CANDIDATE_CACHE_USERS"] = "0"
    limelight = Path(sys.executable).with_name("limelight")
    proc = subprocess.Popen([*PIN["server"], str(limelight), "serve", "--port", str(port),
                             "--artifacts", world["artifacts"], "--json"], env=env,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("limelight serve did not start")
    import httpx

    url = json.loads(line)["url"]
    deadline = time.monotonic() + 600
    # steady state: the model loaded, the profiles built and the users' candidates cached
    # (background jobs at start-up)
    done = ("ready", "failed", "off")
    while True:
        health = httpx.get(f"{url}/health").json()
        if health["status"] == "ok" and health.get("profiles") in done and \
                health.get("candidates", {}).get("status", "off") in done:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"server not ready: {health}")
        time.sleep(0.5)
    return proc


# -- load -------------------------------------------------------------------------------------
LUA_COMMON = """
math.randomseed(os.time())
local users = {%(users)s}
local items = {%(items)s}
local counter = 0
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%%d,"duration_us":%%d,"p50":%%d,"p95":%%d,"p99":%%d,' ..
    '"errors":%%d,"non2xx":%%d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""
LUA_SCENARIOS = {
    "recs": """
request = function()
  local u = users[math.random(#users)]
  return wrk.format("GET", "/users/" .. u ..
    "/recommendations?n=10&exclude_seen=true&diversity=0.3", {["X-API-Key"]="%(key)s"})
end
""",
    "recommend": """
request = function()
  local u = users[math.random(#users)]
  local parts = {}
  for k = 1, 20 do parts[k] = '"' .. items[math.random(#items)] .. '"' end
  local body = '{"user":"' .. u .. '","items":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/recommend", {["X-API-Key"]="%(key)s",
    ["Content-Type"]="application/json"}, body)
end
""",
    "events": """
request = function()
  local parts = {}
  for k = 1, 100 do
    counter = counter + 1
    parts[k] = string.format('{"user_id":"%%s","item_id":"%%s","type":"view",' ..
      '"timestamp":%%d}', users[math.random(#users)], items[math.random(#items)],
      1700000000 + counter * 7 + math.random(1000000))
  end
  return wrk.format("POST", "/events", {["X-API-Key"]="%(key)s",
    ["Content-Type"]="application/json"}, "[" .. table.concat(parts, ",") .. "]")
end
""",
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, world: dict[str, Any], scenario: str, duration: int, connections: int,
            workdir: Path, server_pid: int | None = None) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    users = rng.choice(world["users"], min(2000, len(world["users"])), replace=False)
    items = rng.choice(world["items"], min(5000, len(world["items"])), replace=False)
    script = (LUA_COMMON % {"users": ",".join(f'"{u}"' for u in users),
                            "items": ",".join(f'"{i}"' for i in items)}
              + LUA_SCENARIOS[scenario] % {"key": KEY})
    path = workdir / f"{scenario}.lua"
    path.write_text(script)
    cpu0 = cpu_seconds(server_pid) if server_pid else 0.0
    out = subprocess.run([*PIN["wrk"], "wrk", "-t1", f"-c{connections}", f"-d{duration}s",
                          "--timeout", "5s", "-s", str(path), url],
                         capture_output=True, text=True, check=True)
    cpu = cpu_seconds(server_pid) - cpu0 if server_pid else float("nan")
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    seconds = stats["duration_us"] / 1e6
    return {"scenario": scenario, "connections": connections,
            "requests": stats["requests"], "rps": stats["requests"] / seconds,
            "p50_ms": stats["p50"] / 1000, "p95_ms": stats["p95"] / 1000,
            "p99_ms": stats["p99"] / 1000, "errors": stats["errors"],
            "non2xx": stats["non2xx"],
            # server CPU per request: what one dedicated core would need, whatever the load
            "server_cpu_ms": cpu * 1000 / max(stats["requests"], 1)}


def event_to_update(url: str, world: dict[str, Any], n: int = 60) -> list[dict[str, Any]]:
    """Send an event for the top item of a user's list; time until a list without it comes back.

    Two figures: ``event->update`` polls the list while the event request is in flight (what
    a page sees when the app's tracker posts the event), ``event->ack->update`` asks only
    after the event was acknowledged (store write included).
    """
    import asyncio

    import httpx

    rng = np.random.default_rng(2)
    users = rng.choice(world["users"], 2 * n, replace=False)

    async def run() -> tuple[list[float], list[float], int]:
        visible, acked, reflected = [], [], 0
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": KEY}, timeout=10,
                                     limits=httpx.Limits(max_connections=4)) as http:
            async def top(user: str) -> list[str]:
                got = await http.get(f"/users/{user}/recommendations", params={"n": 10})
                return [i["item_id"] for i in got.json()["items"]]

            for k, user in enumerate(users):
                item = (await top(user))[0]
                start = time.perf_counter()
                post = asyncio.ensure_future(http.post("/events", json={
                    "user_id": user, "item_id": item, "type": "purchase"}))
                if k % 2 == 0:  # poll while the event is in flight
                    while item in await top(user):
                        if post.done() and item in await top(user):
                            break
                    visible.append((time.perf_counter() - start) * 1000)
                    reflected += item not in await top(user)
                    await post
                else:  # wait for the acknowledgement, then ask
                    await post
                    after = await top(user)
                    acked.append((time.perf_counter() - start) * 1000)
                    reflected += item not in after
        return visible, acked, reflected

    visible, acked, reflected = asyncio.run(run())
    rows = []
    for name, lat in (("event->update", visible), ("event->ack->update", acked)):
        arr = np.asarray(lat)
        rows.append({"scenario": name, "requests": len(arr), "reflected": None,
                     "p50_ms": float(np.percentile(arr, 50)),
                     "p95_ms": float(np.percentile(arr, 95)),
                     "p99_ms": float(np.percentile(arr, 99))})
    rows[0]["reflected"] = rows[1]["reflected"] = f"{reflected}/{2 * n}"
    return rows


# -- main -------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worlds", default="ml100k,catalogue50k")
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--repeats", type=int, default=3,
                        help="wrk runs per scenario; the table shows the median of each figure")
    parser.add_argument("--pin", action="store_true",
                        help="run the server on CPU 0 and wrk on CPU 1 (taskset), so the load "
                             "generator never takes the server's core")
    args = parser.parse_args()
    if args.pin:
        PIN.update(server=["taskset", "-c", "0"], wrk=["taskset", "-c", "1"])
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    rows: list[dict[str, Any]] = []
    workdir = Path(tempfile.mkdtemp(prefix="limelight-serve-bench-"))
    try:
        for name in args.worlds.split(","):
            t0 = time.perf_counter()
            world = prepare_ml100k(workdir) if name == "ml100k" else prepare_catalogue(workdir)
            print(f"{name}: {world['n_users']:,} users x {world['n_items']:,} items prepared "
                  f"in {time.perf_counter() - t0:.0f} s", flush=True)
            proc = start_server(world, args.port)
            url = f"http://127.0.0.1:{args.port}"
            import httpx

            cached = httpx.get(f"{url}/health").json().get("candidates", {}).get("status")
            try:
                run_wrk(url, world, "recs", 2, args.connections, workdir)  # warm-up
                for scenario, conns in (("recs", args.connections),
                                        ("recommend", args.connections), ("events", 2)):
                    row = median_of([run_wrk(url, world, scenario, args.duration, conns,
                                             workdir, proc.pid) for _ in range(args.repeats)])
                    rows.append({"world": name, **row})
                    print(_fmt(rows[-1]), flush=True)
                for row in event_to_update(url, world):
                    rows.append({"world": name, **row})
                    print(_fmt(rows[-1]), flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            if cached == "ready":
                # reference: the same requests with every one scoring the whole catalogue
                proc = start_server(world, args.port, cache=False)
                try:
                    run_wrk(url, world, "recs", 2, args.connections, workdir)
                    row = median_of([run_wrk(url, world, "recs", args.duration,
                                             args.connections, workdir, proc.pid)
                                     for _ in range(args.repeats)])
                    rows.append({"world": name, **row, "scenario": "recs-nocache"})
                    print(_fmt(rows[-1]), flush=True)
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _report(rows, args)


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row per scenario: the median of each figure over repeated wrk runs (each run's
    figures are kept under ``runs``); on a 2-core machine shared with wrk single runs spread
    widely, so the table quotes medians."""
    row = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, float):
            row[key] = float(np.median([r[key] for r in runs]))
    row["runs"] = runs
    return row


def _fmt(row: dict[str, Any]) -> str:
    rps = f"{row['rps']:8.0f}" if "rps" in row else "       -"
    cpu = (f"{row['server_cpu_ms']:6.2f}" if row.get("server_cpu_ms") == row.get(
        "server_cpu_ms") and "server_cpu_ms" in row else "     -")
    return (f"{row['world']:<13} {row['scenario']:<18} {rps} req/s  p50 {row['p50_ms']:7.2f}  "
            f"p95 {row['p95_ms']:7.2f}  p99 {row['p99_ms']:7.2f} ms  cpu {cpu} ms/req")


def _report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("world         scenario            throughput       latency (ms)                    "
          "server CPU       target")
    for row in rows:
        target = ""
        if row["scenario"] == "recs":
            target = (f">= {TARGET_RPS:.0f}/s, p99 <= {TARGET_P99_MS[row['world']]:.0f} ms: "
                      + ("met" if row["rps"] >= TARGET_RPS
                         and row["p99_ms"] <= TARGET_P99_MS[row["world"]] else "MISSED"))
        elif row["scenario"] == "event->update":
            target = (f"p99 <= {TARGET_UPDATE_MS:.0f} ms: "
                      + ("met" if row["p99_ms"] <= TARGET_UPDATE_MS else "MISSED")
                      + f" ({row['reflected']} reflected)")
        elif row["scenario"] == "events":
            target = f"{row['rps'] * 100:,.0f} events/s"
        elif row["scenario"] == "recs-nocache":
            cached = next((r for r in rows if r["world"] == row["world"]
                           and r["scenario"] == "recs"), None)
            target = "reference: candidate cache off" + (
                f" (cache: {cached['rps'] / row['rps']:.2f}x throughput, "
                f"{row['server_cpu_ms'] / cached['server_cpu_ms']:.2f}x less CPU/request)"
                if cached else "")
        print(_fmt(row) + "  " + target)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("serve-pinned.json" if args.pin else "serve.json")
    out.write_text(json.dumps({"args": vars(args), "cpus": os.cpu_count(),
                               "load_avg": os.getloadavg(), "rows": rows}, indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
