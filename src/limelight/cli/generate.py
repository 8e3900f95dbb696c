"""``limelight generate``: write the synthetic sample world (and its hidden truth) to a folder."""

from __future__ import annotations

from pathlib import Path

import typer

from limelight.cli.common import console, fail, print_json, print_table


def register(app: typer.Typer) -> None:
    app.command(
        "generate",
        help="Generate the sample world: a reproducible synthetic shop with a hidden truth.\n\n"
        "Writes users, contacts, items, edges and events files plus truth/ (segments, "
        "preference vectors, response model) and manifest.json.\n\n"
        "Example: limelight generate --size small --seed 0 --out ./world",
    )(generate)


def generate(
    size: str = typer.Option(
        "small", "--size", help="tiny (~10k events), small (~200k), medium (~1M), large (~10M) "
        "or a number of events"),
    seed: int = typer.Option(0, "--seed", help="same seed and size, same files"),
    out: Path = typer.Option(Path("./world"), "--out", help="folder to write into"),
    fmt: str = typer.Option("parquet", "--format", help="parquet, csv or jsonl"),
    as_json: bool = typer.Option(False, "--json", help="print the manifest as JSON"),
) -> None:
    """Generate the sample world into ``out``."""
    from limelight.sim.world import FORMATS, resolve_size, write_world

    if fmt not in FORMATS:
        fail(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if seed < 0:
        fail("--seed must be >= 0")
    if out.exists() and not out.is_dir():
        fail(f"--out {out} exists and is not a folder")
    _, _, target = resolve_size(size)  # a bad size fails here, before any work

    if as_json:
        manifest = write_world(out, size, seed, fmt)
        print_json(manifest)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("events", total=target)
        manifest = write_world(out, size, seed, fmt,
                               progress=lambda n: bar.update(task, completed=n))
    rows = [{"entity": k, "rows": v, "file": manifest["files"][k]}
            for k, v in manifest["counts"].items()]
    print_table(f"sample world (size {size}, seed {seed})", rows)
    console.print(f"window {manifest['start']} .. {manifest['end']}; hidden truth in "
                  f"{manifest['truth']}")
