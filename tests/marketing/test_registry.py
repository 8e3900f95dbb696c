"""Serving experiments: request-time bucketing, exposure logging, analysis from events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from limelight.marketing.experiments import Experiment
from limelight.marketing.registry import ExperimentError, ExperimentRegistry, analyze_exposures
from limelight.store import open_store


def test_bucketing_exposures_and_analysis() -> None:
    store = open_store("memory://")
    reg = ExperimentRegistry(store, flush_every=50)
    reg.create(Experiment("ranker", {"als": 1, "ease": 1}),
               params={"als": {"model": "als"}, "ease": {"model": "ease", "diversity": 0.2}})
    users = [f"u{i}" for i in range(1200)]
    seen = {}
    for u in users:
        variant, params = reg.params_for(u)["ranker"]
        assert params["model"] == variant
        seen[u] = variant
    for u in users[:100]:  # repeated requests: same bucket, counted, not re-logged
        assert reg.params_for(u)["ranker"][0] == seen[u]
    reg.flush()
    exposures = reg.exposures.exposures("ranker")
    assert len(exposures) == len(users)
    assert exposures.set_index("user_id").loc["u0", "exposures"] == 2
    # Outcomes after exposure: EASE users buy more often.
    rng = np.random.default_rng(0)
    later = datetime.now(UTC) + timedelta(hours=1)
    rows = []
    for u in users:
        if rng.random() < (0.30 if seen[u] == "ease" else 0.15):
            rows.append({"user_id": u, "item_id": "i1", "type": "purchase", "value": 10.0,
                         "timestamp": later})
    store.write("events", pd.DataFrame(rows))
    report = analyze_exposures(store, "ranker")
    conv = report.comparisons["ease"]["conversion"]
    assert conv["significant"] and conv["estimate"] > 0.08
    assert not report.srm["mismatch"]
    assert report.variants.loc["ease", "revenue_per_user"] > report.variants.loc[
        "als", "revenue_per_user"]
    reg.stop("ranker")
    assert reg.params_for("u1") == {}
    assert reg.list()[0]["status"] == "stopped"
    with pytest.raises(ExperimentError):
        reg.create(Experiment("ranker", {"a": 1}))
    with pytest.raises(ExperimentError):
        reg.get("nope")
    store.close()
