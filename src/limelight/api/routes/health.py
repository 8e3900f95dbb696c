"""``GET /health`` (always open) and ``GET /metrics`` (Prometheus text format)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from limelight.api.deps import JSONResponse, ReadKey, State
from limelight.api.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health, summary="Liveness and the model being served")
async def health(request: Request, state: State) -> Any:
    """``ok`` when a model version is loaded, ``degraded`` (still 200) when none is; no key
    needed. Example: ``curl http://127.0.0.1:8000/health``"""
    snapshot = state.snapshot
    return JSONResponse({
        "status": "ok" if snapshot is not None else "degraded",
        "model_version": snapshot.version if snapshot else None,
        "model": snapshot.name if snapshot else None,
        "items": snapshot.catalog.n_items if snapshot else 0,
        "users": len(snapshot.histories) if snapshot else 0,
        "uptime_s": round(time.time() - request.app.state.started_at, 3),
        "profiles": state.profiles_status,
        "candidates": {"status": state.candidates_status,
                       "users": len(snapshot.pipeline.cache) if snapshot else 0},
        "error": state.load_error})


@router.get("/metrics", dependencies=[ReadKey], response_class=Response,
            summary="Prometheus metrics", responses={200: {
                "content": {"text/plain": {"example": "limelight_http_requests_total{...} 12"}}}})
async def metrics(request: Request, state: State) -> Response:
    """Request counts and latency histograms by route, the model version served, events by
    outcome, lists by answering path, and exposure concentration."""
    app_metrics = request.app.state.metrics
    snapshot = state.snapshot
    n_items = snapshot.catalog.n_items if snapshot else None
    app_metrics.exposure_gini.set(state.exposure.gini(n_items))
    app_metrics.exposure_head.set(state.exposure.head_share(0.1, n_items))
    body, content_type = app_metrics.render()
    return Response(body, media_type=content_type)
