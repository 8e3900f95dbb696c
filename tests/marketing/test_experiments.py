from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from limelight.marketing import stats
from limelight.marketing.experiments import HOLDOUT, Experiment, analyze

USERS = [f"u{i}" for i in range(20_000)]


def test_assignment_is_deterministic_and_balanced() -> None:
    exp = Experiment("subject", {"A": 1, "B": 1, "C": 2}, holdout=0.1)
    first = exp.assign(USERS)
    assert (first == exp.assign(USERS)).all()
    assert exp.assign_one("u7") == first[7]
    counts = pd.Series(first).value_counts()
    assert counts[HOLDOUT] / len(USERS) == pytest.approx(0.1, abs=0.01)
    rest = counts.drop(HOLDOUT)[["A", "B", "C"]].to_numpy()
    assert not stats.srm_test(rest, [1, 1, 2])["mismatch"]


def test_salt_rerandomises_and_holdout_is_stable_under_new_weights() -> None:
    a = Experiment("e", {"A": 1, "B": 1}).assign(USERS)
    b = Experiment("e", {"A": 1, "B": 1}, salt="e-v2").assign(USERS)
    assert 0.4 < np.mean(a == b) < 0.6
    h1 = Experiment("e", {"A": 1, "B": 1}, holdout=0.2).assign(USERS) == HOLDOUT
    h2 = Experiment("e", {"A": 3, "B": 1}, holdout=0.2).assign(USERS) == HOLDOUT
    assert (h1 == h2).all()


def test_invalid_experiments() -> None:
    with pytest.raises(ValueError):
        Experiment("x", {})
    with pytest.raises(ValueError):
        Experiment("x", {"A": 1}, control="B")
    with pytest.raises(ValueError):
        Experiment("x", {"holdout": 1})


def test_analyze_detects_effect_and_reports_srm() -> None:
    rng = np.random.default_rng(0)
    exp = Experiment("offer", {"control": 1, "discount": 1})
    variant = exp.assign(USERS)
    p = np.where(variant == "discount", 0.12, 0.08)
    converted = rng.random(len(USERS)) < p
    frame = pd.DataFrame({"user_id": USERS, "variant": variant, "converted": converted,
                          "clicked": converted | (rng.random(len(USERS)) < 0.2),
                          "revenue": converted * 20.0})
    report = analyze(exp, frame)
    conv = report.comparisons["discount"]["conversion"]
    assert conv["significant"] and conv["ci_low"] < 0.04 < conv["ci_high"]
    assert report.comparisons["discount"]["prob_beat_control_conversion"] > 0.99
    assert report.srm["checked"] and not report.srm["mismatch"]
    assert report.to_dict()["variants"][0]["users"] > 0
    # Dropping half of one arm's users is a sample-ratio mismatch.
    broken = frame[~((frame["variant"] == "discount") & (rng.random(len(frame)) < 0.3))]
    assert analyze(exp, broken).srm["mismatch"]
