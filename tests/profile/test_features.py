"""Every feature family on the tiny shop of ``fixtures.py``, against values computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from limelight.profile.config import ProfileConfig
from limelight.profile.features import ProfileBuilder, build_profiles
from limelight.profile.social import pagerank, same_segment_share

from .fixtures import AS_OF, tiny_frames

DAY_H = 24.0
HALF_LIFE_H = 30 * DAY_H


@pytest.fixture(scope="module")
def builder() -> ProfileBuilder:
    return ProfileBuilder(ProfileConfig(sequence_length=3)).fit(tiny_frames(), as_of=AS_OF)


@pytest.fixture(scope="module")
def profiles(builder: ProfileBuilder) -> pd.DataFrame:
    return builder.profiles_


def test_every_user_gets_a_row(profiles: pd.DataFrame) -> None:
    assert list(profiles.index) == ["u1", "u2", "u3"]
    assert profiles.loc["u3", "n_events"] == 0 and profiles.loc["u3", "frequency"] == 0


def test_rfm_values(profiles: pd.DataFrame) -> None:
    u1 = profiles.loc["u1"]
    # Orders: invoice s1 (two lines) and the session-less purchase at 20:30 -> 2.
    assert u1["frequency"] == 2
    # Lines 20 + 15 + 5 = 40 gross; the return of 10 brings monetary value down to 30.
    assert u1["gross_revenue"] == pytest.approx(40.0)
    assert u1["returned_value"] == pytest.approx(10.0)
    assert u1["monetary"] == pytest.approx(30.0)
    assert u1["return_rate"] == pytest.approx(0.25)
    # Last purchase 2024-01-03 20:30, as of 2024-01-11 00:00: 7 days 3.5 hours.
    assert u1["recency_days"] == pytest.approx(7 + 3.5 / 24)
    assert u1["avg_basket_value"] == pytest.approx(20.0)
    assert u1["avg_basket_size"] == pytest.approx(2.0)  # (2 + 1 + 1) units / 2 orders
    # i3 paid 15 against a list price of 20, i2 bought from campaign c1; i1 at list price.
    assert u1["discount_share"] == pytest.approx(2 / 3)
    u2 = profiles.loc["u2"]
    assert (u2["frequency"], u2["monetary"]) == (1, pytest.approx(20.0))
    assert u2["recency_days"] == pytest.approx(11 / 24)
    assert np.isnan(profiles.loc["u3", "recency_days"])


def test_rfm_quintile_scores_and_rule_segments(builder: ProfileBuilder,
                                               profiles: pd.DataFrame) -> None:
    # Two buyers: boundaries interpolate linearly between them (numpy's default quantiles).
    b = builder.rfm_boundaries_
    assert b["frequency"] == pytest.approx([1.2, 1.4, 1.6, 1.8])
    assert b["monetary"] == pytest.approx([22.0, 24.0, 26.0, 28.0])
    assert (profiles.loc["u1", ["r_score", "f_score", "m_score"]].tolist() == [1, 5, 5])
    assert (profiles.loc["u2", ["r_score", "f_score", "m_score"]].tolist() == [5, 1, 1])
    assert profiles.loc["u1", "rfm_score"] == "155"
    assert profiles.loc["u1", "rfm_segment"] == "Can't lose them"  # R1 F5
    assert profiles.loc["u2", "rfm_segment"] == "New"  # R5 F1
    assert profiles.loc["u3", "rfm_segment"] == "No purchase yet"
    assert pd.isna(profiles.loc["u3", "r_score"])


def test_rfm_rule_map() -> None:
    from limelight.profile.rfm import rfm_segment_of

    assert rfm_segment_of(5, 5) == "Champions"
    assert rfm_segment_of(1, 1) == "Hibernating"
    assert rfm_segment_of(2, 3) == "At risk"
    assert rfm_segment_of(4, 4) == "Loyal"
    assert rfm_segment_of(None, None) == "No purchase yet"


def test_activity(profiles: pd.DataFrame) -> None:
    u1 = profiles.loc["u1"]
    counts = {t: u1[f"n_{t}"] for t in ("view", "click", "add_to_cart", "purchase", "return")}
    assert counts == {"view": 2, "click": 1, "add_to_cart": 1, "purchase": 3, "return": 1}
    assert u1["n_events"] == 8
    # Sessions: s1; the session-less view at 20:00 (new id); 20:30 is within 30 minutes; the
    # return two days later starts a third.
    assert u1["n_sessions"] == 3
    assert u1["n_active_days"] == 3  # Jan 1, 3 and 5
    assert u1["n_items"] == 3
    assert u1["tenure_days"] == pytest.approx(9 + 14 / 24)
    assert u1["days_since_last_event"] == pytest.approx(5 + 15 / 24)
    assert u1["events_per_session"] == pytest.approx(8 / 3)
    gaps_h = np.array([5 / 60, 1 / 60, 4 / 60, 0.0, 57 + 50 / 60, 0.5, 36.5])
    assert u1["mean_gap_hours"] == pytest.approx(gaps_h.mean())
    assert u1["std_gap_hours"] == pytest.approx(gaps_h.std())
    # Funnel: 2 views -> 1 click -> 1 cart -> 3 purchase lines.
    assert u1["view_to_click"] == pytest.approx(0.5)
    assert u1["click_to_cart"] == pytest.approx(1.0)
    assert u1["cart_to_purchase"] == pytest.approx(3.0)
    assert u1["view_to_purchase"] == pytest.approx(1.5)
    assert np.isnan(u1["impression_to_click"])


def test_time_histograms(profiles: pd.DataFrame) -> None:
    u1 = profiles.loc["u1"]
    # Five events at 10:xx, two at 20:xx, one at 09:00 (UTC).
    assert u1["hour_10"] == pytest.approx(5 / 8)
    assert u1["hour_20"] == pytest.approx(2 / 8)
    assert u1["hour_09"] == pytest.approx(1 / 8)
    # 2024-01-01 was a Monday (0), the 3rd a Wednesday (2), the 5th a Friday (4).
    assert (u1["dow_0"], u1["dow_2"], u1["dow_4"]) == (5 / 8, 2 / 8, 1 / 8)
    assert u1["share_morning"] == pytest.approx(6 / 8)
    assert u1["share_evening"] == pytest.approx(2 / 8)
    assert u1["share_weekend"] == 0.0
    angle = 2 * np.pi * (np.array([10, 10, 10, 10, 10, 20, 20, 9]) + 0.5) / 24
    assert u1["hour_cos"] == pytest.approx(np.cos(angle).mean())
    assert u1["hour_sin"] == pytest.approx(np.sin(angle).mean())


def _decay(hours_before_as_of: float) -> float:
    return 2.0 ** (-hours_before_as_of / HALF_LIFE_H)


def test_interests_decayed(profiles: pd.DataFrame) -> None:
    # u1: hours before 2024-01-11 00:00 of each event and its weight (view .5, click 1,
    # cart 3, purchase 5, return 0).
    age = {"e1": 230.0, "e2": 230 - 5 / 60, "e3": 230 - 6 / 60, "e4": 230 - 10 / 60,
           "e6": 172.0, "e7": 171.5}
    scifi = (0.5 * _decay(age["e1"]) + 1 * _decay(age["e2"]) + 3 * _decay(age["e3"])
             + 5 * _decay(age["e4"]) + 5 * _decay(age["e4"]))  # i3 bought with i1
    thriller = scifi - 5 * _decay(age["e4"])
    comedy = 0.5 * _decay(age["e6"]) + 5 * _decay(age["e7"])
    total = scifi + thriller + comedy
    u1 = profiles.loc["u1"]
    assert u1["interest_strength"] == pytest.approx(total)
    assert u1["interest:Sci-Fi"] == pytest.approx(scifi / total)
    assert u1["interest:Thriller"] == pytest.approx(thriller / total)
    assert u1["interest:Comedy"] == pytest.approx(comedy / total)
    assert u1["top_categories"] == ["Sci-Fi", "Thriller", "Comedy"]
    assert u1["top_tags"] == ["space", "funny"]
    # u2: a 4-star rating of a comedy (weight 1 x 4) 12 h ago, a Sci-Fi purchase 11 h ago.
    u2 = profiles.loc["u2"]
    c, s = 4 * _decay(12.0), 5 * _decay(11.0)
    assert u2["interest:Comedy"] == pytest.approx(c / (c + s))
    assert u2["top_categories"] == ["Sci-Fi", "Comedy"]
    assert profiles.loc["u3", "top_categories"] == []


def test_half_life_is_configurable() -> None:
    short = build_profiles(tiny_frames(), ProfileConfig(half_life_days=1.0), as_of=AS_OF)
    c, s = 4 * 2 ** (-12 / 24), 5 * 2 ** (-11 / 24)
    assert short.loc["u2", "interest:Comedy"] == pytest.approx(c / (c + s))


def test_behaviour_sequence(profiles: pd.DataFrame) -> None:
    assert profiles.loc["u1", "last_items"] == ["i2", "i2", "i1"]
    assert profiles.loc["u1", "last_types"] == ["view", "purchase", "return"]
    assert profiles.loc["u2", "last_items"] == ["i2", "i3"]


def test_social(profiles: pd.DataFrame) -> None:
    got = profiles[["degree", "out_degree", "in_degree", "out_trust", "in_trust"]]
    assert got.loc["u1"].tolist() == [2, 2, 2, 1.0, 0.5]
    assert got.loc["u2"].tolist() == [1, 1, 1, 0.5, 1.0]
    assert got.loc["u3"].tolist() == [1, 1, 1, 0.0, 0.0]
    # Transitions u1 -> {u2, u3} half each, u2 -> u1, u3 -> u1. With r2 = r3 = x:
    # x = .05 + .425 r1 and r1 = .05 + 1.7 x, so x = .07125 / .2775 and r1 = .05 + 1.7 x.
    x = 0.07125 / 0.2775
    assert profiles.loc["u1", "pagerank"] == pytest.approx(3 * (0.05 + 1.7 * x))
    assert profiles.loc["u2", "pagerank"] == pytest.approx(3 * x)
    assert profiles["pagerank"].mean() == pytest.approx(1.0)
    # u2's only friend is u1, whose strongest interest is Sci-Fi.
    assert profiles.loc["u2", "friends_top_category"] == "Sci-Fi"
    a = profiles.loc["u1", ["interest:Sci-Fi", "interest:Comedy", "interest:Thriller"]]
    b = profiles.loc["u2", ["interest:Sci-Fi", "interest:Comedy", "interest:Thriller"]]
    a, b = a.to_numpy(float), b.to_numpy(float)
    assert profiles.loc["u2", "friends_interest_similarity"] == pytest.approx(
        a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_pagerank_dangling_node_sums_to_one() -> None:
    import scipy.sparse as sp

    adj = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=float))
    rank = pagerank(adj)
    assert rank.sum() == pytest.approx(1.0)
    assert rank[2] > rank[1] > rank[0]


def test_same_segment_share(profiles: pd.DataFrame) -> None:
    share = same_segment_share(tiny_frames()["edges"], profiles.index, np.array([0, 0, 1]))
    assert share.tolist() == [0.5, 1.0, 0.0]


def test_geo_and_demographics(profiles: pd.DataFrame) -> None:
    assert profiles.loc["u1", "region"] == "north-east"
    assert profiles.loc["u2", "region"] == "wales"  # from the events' geo: no region given
    assert profiles.loc["u1", "age_band"] == "25-34"
    assert profiles.loc["u2", "age_band"] == "45-54"
    assert profiles.loc["u1", "days_since_signup"] == pytest.approx(41.0)
    assert pd.isna(profiles.loc["u2", "geo_cluster"])  # no coordinates


def test_location_clusters_group_nearby_users() -> None:
    from limelight.profile.geo import location_clusters

    lat = np.array([51.50, 51.52, 48.85, 48.86, np.nan])
    lon = np.array([-0.12, -0.10, 2.35, 2.36, np.nan])
    labels = location_clusters(lat, lon, ProfileConfig(geo_clusters=2))
    assert labels[0] == labels[1] != labels[2] == labels[3]
    assert labels[4] == -1


def test_embeddings_joined() -> None:
    emb = pd.DataFrame([[0.1, 0.2], [0.3, 0.4]], index=["u1", "u2"])
    p = build_profiles(tiny_frames(), as_of=AS_OF, embeddings=emb)
    assert p.loc["u2", ["emb_0", "emb_1"]].tolist() == [0.3, 0.4]
    assert np.isnan(p.loc["u3", "emb_0"])


def test_as_of_excludes_later_events() -> None:
    p = build_profiles(tiny_frames(), as_of="2024-01-02")
    assert p.loc["u1", "n_events"] == 5
    assert p.loc["u2", "n_events"] == 0


def test_unit_price_values_detected() -> None:
    frames = tiny_frames()
    ev = frames["events"]
    ev.loc[ev["event_id"] == "e03", "value"] = 10.0  # i1 x2 at its unit price of 10
    p = build_profiles(frames, as_of=AS_OF)
    assert p.loc["u1", "gross_revenue"] == pytest.approx(2 * 10 + 15 + 5)
    forced = build_profiles(frames, ProfileConfig(value_is_unit_price=False), as_of=AS_OF)
    assert forced.loc["u1", "gross_revenue"] == pytest.approx(10 + 15 + 5)


def test_missing_columns_raise_schema_error() -> None:
    from limelight.errors import SchemaError

    with pytest.raises(SchemaError, match="timestamp"):
        build_profiles({"events": pd.DataFrame({"user_id": ["a"], "type": ["view"]})})
