"""Lookalike audiences: the users nearest to a seed audience in profile space.

Numeric profile columns are imputed (median) and standardised, so no single feature's scale
dominates; each non-seed user is scored by its mean cosine similarity to its ``k`` nearest seed
users (scikit-learn's NearestNeighbors), and the most similar ones form the audience.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from limelight.errors import LimelightError


class LookalikeError(LimelightError):
    """The seed or the profiles do not allow a lookalike search."""


def profile_matrix(profiles: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Numeric, imputed and standardised profile features (index user_id)."""
    numeric = profiles.select_dtypes(include=["number", "bool"]).astype(float)
    if columns is not None:
        missing = [c for c in columns if c not in numeric.columns]
        if missing:
            raise LookalikeError(f"profiles lack numeric columns {missing}")
        numeric = numeric[list(columns)]
    numeric = numeric.loc[:, numeric.notna().any()]
    numeric = numeric.fillna(numeric.median())
    std = numeric.std(ddof=0).replace(0.0, 1.0)
    numeric = (numeric - numeric.mean()) / std
    return numeric.loc[:, numeric.std(ddof=0) > 0]


def lookalike_scores(profiles: pd.DataFrame, seed_ids: Iterable[str], *, k: int = 5,
                     columns: Sequence[str] | None = None) -> pd.Series:
    """Similarity of every non-seed user to the seed (higher = more alike), sorted.

    Parameters
    ----------
    profiles
        Profile features indexed by user_id.
    seed_ids
        The users to look like (e.g. last month's best buyers).
    k
        Seed neighbours averaged per candidate.
    """
    from sklearn.neighbors import NearestNeighbors

    x = profile_matrix(profiles, columns)
    if x.shape[1] == 0:
        raise LookalikeError("profiles have no usable numeric features")
    index = x.index.astype(str)
    seed = set(map(str, seed_ids))
    is_seed = index.isin(list(seed))
    if is_seed.sum() == 0:
        raise LookalikeError("no seed user has a profile")
    k = int(min(k, is_seed.sum()))
    nn = NearestNeighbors(n_neighbors=k, metric="cosine").fit(x.to_numpy()[is_seed])
    dist, _ = nn.kneighbors(x.to_numpy()[~is_seed])
    return pd.Series(1.0 - dist.mean(axis=1), index=index[~is_seed],
                     name="similarity").sort_values(ascending=False)


def lookalike_audience(profiles: pd.DataFrame, seed_ids: Iterable[str], size: int, *,
                       k: int = 5, columns: Sequence[str] | None = None,
                       name: str = "lookalike"):
    """The ``size`` users most like the seed, as an Audience (seed users excluded)."""
    from limelight.marketing.audiences import Audience

    seed = list(seed_ids)
    scores = lookalike_scores(profiles, seed, k=k, columns=columns).head(size)
    return Audience.from_users(scores.index, name=name, source={
        "kind": "lookalike", "seed_size": len(seed), "k": k,
        "min_similarity": float(scores.min()) if len(scores) else None})
