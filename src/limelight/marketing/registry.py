"""Stored experiments, request-time bucketing for the serving path, and exposure analysis.

A serving experiment compares recommendation strategies on live traffic: each variant carries
the parameters the serving pipeline should use (``{"model": "ease"}``, ``{"diversity": 0.3}``).
At request time :meth:`ExperimentRegistry.params_for` buckets the user (a hash, no lookup),
logs the exposure (buffered) and returns the variant's parameters; :func:`analyze_exposures`
later joins first exposures with the events that followed them (clicks, purchases, revenue
within a window) and runs :func:`limelight.marketing.experiments.analyze`.

Example
-------
>>> reg = ExperimentRegistry(store)  # doctest: +SKIP
>>> reg.create(Experiment("ranker", {"als": 1, "ease": 1}),
...            params={"als": {"model": "als"}, "ease": {"model": "ease"}})  # doctest: +SKIP
>>> reg.params_for("u42")  # doctest: +SKIP
{'ranker': ('ease', {'model': 'ease'})}
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from limelight.errors import LimelightError
from limelight.marketing.experiments import Experiment, ExperimentReport, ExposureLog, analyze

_DDL = ("CREATE TABLE IF NOT EXISTS marketing_experiments (name VARCHAR PRIMARY KEY, "
        "spec VARCHAR, params VARCHAR, kind VARCHAR, status VARCHAR, created_at TIMESTAMPTZ, "
        "stopped_at TIMESTAMPTZ)")


class ExperimentError(LimelightError):
    """An experiment is unknown, duplicated or malformed."""


class ExperimentRegistry:
    """Experiments stored in ``marketing_experiments``; running ones bucket users on request.

    Parameters
    ----------
    store
        The event store.
    flush_every
        Exposures buffered before they are written (also written by :meth:`flush`).
    """

    def __init__(self, store: Any, flush_every: int = 500) -> None:
        self.store = store
        store.execute(_DDL)
        self.exposures = ExposureLog(store)
        self._writer = ExposureLog(store)  # writes a buffer taken from ``exposures``
        self._flush_lock = threading.Lock()
        self.flush_every = flush_every
        self._lock = threading.Lock()
        self._pending = 0
        self._running: list[tuple[Experiment, dict[str, dict[str, Any]]]] | None = None

    def create(self, experiment: Experiment, *, params: dict[str, dict[str, Any]] | None = None,
               kind: str = "serving") -> None:
        """Store and start ``experiment``; ``params`` maps variant -> serving parameters."""
        params = params or {}
        unknown = set(params) - set(experiment.variants)
        if unknown:
            raise ExperimentError(f"params for unknown variants {sorted(unknown)}")
        row = self.store.execute("SELECT 1 FROM marketing_experiments WHERE name = ?",
                                 [experiment.name]).fetchone()
        if row is not None:
            raise ExperimentError(f"an experiment named {experiment.name!r} exists")
        self.store.execute("INSERT INTO marketing_experiments VALUES (?, ?, ?, ?, 'running', ?, "
                           "NULL)", [experiment.name, json.dumps(experiment.to_dict()),
                                     json.dumps(params), kind, datetime.now(UTC)])
        self._running = None

    def get(self, name: str) -> tuple[Experiment, dict[str, dict[str, Any]], str]:
        """(experiment, params, status)."""
        row = self.store.execute("SELECT spec, params, status FROM marketing_experiments "
                                 "WHERE name = ?", [name]).fetchone()
        if row is None:
            raise ExperimentError(f"no experiment {name!r}")
        return Experiment.from_dict(json.loads(row[0])), json.loads(row[1]), str(row[2])

    def list(self) -> list[dict[str, Any]]:
        frame = self.store.sql("SELECT name, kind, status, created_at, stopped_at FROM "
                               "marketing_experiments ORDER BY created_at")
        return [{k: (None if pd.isna(v) else str(v) if k.endswith("_at") else v)
                 for k, v in row.items()} for row in frame.to_dict(orient="records")]

    def stop(self, name: str) -> None:
        self.get(name)
        self.store.execute("UPDATE marketing_experiments SET status = 'stopped', stopped_at = ? "
                           "WHERE name = ?", [datetime.now(UTC), name])
        self._running = None

    def running(self, kind: str = "serving") -> list[tuple[Experiment, dict[str, Any]]]:
        """Running experiments of ``kind`` (cached until one is created or stopped here)."""
        if self._running is None:
            frame = self.store.sql("SELECT spec, params FROM marketing_experiments WHERE "
                                   "status = 'running' AND kind = ?", [kind])
            self._running = [(Experiment.from_dict(json.loads(s)), json.loads(p))
                             for s, p in zip(frame["spec"], frame["params"], strict=True)]
        return self._running

    def assign(self, name: str, user_id: str, *, log: bool = True,
               context: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """(variant, params) of ``user_id`` in experiment ``name``; logs the exposure."""
        experiment, params, status = self.get(name)
        variant = experiment.assign_one(user_id)
        if log and status == "running":
            self._log(name, user_id, variant, context)
        return variant, params.get(variant, {})

    def params_for(self, user_id: str, *, log: bool = True) -> dict[str, tuple[str, dict]]:
        """Every running serving experiment's (variant, params) for ``user_id`` -- the call
        the serving path makes per request."""
        out = {}
        for experiment, params in self.running():
            variant = experiment.assign_one(user_id)
            if log:
                self._log(experiment.name, user_id, variant, None)
            out[experiment.name] = (variant, params.get(variant, {}))
        return out

    def _log(self, name: str, user_id: str, variant: str, context: Any) -> None:
        with self._lock:
            self.exposures.log(name, user_id, variant, context)
            self._pending += 1
            if self._pending >= self.flush_every:
                self.exposures.flush()
                self._pending = 0

    def flush(self) -> int:
        """Write buffered exposures; requests keep logging into a fresh buffer meanwhile."""
        with self._flush_lock:
            with self._lock:
                self._pending = 0
                taken, self.exposures._buffer = self.exposures._buffer, {}
            self._writer._buffer = taken
            try:
                return self._writer.flush()
            except BaseException:
                with self._lock:  # keep them for the next flush (first exposure wins)
                    for key, entry in taken.items():
                        current = self.exposures._buffer.get(key)
                        if current is None:
                            self.exposures._buffer[key] = entry
                        else:
                            current[0], current[1] = entry[0], entry[1]
                            current[2] += entry[2]
                self._writer._buffer = {}
                raise


def analyze_exposures(store: Any, name: str, *, window_days: float = 7.0,
                      alpha: float = 0.05) -> ExperimentReport:
    """Compare variants on what exposed users did within ``window_days`` of first exposure:
    clicked (click or email_click), converted (purchase) and revenue per user."""
    registry = ExperimentRegistry(store)
    experiment, _, _ = registry.get(name)
    registry.flush()
    window_s = float(window_days) * 86400.0
    outcomes = store.sql(f"""
        WITH exposed AS (SELECT user_id, variant, first_exposed FROM marketing_exposures
                         WHERE experiment = ?)
        SELECT x.user_id, x.variant,
               coalesce(bool_or(e.type IN ('click', 'email_click')), false) AS clicked,
               coalesce(bool_or(e.type = 'purchase'), false) AS converted,
               coalesce(sum(CASE WHEN e.type = 'purchase'
                            THEN coalesce(e.value, 0) * coalesce(e.quantity, 1) END), 0)
                 AS revenue
        FROM exposed x LEFT JOIN events e ON e.user_id = x.user_id
             AND e.timestamp >= x.first_exposed
             AND date_diff('second', x.first_exposed, e.timestamp) <= {window_s}
        GROUP BY x.user_id, x.variant ORDER BY x.user_id""", [name])
    if outcomes.empty:
        raise ExperimentError(f"experiment {name!r} has no exposures yet")
    return analyze(experiment, outcomes, alpha=alpha)
