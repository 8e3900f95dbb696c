"""Replaying events one by one through ProfileUpdater gives the batch build's profile."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from limelight.profile.config import ProfileConfig
from limelight.profile.features import ProfileBuilder
from limelight.profile.realtime import ProfileUpdater
from limelight.profile.segments import SegmentModel

from .fixtures import AS_OF, tiny_frames

SKIP = {"first_seen", "last_seen"}  # compared separately (Timestamps)


def assert_same_profile(batch: pd.Series, live: dict[str, Any], user: str) -> int:
    """Every key the updater produces equals the batch value (floats to 1e-9 relative)."""
    checked = 0
    for key, value in live.items():
        if key in SKIP or key.startswith("segment_") or key not in batch.index:
            continue
        expected = batch[key]
        if isinstance(value, list):
            assert list(expected) == value, (user, key)
        elif value is None or (isinstance(value, float) and math.isnan(value)):
            assert expected is None or pd.isna(expected), (user, key, expected)
        elif isinstance(value, str):
            assert expected == value, (user, key)
        else:
            assert not pd.isna(expected), (user, key, value)
            assert float(value) == pytest.approx(float(expected), rel=1e-9, abs=1e-9), (
                user, key)
        checked += 1
    assert batch["first_seen"] == live["first_seen"]
    assert batch["last_seen"] == live["last_seen"]
    return checked


def test_replay_matches_batch_on_tiny_shop() -> None:
    frames = tiny_frames()
    builder = ProfileBuilder(ProfileConfig(sequence_length=3)).fit(frames, as_of=AS_OF)
    updater = ProfileUpdater.from_builder(builder, with_static=False)
    assert updater.learn_many(frames["events"]) == len(frames["events"])
    for user in ("u1", "u2"):
        live = updater.profile(user, as_of=AS_OF)
        checked = assert_same_profile(builder.profiles_.loc[user], live, user)
        assert checked > 80  # RFM, activity, histograms, funnel, interests, sequence
    assert updater.profile("u1", as_of=AS_OF)["monetary"] == pytest.approx(30.0)
    assert updater.late_events_ == 0


def test_unknown_user_raises() -> None:
    from limelight.errors import UnknownIdError

    builder = ProfileBuilder().fit(tiny_frames(), as_of=AS_OF)
    with pytest.raises(UnknownIdError):
        ProfileUpdater.from_builder(builder).profile("nobody")


@pytest.fixture(scope="module")
def world() -> Any:
    from limelight.sim import generate_world

    return generate_world("tiny", seed=3)


@pytest.fixture(scope="module")
def world_builder(world: Any) -> ProfileBuilder:
    return ProfileBuilder().fit(world)


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_replay_matches_batch_on_sample_world(world: Any, world_builder: ProfileBuilder,
                                              method: str) -> None:
    profiles = world_builder.profiles_
    model = SegmentModel(method=method, k=4, random_state=0).fit(profiles)
    if method == "gmm":  # the per-event posterior must match for every covariance kind
        full = SegmentModel(method="gmm", k=3, covariance_type="full").fit(profiles)
        some = profiles[profiles["n_events"] > 0].iloc[:40]
        expected = full.assign(some)
        got = [full.assign_one(row.to_dict()) for _, row in some.iterrows()]
        assert [g[0] for g in got] == expected["segment_id"].tolist()
    updater = ProfileUpdater.from_builder(world_builder, model)
    updater.learn_many(world.events)
    as_of = world_builder.as_of_us_
    users = updater.users()
    assert len(users) == int((profiles["n_events"] > 0).sum())
    live = updater.profiles(users, as_of=as_of)
    for user in users[:: max(1, len(users) // 60)]:
        assert_same_profile(profiles.loc[user], updater.profile(user, as_of=as_of), user)
    # Read at the build's as_of, the real-time segment is the batch assignment; learn_one's own
    # assignment used the profile as of the user's latest event.
    for user in users[:: max(1, len(users) // 20)]:
        last = updater.profile(user)["last_seen"]
        assert updater.segment(user) == updater.assign(user, as_of=last)
    lazy = ProfileUpdater.from_builder(world_builder, model, assign_on="read")
    lazy.learn_many(world.events)
    assert all(lazy.segment(u) == updater.segment(u) for u in users)
    batch_segments = model.assign(profiles.loc[users])
    assert (live["segment_id"].to_numpy() == batch_segments["segment_id"].to_numpy()).all()
    if method == "gmm":
        np.testing.assert_allclose(live["segment_probability"].to_numpy(),
                                   batch_segments["segment_probability"].to_numpy(), rtol=1e-6)


def test_events_after_the_build_move_the_profile(world_builder: ProfileBuilder) -> None:
    updater = ProfileUpdater.from_builder(world_builder)
    t = pd.Timestamp(world_builder.as_of_us_, unit="us", tz="UTC")
    updater.learn_one({"user_id": "new-user", "item_id": None, "type": "view", "timestamp": t})
    updater.learn_one({"user_id": "new-user", "item_id": "x", "type": "purchase", "value": 9.5,
                       "timestamp": t + pd.Timedelta(minutes=5), "session_id": "s"})
    p = updater.profile("new-user")
    assert (p["n_events"], p["frequency"], p["monetary"]) == (2, 1, 9.5)
    assert p["rfm_segment"] != "No purchase yet"
    assert p["recency_days"] == 0.0


def test_late_events_are_counted_and_kept() -> None:
    builder = ProfileBuilder().fit(tiny_frames(), as_of=AS_OF)
    updater = ProfileUpdater.from_builder(builder)
    t = pd.Timestamp("2024-02-01", tz="UTC")
    updater.learn_one({"user_id": "z", "type": "view", "item_id": "i1", "timestamp": t})
    updater.learn_one({"user_id": "z", "type": "purchase", "item_id": "i1", "value": 10.0,
                       "timestamp": t - pd.Timedelta(days=1)})
    assert updater.late_events_ == 1
    p = updater.profile("z")
    assert p["n_events"] == 2 and p["monetary"] == 10.0


def test_long_histories_rebase_without_overflow() -> None:
    # 266 half-lives between the first and last event force the anchor to move.
    frames = tiny_frames()
    cfg = ProfileConfig(half_life_days=0.015)
    builder = ProfileBuilder(cfg).fit(frames, as_of=AS_OF)
    updater = ProfileUpdater.from_builder(builder, with_static=False)
    updater.learn_many(frames["events"])
    live = updater.profile("u1", as_of=AS_OF)
    assert_same_profile(builder.profiles_.loc["u1"], live, "u1")
