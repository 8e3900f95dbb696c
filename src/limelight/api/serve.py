"""Running the API: :func:`serve` (uvicorn, one process) and the main job's serving steps.

One process on purpose: users' live histories, feedback and profiles live in memory and every
event must be reflected in that user's very next request; uvloop and httptools are used when
installed, and access logging is off on the hot path (``/metrics`` counts every request).
"""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path
from typing import Any

from limelight.settings import Settings


def serve(settings: Settings, store: Any = None, *, host: str | None = None,
          port: int | None = None, artifacts_dir: str | Path | None = None,
          on_ready: Any = None, log_level: str = "warning") -> None:
    """Serve the API until interrupted (Ctrl-C stops it gracefully).

    Parameters
    ----------
    settings
        Settings; ``serve.host`` / ``serve.port`` unless ``host`` / ``port`` are given.
    store
        An open event store (default: ``settings.store_url``).
    artifacts_dir
        Artifact store root (default: ``settings.artifacts_dir``).
    on_ready
        Called with the base URL once the server accepts connections.
    """
    import uvicorn
    from threadpoolctl import threadpool_limits

    from limelight.api.app import create_app

    # one request is one small matrix-vector product: BLAS threads only contend (a 2-thread
    # gemv over 50k items was 6x slower than a 1-thread one on a busy 2-core machine)
    threadpool_limits(1, "blas")

    host = host or settings.serve.host
    port = port or settings.serve.port
    app = create_app(settings, store, artifacts_dir=artifacts_dir)
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, access_log=False,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11")
    server = uvicorn.Server(config)
    if on_ready is not None:
        original = server.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets=sockets)
            if server.started:
                on_ready(f"http://{host}:{port}")

        server.startup = startup  # type: ignore[method-assign]
    server.run()


def curl_example(url: str, user_id: str, api_key: str | None = None) -> str:
    """A ready-to-paste request for a user's recommendations."""
    header = f" -H 'X-API-Key: {api_key}'" if api_key else ""
    return f"curl -s{header} '{url}/users/{user_id}/recommendations?n=5&explain=true'"


# -- main job steps ---------------------------------------------------------------------------
def demo_model_step(ctx: Any) -> dict[str, Any]:
    """Train an ALS model on the sample world and activate it, unless a version is active."""
    from limelight.store.artifacts import ArtifactStore

    artifacts = ArtifactStore(ctx.workdir / "artifacts")
    active = artifacts.active_version()
    if active is not None:
        meta = artifacts.metadata(active)
        return {"version": active, "trained": False,
                "summary": f"serving the active version {active} ({meta.get('name')})"}
    from limelight.data.dataset import build_dataset
    from limelight.models.registry import create

    dataset = build_dataset(ctx.store, with_features=False)
    model = create("als", n_factors=64, n_epochs=15, random_state=ctx.seed).fit(dataset)
    version = artifacts.save(model, "als", dataset=dataset, activate=True)
    return {"version": version, "trained": True,
            "summary": f"trained ALS on {dataset.n_users:,} users x {dataset.n_items:,} items "
                       f"-> {version} (active)"}


def demo_serve_step(ctx: Any) -> dict[str, Any]:
    """Start the API on 127.0.0.1 over the demo's store and artifacts; print the URL and a
    curl example; serve until Ctrl-C."""
    from limelight.settings import get_settings

    settings = get_settings().model_copy(deep=True)
    settings.serve.host = "127.0.0.1"
    user = ctx.store.sql("SELECT user_id FROM events GROUP BY user_id "
                         "ORDER BY count(*) DESC, user_id LIMIT 1")
    user_id = str(user["user_id"].iloc[0]) if len(user) else "u1"
    keyless = not settings.serve.api_keys
    shown: dict[str, str] = {}

    def ready(url: str) -> None:
        shown["url"] = url
        if ctx.console is not None:
            ctx.console.print(
                f"\n[bold green]Limelight is serving at {url}[/]  (docs: {url}/docs, "
                f"Ctrl-C to stop)\n  {curl_example(url, user_id, None if keyless else 'KEY')}\n",
                highlight=False, soft_wrap=True)
        else:
            print(f"serving at {url}\n{curl_example(url, user_id)}", flush=True)

    # Ctrl-C is how this step ends: the job's summary still prints afterwards
    with contextlib.suppress(KeyboardInterrupt):
        serve(settings, ctx.store, artifacts_dir=ctx.workdir / "artifacts", on_ready=ready)
    url = shown.get("url", f"http://127.0.0.1:{settings.serve.port}")
    return {"url": url, "curl": curl_example(url, user_id),
            "summary": f"served at {url} (stopped)"}
