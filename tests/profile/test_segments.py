"""Preprocessing, automatic k, stable ids, descriptions, on profiles with known groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from limelight.profile.describe import describe_segments
from limelight.profile.preprocess import ProfilePreprocessor
from limelight.profile.segments import SegmentModel, match_segments


def group_profiles(n_per_group: int = 150, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three groups: big evening Sci-Fi spenders, frequent morning Comedy buyers, lapsed
    afternoon browsers who buy little."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    specs = [
        dict(monetary=2000, frequency=3, recency=20, morning=0.1, afternoon=0.2, evening=0.7,
             scifi=0.8, comedy=0.1, region="north-east"),
        dict(monetary=150, frequency=12, recency=3, morning=0.7, afternoon=0.2, evening=0.1,
             scifi=0.1, comedy=0.8, region="south"),
        dict(monetary=20, frequency=1, recency=200, morning=0.2, afternoon=0.7, evening=0.1,
             scifi=0.4, comedy=0.4, region="west"),
    ]
    for g, s in enumerate(specs):
        for _ in range(n_per_group):
            m, e, a = (np.array([s["morning"], s["evening"], s["afternoon"]])
                       + rng.normal(0, 0.04, 3)).clip(0, 1)
            rows.append({
                "monetary": s["monetary"] * rng.lognormal(0, 0.3),
                "frequency": max(1, round(s["frequency"] * rng.lognormal(0, 0.2))),
                "recency_days": s["recency"] * rng.lognormal(0, 0.3),
                "avg_basket_value": s["monetary"] / s["frequency"] * rng.lognormal(0, 0.2),
                "discount_share": rng.uniform(0, 0.2), "return_rate": rng.uniform(0, 0.05),
                "n_events": 50 * rng.lognormal(0, 0.3), "n_sessions": 10.0,
                "n_active_days": 5.0, "events_per_session": 5.0, "mean_gap_hours": 24.0,
                "view_to_click": 0.3, "view_to_purchase": 0.1,
                "hour_cos": 0.0, "hour_sin": 0.0, "share_night": 0.0, "share_weekend": 0.2,
                "share_morning": m, "share_afternoon": a, "share_evening": e,
                "interest:Sci-Fi": s["scifi"] + rng.normal(0, 0.05),
                "interest:Comedy": s["comedy"] + rng.normal(0, 0.05),
                "region": s["region"] if rng.random() < 0.9 else "other",
                "rfm_segment": "Champions" if g == 0 else "Loyal",
            })
            truth.append(g)
    index = pd.Index([f"u{i:04d}" for i in range(len(rows))], name="user_id")
    frame = pd.DataFrame(rows, index=index)
    frame.loc[frame.index[::17], "recency_days"] = np.nan  # missing values get imputed
    return frame, np.asarray(truth)


@pytest.fixture(scope="module")
def groups() -> tuple[pd.DataFrame, np.ndarray]:
    return group_profiles()


def test_preprocessor_fast_path_equals_pipeline(groups: tuple[pd.DataFrame, np.ndarray],
                                                tmp_path) -> None:
    profiles, _ = groups
    pre = ProfilePreprocessor(numeric=["share_evening", "interest:Sci-Fi"],
                              log_numeric=["monetary", "recency_days"], categorical=["region"],
                              weights={"region": 0.5}, pca_components=3).fit(profiles)
    matrix = pre.transform(profiles)
    assert matrix.shape == (len(profiles), 3)
    for i in (0, 17, 200, 449):
        row = profiles.iloc[i].to_dict()
        np.testing.assert_allclose(pre.transform_one(row), matrix[i], atol=1e-10)
    unseen = {**profiles.iloc[0].to_dict(), "region": "atlantis", "monetary": None}
    assert np.isfinite(pre.transform_one(unseen)).all()
    path = pre.save(tmp_path / "pre.joblib")
    np.testing.assert_allclose(ProfilePreprocessor.load(path).transform(profiles), matrix)


def test_preprocessor_scales_and_imputes(groups: tuple[pd.DataFrame, np.ndarray]) -> None:
    profiles, _ = groups
    pre = ProfilePreprocessor(log_numeric=["recency_days"]).fit(profiles)
    x = pre.transform(profiles)[:, 0]
    assert x.mean() == pytest.approx(0.0, abs=1e-9) and x.std() == pytest.approx(1.0)
    median = np.log1p(profiles["recency_days"].median())
    filled = np.log1p(profiles["recency_days"].fillna(profiles["recency_days"].median()))
    mu, sd = filled.mean(), filled.std(ddof=0)
    assert x[0] == pytest.approx((median - mu) / sd)  # row 0 had no recency


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_automatic_k_recovers_groups(groups: tuple[pd.DataFrame, np.ndarray],
                                     method: str) -> None:
    profiles, truth = groups
    model = SegmentModel(method=method, k_range=(2, 5), groups=("rfm", "time", "interests"),
                         random_state=0).fit(profiles)
    assert model.k_ == 3
    assert set(model.selection_scores_) == {2, 3, 4, 5}
    assert adjusted_rand_score(truth, model.labels_.to_numpy()) > 0.95
    assigned = model.assign(profiles)
    assert (assigned["segment_id"] == model.labels_).all()
    table = model.table()
    assert table["size"].sum() == len(profiles)
    assert list(table["segment_id"]) == [0, 1, 2]


def test_segment_ids_stay_stable_across_rebuilds(groups: tuple[pd.DataFrame, np.ndarray]
                                                 ) -> None:
    profiles, _truth = groups
    first = SegmentModel(k=3, groups=("rfm", "time", "interests"), random_state=0).fit(profiles)
    # A later build: more users, other seed, rows in another order.
    extra, _ = group_profiles(60, seed=7)
    extra.index = [f"n{i}" for i in range(len(extra))]
    later = pd.concat([profiles, extra]).sample(frac=1.0, random_state=3)
    second = SegmentModel(k=3, groups=("rfm", "time", "interests"), random_state=11).fit(
        later, previous=first)
    same = second.labels_.reindex(profiles.index)
    assert (same == first.labels_).mean() > 0.98
    # Without the previous build, ids are by size and need not agree; with a new segment the
    # old ids are kept and the new one gets a fresh id.
    four = SegmentModel(k=4, groups=("rfm", "time", "interests"), random_state=0).fit(
        profiles, previous=first)
    assert set(four.labels_.unique()) >= {0, 1, 2} and 3 in set(four.labels_.unique())


def test_match_segments_hungarian() -> None:
    old = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    new = np.array([[0.2, 9.8], [9.9, 0.1], [0.1, 0.1], [50.0, 50.0]])
    assert match_segments(new, old, np.array([4, 7, 9])) == [9, 7, 4, 10]
    assert match_segments(new[:2], np.empty((0, 2)), np.array([], dtype=int)) == [0, 1]


def test_descriptions_name_what_sets_segments_apart(groups: tuple[pd.DataFrame, np.ndarray]
                                                    ) -> None:
    profiles, truth = groups
    text = describe_segments(profiles, truth)
    assert "high spend" in text[0] and "Sci-Fi" in text[0] and "evenings" in text[0]
    assert "north-east" in text[0]
    assert "Comedy" in text[1] and "mornings" in text[1] and "frequent buyers" in text[1]
    assert "lapsed" in text[2] and "low spend" in text[2] and "afternoons" in text[2]
    # A population without differences is "typical".
    flat = pd.DataFrame({"monetary": np.ones(10)})
    assert describe_segments(flat, np.array([0] * 5 + [1] * 5)) == {0: "typical", 1: "typical"}


def test_bad_configuration_is_named() -> None:
    from limelight.errors import ConfigError

    profiles, _ = group_profiles(10)
    with pytest.raises(ConfigError, match="method"):
        SegmentModel(method="dbscan").fit(profiles)
    with pytest.raises(ConfigError, match="feature groups"):
        SegmentModel(groups=("astrology",)).fit(profiles)
