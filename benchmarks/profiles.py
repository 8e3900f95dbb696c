"""Profile build time at scale and the latency of real-time profile updates.

Claims (issue 4): building profiles for 1M events / 100k users takes under 30 s on this
machine; ``ProfileUpdater.learn_one`` has a p99 under 1 ms per event.

The input is a synthetic shop made here with numpy (100k users by default, so the user count
is what the claim names): a funnel of event types, sessions, prices and discounts, items with
categories and tags, a social graph and user coordinates. The build is compared with a
reference measured in the same process: one DuckDB ``GROUP BY user_id`` over the same events
(the least any per-user feature pass must cost). Update latency is measured per event with
``perf_counter_ns`` for events after the build, with and without segment assignment, next to a
plain Python dict counter update as reference.

Run: ``python benchmarks/profiles.py [--events 1000000] [--users 100000] [--updates 20000]``
Writes ``benchmarks/results/profiles.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from limelight.profile.features import ProfileBuilder
from limelight.profile.realtime import ProfileUpdater
from limelight.profile.segments import SegmentModel

RESULTS = Path(__file__).resolve().parent / "results"
TYPES = np.array(["impression", "view", "click", "add_to_cart", "purchase", "return", "rating",
                  "like"])
TYPE_P = np.array([0.30, 0.38, 0.15, 0.06, 0.05, 0.005, 0.035, 0.02])
CATEGORIES = [f"cat{j:02d}" for j in range(24)]


def make_shop(n_events: int, n_users: int, n_items: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """A synthetic shop in the data model's columns (vectorised, a few seconds)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01", tz="UTC").value // 1000
    user = rng.zipf(1.6, n_events) % n_users
    user[:n_users] = np.arange(n_users)  # every user has at least one event
    item = rng.zipf(1.3, n_events) % n_items
    kind = TYPES[rng.choice(len(TYPES), n_events, p=TYPE_P / TYPE_P.sum())]
    ts = start + rng.integers(0, 180 * 86_400, n_events) * 1_000_000
    price = np.round(rng.lognormal(3.0, 0.8, n_items), 2)
    qty = rng.integers(1, 4, n_events).astype(float)
    discount = np.where(rng.random(n_events) < 0.2, 0.8, 1.0)
    value = np.where(np.isin(kind, ["purchase", "return", "add_to_cart"]),
                     np.round(price[item] * qty * discount, 2),
                     np.where(kind == "rating", rng.integers(1, 6, n_events), np.nan))
    events = pd.DataFrame({
        "event_id": np.char.add("e", np.arange(n_events).astype(str)),
        "user_id": np.char.add("u", user.astype(str)),
        "item_id": np.char.add("i", item.astype(str)),
        "type": kind, "value": value,
        "quantity": np.where(np.isin(kind, ["purchase", "return"]), qty, np.nan),
        "timestamp": pd.to_datetime(ts, unit="us", utc=True),
        "session_id": np.char.add("s", (user * 1000 + (ts - start) // (6 * 3_600_000_000))
                                  .astype(str)),
    })
    cats = rng.integers(0, len(CATEGORIES), (n_items, 2))
    items = pd.DataFrame({
        "item_id": np.char.add("i", np.arange(n_items).astype(str)),
        "categories": [[CATEGORIES[a], CATEGORIES[b]] for a, b in cats],
        "tags": [[f"tag{t}"] for t in rng.integers(0, 500, n_items)],
        "price": price,
    })
    users = pd.DataFrame({
        "user_id": np.char.add("u", np.arange(n_users).astype(str)),
        "age": rng.integers(18, 80, n_users),
        "region": np.array(["north", "south", "east", "west"])[rng.integers(0, 4, n_users)],
        "lat": rng.uniform(36, 60, n_users), "lon": rng.uniform(-9, 25, n_users),
    })
    n_edges = 3 * n_users
    edges = pd.DataFrame({
        "src_user_id": np.char.add("u", rng.integers(0, n_users, n_edges).astype(str)),
        "dst_user_id": np.char.add("u", (rng.zipf(1.8, n_edges) % n_users).astype(str)),
        "kind": np.where(rng.random(n_edges) < 0.5, "friend", "trust"), "weight": 1.0,
        "directed": None,
    })
    return {"events": events, "users": users, "items": items, "edges": edges}


def reference_group_by(events: pd.DataFrame) -> float:
    """Seconds for DuckDB to aggregate the same events per user once (the floor)."""
    con = duckdb.connect()
    con.register("events", events)
    t0 = time.perf_counter()
    con.sql("SELECT user_id, count(*), sum(value), max(epoch_us(timestamp)) FROM events "
            "GROUP BY user_id").to_arrow_table()
    seconds = time.perf_counter() - t0
    con.close()
    return seconds


def update_latencies(updater: ProfileUpdater, events: list[dict]) -> np.ndarray:
    out = np.empty(len(events), dtype=np.int64)
    clock = time.perf_counter_ns
    for i, event in enumerate(events):
        t0 = clock()
        updater.learn_one(event)
        out[i] = clock() - t0
    return out / 1_000.0  # µs


def dict_latencies(events: list[dict]) -> np.ndarray:
    counts: dict[tuple[str, str], int] = {}
    out = np.empty(len(events), dtype=np.int64)
    clock = time.perf_counter_ns
    for i, event in enumerate(events):
        t0 = clock()
        key = (event["user_id"], event["type"])
        counts[key] = counts.get(key, 0) + 1
        out[i] = clock() - t0
    return out / 1_000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=1, help="builds to take the median of")
    args = parser.parse_args()

    t0 = time.perf_counter()
    shop = make_shop(args.events + args.updates, args.users, args.items)
    events = shop["events"].sort_values("timestamp", kind="stable")
    later = events.iloc[-args.updates:]
    shop["events"] = events.iloc[:-args.updates].reset_index(drop=True)
    print(f"synthetic shop: {len(shop['events']):,} events, {args.users:,} users, "
          f"{args.items:,} items, {len(shop['edges']):,} edges (made in "
          f"{time.perf_counter() - t0:.1f} s)")

    ref = reference_group_by(shop["events"])
    builds = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        builder = ProfileBuilder().fit(shop)
        builds.append(time.perf_counter() - t0)
    build_s = float(np.median(builds))
    profiles = builder.profiles_
    print(f"profile build: {build_s:.1f} s for {len(profiles):,} users x {profiles.shape[1]} "
          f"columns (median of {args.repeat}); DuckDB GROUP BY reference {ref:.2f} s "
          f"(ratio {build_s / ref:.0f}x); target < 30 s: "
          f"{'ok' if build_s < 30 else 'MISSED'}")

    t0 = time.perf_counter()
    model = SegmentModel(k=6, random_state=0).fit(profiles)
    seg_s = time.perf_counter() - t0
    records = later.to_dict("records")
    plain = ProfileUpdater.from_builder(builder)
    with_segments = ProfileUpdater.from_builder(builder, model)
    on_read = ProfileUpdater.from_builder(builder, model, assign_on="read")
    lat_plain = update_latencies(plain, records)
    lat_seg = update_latencies(with_segments, records)
    # assign_on="read": each event learned, then its user's segment read (the worst case:
    # every event followed by a read).
    lat_read = np.empty(len(records))
    lat_seg_read = np.empty(len(records))
    for i, event in enumerate(records):
        t0 = time.perf_counter_ns()
        on_read.learn_one(event)
        t1 = time.perf_counter_ns()
        on_read.segment(event["user_id"])
        lat_read[i], lat_seg_read[i] = (t1 - t0) / 1000, (time.perf_counter_ns() - t1) / 1000
    lat_dict = dict_latencies(records)

    def row(name: str, lat: np.ndarray) -> dict:
        return {"name": name, "p50_us": float(np.percentile(lat, 50)),
                "p99_us": float(np.percentile(lat, 99)), "max_us": float(lat.max()),
                "mean_us": float(lat.mean())}

    rows = [row("learn_one (counters, RFM, interests)", lat_plain),
            row("learn_one + segment assignment", lat_seg),
            row("learn_one, assign_on='read'", lat_read),
            row("segment() read right after each event", lat_seg_read),
            row("reference: dict counter +1", lat_dict)]
    print(f"\nupdates: {len(records):,} events after the build (K-means k=6 fitted in "
          f"{seg_s:.1f} s)")
    print(f"{'':40} {'p50 µs':>9} {'p99 µs':>9} {'max µs':>9}")
    for r in rows:
        print(f"{r['name']:40} {r['p50_us']:9.1f} {r['p99_us']:9.1f} {r['max_us']:9.1f}")
    p99_ms = rows[1]["p99_us"] / 1000
    print(f"p99 with segment assignment {p99_ms:.3f} ms; target < 1 ms: "
          f"{'ok' if p99_ms < 1 else 'MISSED'}; p99 without it / assign_on='read' "
          f"{rows[0]['p99_us'] / 1000:.3f} / {rows[2]['p99_us'] / 1000:.3f} ms; "
          f"ratio p50 to dict reference {rows[1]['p50_us'] / max(rows[4]['p50_us'], 1e-3):.0f}x")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak_mb:,.0f} MB")

    RESULTS.mkdir(exist_ok=True)
    out = {"events": len(shop["events"]), "users": args.users, "build_seconds": builds,
           "build_median_seconds": build_s, "reference_group_by_seconds": ref,
           "segment_fit_seconds": seg_s, "updates": rows, "peak_memory_mb": peak_mb}
    path = RESULTS / "profiles.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
