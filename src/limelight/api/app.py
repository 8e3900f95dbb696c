"""The HTTP API: ``create_app(settings=None, store=None) -> FastAPI``.

Routers are discovered: every module in :mod:`limelight.api.routes` that exposes ``router`` is
included, so a new resource is one new file. The app serves the artifact store's active model
version and picks up a switch (``limelight models activate`` / ``rollback``) while running.

Example
-------
>>> from limelight.api.app import create_app                            # doctest: +SKIP
>>> import uvicorn; uvicorn.run(create_app(), host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from limelight.api.auth import ApiKeys
from limelight.api.deps import error
from limelight.api.hotpath import HotPathMiddleware
from limelight.api.metrics import ApiMetrics, MetricsMiddleware
from limelight.api.state import ServingState
from limelight.errors import ArtifactError, LimelightError, StoreError, UnknownIdError
from limelight.settings import Settings, get_settings
from limelight.store.base import EventStore

log = logging.getLogger(__name__)

DESCRIPTION = """Personalised recommendations, live events and feedback.

Send the API key in the `X-API-Key` header (scopes: read, write, admin); `/health` is open.
"""


#: Route modules matched first (the rest follow in name order).
HOT_ROUTERS = ("recommendations", "events", "feedback", "items", "users", "health")


def discover_routers() -> list[Any]:
    """``router`` of every module in ``limelight.api.routes`` (hot ones first, then by name)."""
    from limelight.api import routes

    found = []
    # Starlette tries routes in order: the hot paths first keeps matching cheap
    first = {name: k for k, name in enumerate(HOT_ROUTERS)}
    modules = sorted(pkgutil.iter_modules(routes.__path__),
                     key=lambda m: (first.get(m.name, len(first)), m.name))
    for info in modules:
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{routes.__name__}.{info.name}")
        router = getattr(module, "router", None)
        if router is not None:
            found.append(router)
    return found


def create_app(settings: Settings | None = None, store: EventStore | None = None, *,
               artifacts_dir: str | Path | None = None, watch: bool = True,
               watch_interval: float = 1.0, build_profiles: bool = True) -> FastAPI:
    """Build the API app.

    Parameters
    ----------
    settings
        Defaults to :func:`limelight.settings.get_settings`.
    store
        The event store; opened from ``settings.store_url`` when None.
    artifacts_dir
        Artifact store root; ``settings.artifacts_dir`` when None.
    watch
        Poll the active model pointer and switch versions while running.
    watch_interval
        Seconds between polls.
    build_profiles
        Build user profiles (and the real-time profile updater) at start-up, in the
        background.
    """
    settings = settings or get_settings()
    if store is None:
        from limelight.store import open_store

        store = open_store(settings.store_url)
    state = ServingState(settings, store, artifacts_dir or settings.artifacts_dir)
    metrics = ApiMetrics()
    state.on_swap.append(lambda snap: metrics.set_model(snap.version, snap.name))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(state.load_active)
        await run_in_threadpool(_start_experiments, state)
        if build_profiles:
            state.start_profiles()
        if watch:
            state.start_watcher(watch_interval)
        try:
            yield
        finally:
            state.stop_watcher()
            state.stop_profiles()
            if state.experiments is not None:
                state.experiments.stop()

    app = FastAPI(title="Limelight", version=_version(), description=DESCRIPTION,
                  lifespan=lifespan)
    app.state.serving = state
    app.state.metrics = metrics
    app.state.api_keys = ApiKeys(settings.serve.api_keys)
    app.state.started_at = time.time()
    routers = discover_routers()
    for router in routers:
        app.include_router(router)
    _install_error_handlers(app)
    # inside the metrics, so hot requests are counted like the others
    app.add_middleware(HotPathMiddleware, routes=[r for router in routers for r in router.routes])
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _start_experiments(state: ServingState) -> None:
    """Bucket users into running serving experiments (none when the store has no SQL)."""
    from limelight.api.experiments import ServingExperiments

    try:
        state.experiments = ServingExperiments(state)
    except Exception:  # experiments are optional: serving must start regardless
        log.exception("serving experiments are unavailable")
        return
    state.experiments.start()


def _install_error_handlers(app: FastAPI) -> None:
    """Every error answer has the shape ``{"error": code, "detail": ...}``; no input makes a 500
    with a traceback."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Any:
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                  for e in exc.errors()]
        if any(e["type"] == "json_invalid" for e in detail):
            return error(400, "malformed_json", detail)
        return error(422, "invalid_request", detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Any:
        codes = {401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed"}
        response = error(exc.status_code, codes.get(exc.status_code, "http_error"), exc.detail)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(UnknownIdError)
    async def unknown(request: Request, exc: UnknownIdError) -> Any:
        return error(404, "unknown_id", str(exc))

    @app.exception_handler(ArtifactError)
    async def no_model(request: Request, exc: ArtifactError) -> Any:
        return error(503, "no_model", str(exc))

    @app.exception_handler(StoreError)
    async def store_down(request: Request, exc: StoreError) -> Any:
        log.error("store error: %s", exc)
        return error(503, "store_unavailable", str(exc))

    @app.exception_handler(LimelightError)
    async def limelight_error(request: Request, exc: LimelightError) -> Any:
        return error(422, type(exc).__name__, str(exc))


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("limelight")
    except Exception:
        return "0"
