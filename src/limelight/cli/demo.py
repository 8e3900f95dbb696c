"""``limelight demo``: the main job, end to end on the sample world."""

from __future__ import annotations

from pathlib import Path

import typer

from limelight.cli.common import print_json


def register(app: typer.Typer) -> None:
    app.command(
        "demo",
        help="Run Limelight end to end: generate the sample world, ingest it into DuckDB, "
        "summarise it, and every later step (models, profiles, serving).\n\n"
        "Example: limelight demo --workdir ./limelight-demo --size small --no-serve",
    )(demo)


def demo(
    workdir: Path = typer.Option(Path("./limelight-demo"), "--workdir",
                                 help="folder for the world, the store and artifacts"),
    size: str = typer.Option("small", "--size",
                             help="tiny, small, medium, large or a number of events"),
    seed: int = typer.Option(0, "--seed", help="sample world seed"),
    serve: bool = typer.Option(True, "--serve/--no-serve",
                               help="start the HTTP service at the end (when that step exists)"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON, no progress"),
) -> None:
    """Run the main job."""
    from limelight.cli.common import fail
    from limelight.jobs.demo import run_demo

    if seed < 0:
        fail("--seed must be >= 0")
    if workdir.exists() and not workdir.is_dir():
        fail(f"--workdir {workdir} exists and is not a folder")
    result = run_demo(workdir, size=size, seed=seed, serve=serve, quiet=as_json)
    if as_json:
        print_json(result)
