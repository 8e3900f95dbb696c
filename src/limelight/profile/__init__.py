"""User profiles and segments.

- :func:`build_profiles` / :class:`ProfileBuilder`: one row of features per user (RFM,
  activity, time of day, funnel, decayed interests, behaviour sequence, social graph, geo,
  demographics, embeddings), computed in DuckDB SQL and scipy;
- :class:`SegmentModel`: K-means / Gaussian-mixture segments with automatic k, stable ids and
  readable descriptions; rule-based RFM segments come with the profiles (``rfm_segment``);
- :class:`ProfileUpdater`: real-time ``learn_one(event)`` updates in constant time;
- :class:`ProfileRepository`: versioned storage of profiles, segments and memberships.

Imports are lazy so ``import limelight.profile`` stays cheap.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "ProfileConfig": "limelight.profile.config",
    "ProfileBuilder": "limelight.profile.features",
    "build_profiles": "limelight.profile.features",
    "SegmentModel": "limelight.profile.segments",
    "ProfilePreprocessor": "limelight.profile.preprocess",
    "ProfileUpdater": "limelight.profile.realtime",
    "ProfileRepository": "limelight.profile.repository",
    "describe_segments": "limelight.profile.describe",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'limelight.profile' has no attribute {name!r}")
