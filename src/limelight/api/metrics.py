"""Prometheus metrics: request counts and latencies by route, model version, exposure.

Each app gets its own registry (several apps can live in one process, e.g. in tests). The
middleware is plain ASGI (no per-request task or body copy) to keep the hot path lean.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

#: Latency buckets (seconds) around the serving targets (15-25 ms p99).
BUCKETS = (0.001, 0.002, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ApiMetrics:
    """The metrics of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("limelight_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("limelight_http_request_duration_seconds",
                                 "Time to answer an HTTP request", ["method", "route"],
                                 buckets=BUCKETS, registry=self.registry)
        self.model_info = Gauge("limelight_model_info", "The model version being served (1)",
                                ["version", "name"], registry=self.registry)
        self.model_loaded = Gauge("limelight_model_loaded_timestamp_seconds",
                                  "When the served model version was loaded",
                                  registry=self.registry)
        self.events = Counter("limelight_events", "Events received by POST /events and "
                              "POST /feedback, by outcome", ["outcome"], registry=self.registry)
        self.fallbacks = Counter("limelight_recommendations", "Recommendation lists served, by "
                                 "the path that answered", ["source"], registry=self.registry)
        self.exposure_gini = Gauge("limelight_exposure_gini",
                                   "Gini coefficient of item exposure in served lists",
                                   registry=self.registry)
        self.exposure_head = Gauge("limelight_exposure_head_share",
                                   "Share of exposure taken by the top 10% of the catalogue",
                                   registry=self.registry)
        self._list_children: dict[str, Any] = {}

    def count_list(self, source: str) -> None:
        """Count one served list by the path that answered (cached labelled child)."""
        child = self._list_children.get(source)
        if child is None:
            child = self._list_children[source] = self.fallbacks.labels(source)
        child.inc()

    def set_model(self, version: str, name: str) -> None:
        self.model_info.clear()
        self.model_info.labels(version=version, name=name).set(1)
        self.model_loaded.set(time.time())

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """ASGI middleware counting requests and timing them by route template."""

    def __init__(self, app: Any, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            # labelled children are cached: prometheus_client's labels() is slow per call
            key = (method, path, status)
            children = self._children.get(key)
            if children is None:
                children = (self.metrics.requests.labels(method, path, str(status)),
                            self.metrics.latency.labels(method, path))
                self._children[key] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - start)
