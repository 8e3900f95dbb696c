"""``limelight serve``: the HTTP API over the configured store and the active model."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command(
        "serve",
        help="Serve recommendations, events and feedback over HTTP (FastAPI + uvicorn, one "
        "process) from the artifact store's active model version; a version switched with "
        "`limelight models activate/rollback` is picked up while running.\n\n"
        "Example: limelight serve --port 8000 --store duckdb:///./limelight.duckdb "
        "--artifacts ./artifacts",
    )(serve_command)


def serve_command(
    host: str = typer.Option(None, "--host", help="interface to listen on "
                             "(default settings.serve.host, 127.0.0.1)"),
    port: int = typer.Option(None, "--port", min=1, max=65535,
                             help="port (default settings.serve.port, 8000)"),
    store: str = typer.Option(None, "--store", help="event store URL (default "
                              "settings.store_url)"),
    artifacts: Path = typer.Option(None, "--artifacts", help="artifact store folder "
                                   "(default settings.artifacts_dir)"),
    as_json: bool = typer.Option(False, "--json", help="print the address as one JSON line "
                                 "when ready (for scripts), no banner"),
) -> None:
    """Start the API server."""
    import json
    import sys

    from limelight.api.serve import curl_example, serve
    from limelight.cli.common import console, fail
    from limelight.errors import LimelightError
    from limelight.settings import get_settings
    from limelight.store import open_store

    settings = get_settings()
    if artifacts is not None and artifacts.exists() and not artifacts.is_dir():
        fail(f"--artifacts {artifacts} is not a folder")
    try:
        opened = open_store(store or settings.store_url)
    except LimelightError as exc:
        fail(str(exc))

    def ready(url: str) -> None:
        if as_json:
            sys.stdout.write(json.dumps({"url": url, "docs": f"{url}/docs",
                                         "health": f"{url}/health"}) + "\n")
            sys.stdout.flush()
        else:
            console.print(f"[bold green]Limelight is serving at {url}[/] (docs: {url}/docs)\n"
                          f"  {curl_example(url, 'USER_ID')}", highlight=False)

    try:
        serve(settings, opened, host=host, port=port, artifacts_dir=artifacts, on_ready=ready)
    except OSError as exc:  # e.g. the port is taken
        fail(f"cannot serve on {host or settings.serve.host}:{port or settings.serve.port}: "
             f"{exc}")
    finally:
        opened.close()
