"""The main job: Limelight end to end on the sample world, as a list of named steps.

Each step is a function ``step(ctx: DemoContext) -> dict`` registered in :data:`STEPS`; the
dict it returns is kept in ``ctx.results[name]`` for later steps and shown in the summary (its
``"summary"`` entry is the one-line description). Adding a step is three lines: write the
function and append ``Step("name", "what it does", function)`` to ``STEPS``.

Example
-------
>>> from limelight.jobs.demo import run_demo
>>> result = run_demo("./limelight-demo", size="tiny", seed=0, serve=False)  # doctest: +SKIP
>>> result["steps"]["ingest"]["events"]["accepted"]  # doctest: +SKIP
10213
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from limelight.api import serve as _serve
from limelight.errors import LimelightError


@dataclass
class DemoContext:
    """What the steps share: where to work, the store, and every earlier step's result."""

    workdir: Path
    size: str
    seed: int
    serve: bool
    store_url: str
    console: Any  # rich Console, or None when quiet
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    _store: Any = None

    @property
    def world_dir(self) -> Path:
        return self.workdir / "world"

    @property
    def store(self) -> Any:
        """The event store, opened on first use (closed by :func:`run_demo` at the end)."""
        if self._store is None:
            from limelight.store import open_store

            self._store = open_store(self.store_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


@dataclass(frozen=True)
class Step:
    """One named step of the main job; ``enabled`` decides from the context whether it runs."""

    name: str
    description: str
    run: Callable[[DemoContext], dict[str, Any]]
    enabled: Callable[[DemoContext], bool] | None = None


# -- steps ------------------------------------------------------------------------------------
def generate_step(ctx: DemoContext) -> dict[str, Any]:
    """Generate the sample world, or reuse it when the folder already holds the same one."""
    from limelight.sim.world import write_world

    manifest_path = ctx.world_dir / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        same = (manifest.get("size") == str(ctx.size) and manifest.get("seed") == ctx.seed
                and manifest.get("format") == "parquet"
                and all(Path(p).is_file() for p in manifest.get("files", {}).values()))
        if same:
            return {**_world_summary(manifest), "reused": True,
                    "summary": "reused " + _world_summary(manifest)["summary"]}
    manifest = write_world(ctx.world_dir, ctx.size, ctx.seed, "parquet")
    return {**_world_summary(manifest), "reused": False}


def _world_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    c = manifest["counts"]
    return {
        "counts": c, "files": manifest["files"], "truth": manifest["truth"],
        "window": [manifest["start"], manifest["end"]],
        "summary": f"{c['users']:,} users, {c['items']:,} items, {c['events']:,} events, "
                   f"{c['edges']:,} edges in {Path(manifest['files']['events']).parent}",
    }


def ingest_step(ctx: DemoContext) -> dict[str, Any]:
    """Ingest every world file into the store (re-running adds nothing: all duplicates)."""
    from limelight.data.ingest import ingest_file

    files = ctx.results["generate"]["files"]
    out: dict[str, Any] = {}
    for entity in ("users", "contacts", "items", "edges", "events"):
        report = ingest_file(ctx.store, files[entity], entity)
        out[entity] = report.to_dict()
        if report.read != report.accepted + report.duplicates + report.rejected:
            raise LimelightError(f"ingest of {entity} does not reconcile: {report.to_dict()}")
    totals = {k: sum(int(out[e][k]) for e in out) for k in ("read", "accepted", "duplicates",
                                                              "rejected")}
    out["totals"] = totals
    out["store_url"] = ctx.store_url
    out["summary"] = (f"read {totals['read']:,} rows: {totals['accepted']:,} accepted, "
                      f"{totals['duplicates']:,} duplicates, {totals['rejected']:,} rejected")
    return out


def stats_step(ctx: DemoContext) -> dict[str, Any]:
    """Counts, date range, events per type, sparsity and top items from the store."""
    store = ctx.store
    counts = {e: int(store.count(e)) for e in ("users", "contacts", "items", "edges", "events")}
    span = store.sql("select min(timestamp) as first, max(timestamp) as last, "
                     "count(distinct user_id) as users, count(distinct item_id) as items "
                     "from events")
    per_type = store.sql("select type, count(*) as n from events group by type order by n desc")
    pairs = store.sql("select count(*) as n from (select distinct user_id, item_id from events "
                      "where item_id is not null)")
    top = store.sql("select item_id, count(*) as purchases from events where type = 'purchase' "
                    "group by item_id order by purchases desc, item_id limit 5")
    n_users, n_items = int(span["users"].iloc[0]), int(span["items"].iloc[0])
    density = float(pairs["n"].iloc[0]) / max(n_users * n_items, 1)
    return {
        "counts": counts,
        "first_event": str(span["first"].iloc[0]), "last_event": str(span["last"].iloc[0]),
        "events_per_type": dict(zip(per_type["type"], per_type["n"].astype(int), strict=True)),
        "active_users": n_users, "active_items": n_items, "sparsity": 1.0 - density,
        "top_items": top.to_dict(orient="records"),
        "summary": f"{counts['events']:,} events from {n_users:,} users on {n_items:,} items, "
                   f"sparsity {1.0 - density:.4f}",
    }


def leaderboard_step(ctx: DemoContext) -> dict[str, Any]:
    """Evaluate a few models (per-user temporal 80/20, full ranking), print the leaderboard,
    then refit the best on all events and activate it as a model artifact."""
    from limelight.data.dataset import build_dataset
    from limelight.evaluation.leaderboard import default_models, evaluate_and_publish

    dataset = build_dataset(ctx.store)
    return evaluate_and_publish(dataset, default_models(dataset),
                                out_dir=ctx.workdir / "leaderboard",
                                artifacts_dir=ctx.workdir / "artifacts", dataset_name="sample",
                                console=ctx.console)


#: The main job's steps, in order. Append yours here.
STEPS: list[Step] = [
    Step("generate", "generate the sample world", generate_step),
    Step("ingest", "ingest it into the event store", ingest_step),
    Step("stats", "summarise the store", stats_step),
    Step("leaderboard", "evaluate models, activate the best", leaderboard_step),
    Step("profiles", "build user profiles and segments, print the segment table",
         lambda ctx: __import__("limelight.profile.build", fromlist=["x"]).profiles_step(ctx)),
    Step("campaign", "a personalised coupon campaign and its simulated uplift",
         lambda ctx: __import__("limelight.marketing.demo", fromlist=["x"])
         .demo_campaign_step(ctx)),
    # serving stays last: add new steps above this line
    Step("model", "train a model unless one is active", _serve.demo_model_step),
    Step("serve", "serve the API on 127.0.0.1 (Ctrl-C stops)", _serve.demo_serve_step,
         enabled=lambda ctx: ctx.serve),
]


# -- runner -----------------------------------------------------------------------------------
def run_demo(workdir: str | Path = "./limelight-demo", size: str = "small", seed: int = 0,
             serve: bool = True, *, store_url: str | None = None, steps: list[Step] | None = None,
             quiet: bool = False, console: Any = None) -> dict[str, Any]:
    """Run the main job's steps in order, showing progress per step and a summary.

    Parameters
    ----------
    workdir
        Folder for the world, the DuckDB store and every artifact (created if needed).
    size, seed
        Sample world size (``tiny``, ``small``, ``medium``, ``large`` or a number of events)
        and seed.
    serve
        Whether steps that start the HTTP service run (they check ``ctx.serve``).
    store_url
        Event store URL; default ``duckdb:///<workdir>/limelight.duckdb``.
    steps
        Steps to run (default :data:`STEPS`).
    quiet
        Print nothing (the ``--json`` mode).

    Returns
    -------
    dict
        ``workdir``, ``store_url``, ``size``, ``seed``, ``steps`` (name -> result, each with
        ``seconds``) and ``seconds`` in total.
    """
    from limelight.sim.world import resolve_size

    resolve_size(size)  # fail on a bad size before creating anything
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if console is None and not quiet:
        from rich.console import Console

        console = Console(stderr=False)
    ctx = DemoContext(workdir, str(size), int(seed), serve,
                      store_url or f"duckdb:///{workdir / 'limelight.duckdb'}",
                      None if quiet else console)
    chosen = [s for s in (STEPS if steps is None else steps)
              if s.enabled is None or s.enabled(ctx)]
    started = time.perf_counter()
    timings: dict[str, float] = {}
    try:
        for k, step in enumerate(chosen, 1):
            t0 = time.perf_counter()
            label = f"[{k}/{len(chosen)}] {step.name}: {step.description}"
            if ctx.console is not None:
                with ctx.console.status(label + " ..."):
                    result = step.run(ctx)
            else:
                result = step.run(ctx)
            timings[step.name] = time.perf_counter() - t0
            ctx.results[step.name] = {**result, "seconds": round(timings[step.name], 3)}
            if ctx.console is not None:
                ctx.console.print(f"[green]✓[/] {label} [dim]({timings[step.name]:.1f} s)[/]"
                                  f"\n    {result.get('summary', '')}", highlight=False)
    finally:
        ctx.close()
    total = time.perf_counter() - started
    if ctx.console is not None:
        _print_summary(ctx, timings, total)
    return {"workdir": str(workdir), "store_url": ctx.store_url, "size": ctx.size,
            "seed": ctx.seed, "steps": ctx.results, "seconds": round(total, 3)}


def _print_summary(ctx: DemoContext, timings: dict[str, float], total: float) -> None:
    from rich.table import Table

    table = Table(title=f"Limelight demo: {ctx.workdir}")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_column("result", overflow="fold")
    for name, seconds in timings.items():
        table.add_row(name, f"{seconds:.1f}", str(ctx.results[name].get("summary", "")))
    table.add_row("total", f"{total:.1f}", f"store {ctx.store_url}")
    ctx.console.print(table)
