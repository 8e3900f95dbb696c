"""Experiments in the serving path: users bucketed at request time, variant parameters applied.

A running serving experiment (see :mod:`limelight.marketing.registry`) maps each variant to the
serving parameters it changes, e.g. ``{"diversity": 0.3}`` or ``{"model_version": "v0002"}``
(``{"model": "ease"}`` picks the newest stored version of that model). Per request
:meth:`ServingExperiments.resolve` buckets the user with the experiment's salted hash (cached
per user), merges the variants' parameters (they replace the server's defaults; values the
caller sends explicitly still win) and buffers one exposure. Nothing on that path touches the
store: running experiments live in memory, reloaded when one is created or stopped here (and
every ``refresh_s`` seconds, for experiments created by another process), and a background
thread writes the buffered exposures every ``flush_s`` seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from limelight.api.periodic import Periodic
from limelight.marketing.experiments import Experiment
from limelight.marketing.registry import ExperimentError, ExperimentRegistry

log = logging.getLogger(__name__)

#: Request parameters a variant may set, with the type each is coerced to.
REQUEST_PARAMS: dict[str, type] = {"diversity": float, "novelty": float, "n": int,
                                   "max_per_category": int, "exclude_seen": bool}
#: Parameters that pick the model version answering instead of the active one.
MODEL_PARAMS = ("model_version", "model")


@dataclass
class Assignment:
    """What the experiments decided for one request."""

    variants: dict[str, str] = field(default_factory=dict)  # experiment -> variant
    overrides: dict[str, Any] = field(default_factory=dict)  # request parameter -> value
    version: str | None = None  # model version to answer with (None = the active one)


class ServingExperiments:
    """Request-time bucketing over an :class:`ExperimentRegistry` for one API app.

    Parameters
    ----------
    state
        The :class:`~limelight.api.state.ServingState` (store, artifacts, variant snapshots).
    flush_s
        Seconds between background writes of buffered exposures.
    refresh_s
        Seconds between reloads of the running experiments from the store.
    cache_size
        Cached (experiment, user) assignments before the cache is cleared.
    """

    def __init__(self, state: Any, *, flush_s: float = 1.0, refresh_s: float = 10.0,
                 cache_size: int = 200_000) -> None:
        self.state = state
        # exposures are written only by flush(), never inline on a request
        self.registry = ExperimentRegistry(state.store, flush_every=2**62)
        self.flush_s, self.refresh_s, self.cache_size = flush_s, refresh_s, cache_size
        self._active: list[tuple[Experiment, dict[str, dict[str, Any]]]] = []
        self._versions: dict[tuple[str, str], str] = {}  # (experiment, variant) -> version
        self._cache: dict[tuple[str, str], str] = {}
        self._upkeep = Periodic("limelight-exposures", flush_s, self._flush_and_refresh)
        self._since_refresh = 0.0
        self.refresh()

    # -- lifecycle ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload running experiments from the store and load the model versions they use."""
        self.registry._running = None
        active = self.registry.running()
        versions = {}
        for experiment, params in active:
            for variant, values in params.items():
                version = self.version_of(values)
                if version is not None:
                    self.state.variant_snapshot(version)  # loaded now, not on a request
                    versions[(experiment.name, variant)] = version
        self._cache = {}
        self._versions = versions
        self._active = active

    def version_of(self, params: dict[str, Any]) -> str | None:
        """The stored model version ``params`` ask for (None when they keep the active one).

        Raises
        ------
        ExperimentError
            An unknown parameter, version or model name.
        """
        unknown = set(params) - set(REQUEST_PARAMS) - set(MODEL_PARAMS)
        if unknown:
            raise ExperimentError(f"unknown serving parameters {sorted(unknown)}; use "
                                  f"{sorted([*REQUEST_PARAMS, *MODEL_PARAMS])}")
        for name, kind in REQUEST_PARAMS.items():
            if name in params:
                try:
                    kind(params[name])
                except (TypeError, ValueError):
                    raise ExperimentError(f"{name} must be a {kind.__name__}") from None
        if "diversity" in params and not 0.0 <= float(params["diversity"]) <= 1.0:
            raise ExperimentError("diversity must lie in [0, 1]")
        for name in ("n", "max_per_category"):
            if name in params and int(params[name]) < 1:
                raise ExperimentError(f"{name} must be at least 1")
        if not any(name in params for name in MODEL_PARAMS):
            return None
        versions = self.state.artifacts.list()
        if "model_version" in params:
            wanted = str(params["model_version"])
            if wanted not in {v.get("version") for v in versions}:
                raise ExperimentError(f"no stored model version {wanted!r}")
            return wanted
        if "model" in params:
            named = [v for v in versions if v.get("name") == params["model"]]
            if not named:
                raise ExperimentError(f"no stored version of model {params['model']!r}")
            return str(named[-1]["version"])  # the newest
        return None

    def create(self, experiment: Experiment, params: dict[str, dict[str, Any]] | None,
               kind: str = "serving") -> None:
        """Validate the variants' parameters, store the experiment and start bucketing."""
        if kind == "serving":
            for values in (params or {}).values():
                if not isinstance(values, dict):
                    raise ExperimentError("params maps each variant to an object")
                self.version_of(values)
        self.registry.create(experiment, params=params, kind=kind)
        self.refresh()

    def stop_experiment(self, name: str) -> None:
        self.registry.stop(name)
        self.refresh()

    def start(self) -> None:
        """Start the background thread that writes exposures and reloads experiments."""
        self._upkeep.start()

    def stop(self) -> None:
        """Stop the background thread and write what is still buffered."""
        self._upkeep.stop()
        self.flush()

    def _flush_and_refresh(self) -> None:
        self.flush()
        self._since_refresh += self.flush_s
        if self._since_refresh >= self.refresh_s:
            self._since_refresh = 0.0
            self.refresh()

    def flush(self) -> int:
        """Write buffered exposures now; returns how many (experiment, user) pairs."""
        return self.registry.flush()

    # -- per request ----------------------------------------------------------------------------
    def resolve(self, user_id: str) -> Assignment | None:
        """Bucket ``user_id`` in every running serving experiment and log the exposures;
        None when no experiment runs (the common, free case)."""
        active = self._active
        if not active:
            return None
        out = Assignment()
        cache = self._cache
        for experiment, params in active:
            key = (experiment.name, user_id)
            variant = cache.get(key)
            if variant is None:
                if len(cache) >= self.cache_size:
                    cache.clear()
                variant = cache[key] = experiment.assign_one(user_id)
            out.variants[experiment.name] = variant
            values = params.get(variant, {})
            for name, kind in REQUEST_PARAMS.items():
                if name in values:
                    out.overrides[name] = kind(values[name])
            version = self._versions.get((experiment.name, variant))
            if version is not None:
                out.version = version
            self.registry._log(experiment.name, user_id, variant, None)
        return out
