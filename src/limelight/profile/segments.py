"""Behavioural segments: K-means or Gaussian mixtures over preprocessed profiles.

The number of segments is chosen automatically in a configurable range (silhouette for
K-means, BIC for a mixture). Segment ids are stable across rebuilds: the new centroids are
matched to the previous ones with the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`), the previous centroids being re-expressed in the
new feature space as the mean of their former members. Each segment gets a readable description
(:mod:`limelight.profile.describe`).

Example
-------
>>> model = SegmentModel(method="kmeans", k_range=(2, 8)).fit(profiles)     # doctest: +SKIP
>>> model.table()[["segment_id", "size", "description"]]                   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from limelight.errors import ConfigError, NotFittedError
from limelight.profile.describe import describe_segments
from limelight.profile.interests import INTEREST_PREFIX
from limelight.profile.preprocess import ProfilePreprocessor

#: group -> (log-scaled numeric, numeric, categorical) columns; ``interest:*`` and ``emb_*``
#: expand to every such column present.
FEATURE_GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "rfm": (("recency_days", "frequency", "monetary", "avg_basket_value"),
            ("discount_share", "return_rate"), ()),
    "activity": (("n_events", "n_sessions", "n_active_days", "events_per_session",
                  "mean_gap_hours"), ("view_to_click", "view_to_purchase"), ()),
    "time": ((), ("hour_cos", "hour_sin", "share_night", "share_morning", "share_afternoon",
                  "share_evening", "share_weekend"), ()),
    "interests": ((), (INTEREST_PREFIX + "*",), ()),
    "geo": ((), (), ("region",)),
    "demographics": ((), ("age",), ("gender",)),
    "social": (("degree", "pagerank"), (), ()),
    "embeddings": ((), ("emb_*",), ()),
}
DEFAULT_GROUPS = ("rfm", "activity", "time", "interests")
METHODS = ("kmeans", "gmm")


def feature_columns(profiles: pd.DataFrame, groups: Sequence[str]
                    ) -> tuple[list[str], list[str], list[str]]:
    """(log-numeric, numeric, categorical) columns of ``groups`` present in ``profiles``."""
    unknown = [g for g in groups if g not in FEATURE_GROUPS]
    if unknown:
        raise ConfigError(f"unknown feature groups {unknown}: use {sorted(FEATURE_GROUPS)}")
    out: tuple[list[str], list[str], list[str]] = ([], [], [])
    for g in groups:
        for kind, cols in enumerate(FEATURE_GROUPS[g]):
            for c in cols:
                if c.endswith("*"):
                    out[kind].extend(x for x in profiles if x.startswith(c[:-1]))
                elif c in profiles:
                    out[kind].append(c)
    return out


class SegmentModel:
    """Segments users from their profiles.

    Parameters
    ----------
    method
        ``"kmeans"`` or ``"gmm"`` (Gaussian mixture).
    k
        Fixed number of segments, or None to choose in ``k_range``.
    k_range
        Inclusive (low, high) range searched when ``k`` is None.
    groups
        Feature groups to cluster on (see ``FEATURE_GROUPS``).
    pca_components
        Optional PCA after scaling (int components or float variance share).
    balance_groups
        Weight each column by ``1/sqrt(columns in its group)`` so a group with many columns
        (interests) does not outvote one with few.
    sample_size
        Rows used to fit candidates and to score silhouettes (the final model labels all).
    covariance_type
        Gaussian mixture covariance: ``"tied"`` (default: one shared covariance, segments
        differ in location; a full matrix per segment has ~800 parameters on ~40 features and
        lets BIC split skewed segments), ``"full"``, ``"diag"`` or ``"spherical"``.
    random_state
        Seed of every random step.
    """

    def __init__(self, method: str = "kmeans", k: int | None = None,
                 k_range: tuple[int, int] = (2, 10), groups: Sequence[str] = DEFAULT_GROUPS,
                 pca_components: int | float | None = None, balance_groups: bool = True,
                 sample_size: int = 10_000, covariance_type: str = "tied",
                 random_state: int = 0) -> None:
        self.method = method
        self.k = k
        self.k_range = k_range
        self.groups = tuple(groups)
        self.pca_components = pca_components
        self.balance_groups = balance_groups
        self.sample_size = sample_size
        self.covariance_type = covariance_type
        self.random_state = random_state

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, profiles: pd.DataFrame, previous: SegmentModel | None = None,
            previous_labels: pd.Series | None = None) -> SegmentModel:
        """Choose k, fit, label every user and give segments stable ids and descriptions.

        Parameters
        ----------
        profiles
            Profiles indexed by user id.
        previous
            The previous build's model: its segment ids are kept for matching segments.
        previous_labels
            The previous segment id per user (default: ``previous.labels_``).
        """
        if self.method not in METHODS:
            raise ConfigError(f"unknown segmentation method {self.method!r}: use {METHODS}")
        lo, hi = (self.k, self.k) if self.k else self.k_range
        if lo < 1 or hi < lo:
            raise ConfigError(f"bad k range {(lo, hi)}: need 1 <= low <= high")
        hi = min(hi, max(len(profiles) - 1, 1))
        lo = min(lo, hi)
        log_cols, num_cols, cat_cols = feature_columns(profiles, self.groups)
        self.preprocessor_ = ProfilePreprocessor(
            num_cols, log_cols, cat_cols, weights=self._weights(profiles),
            pca_components=self.pca_components, random_state=self.random_state)
        x = self.preprocessor_.fit_transform(profiles)
        rng = np.random.default_rng(self.random_state)
        sample = (np.sort(rng.choice(len(x), self.sample_size, replace=False))
                  if len(x) > self.sample_size else np.arange(len(x)))
        # Fits run on at most ``sample_size`` rows, where OpenMP threads cost more in start-up
        # and spin-waiting than they give (40x slower on a busy 2-core machine): one thread.
        with threadpool_limits(limits=1):
            self.selection_scores_ = ({lo: float("nan")} if lo == hi else
                                      {k: self._score(x[sample], k) for k in range(lo, hi + 1)})
            pick = max if self.method == "kmeans" else min
            self.k_ = pick(self.selection_scores_, key=lambda k: self.selection_scores_[k])
            self.estimator_ = self._estimator(self.k_).fit(x[sample])
            clusters = self.estimator_.predict(x)
        centroids = np.vstack([x[clusters == c].mean(axis=0) if (clusters == c).any()
                               else self._centers()[c] for c in range(self.k_)])
        self.cluster_to_segment_ = self._stable_ids(x, profiles.index, clusters, centroids,
                                                    previous, previous_labels)
        self._segment_of_cluster = np.asarray(self.cluster_to_segment_, dtype=np.int64)
        self.labels_ = pd.Series(self._segment_of_cluster[clusters], index=profiles.index,
                                 name="segment_id")
        self.centroids_ = {int(self._segment_of_cluster[c]): centroids[c]
                           for c in range(self.k_)}
        self.descriptions_ = describe_segments(profiles, self.labels_.to_numpy())
        self._table = self._make_table(profiles)
        return self

    def _weights(self, profiles: pd.DataFrame) -> dict[str, float]:
        if not self.balance_groups:
            return {}
        weights: dict[str, float] = {}
        for g in self.groups:
            cols = [c for kind in feature_columns(profiles, [g]) for c in kind]
            for c in cols:
                weights[c] = 1.0 / np.sqrt(max(len(cols), 1))
        return weights

    def _estimator(self, k: int, *, quick: bool = False) -> Any:
        """The clusterer for ``k`` segments (``quick``: fewer restarts, for choosing k)."""
        if self.method == "kmeans":
            from sklearn.cluster import KMeans

            return KMeans(n_clusters=k, n_init=2 if quick else 4, random_state=self.random_state)
        from sklearn.mixture import GaussianMixture

        return GaussianMixture(n_components=k, covariance_type=self.covariance_type,
                               n_init=1 if quick else 2, reg_covar=1e-4,
                               random_state=self.random_state)

    def _score(self, x: np.ndarray, k: int) -> float:
        est = self._estimator(k, quick=True).fit(x)
        if self.method == "gmm":
            return float(est.bic(x))
        if k < 2:
            return -1.0
        from sklearn.metrics import silhouette_score

        labels = est.labels_
        if len(np.unique(labels)) < 2:
            return -1.0
        n = min(len(x), 4000)
        return float(silhouette_score(x, labels, sample_size=n, random_state=self.random_state))

    def _centers(self) -> np.ndarray:
        est = self.estimator_
        return est.cluster_centers_ if self.method == "kmeans" else est.means_

    def _stable_ids(self, x: np.ndarray, users: pd.Index, clusters: np.ndarray,
                    centroids: np.ndarray, previous: SegmentModel | None,
                    previous_labels: pd.Series | None) -> list[int]:
        sizes = np.bincount(clusters, minlength=self.k_)
        if previous is None and previous_labels is None:
            order = np.argsort(-sizes, kind="stable")  # id 0 = largest segment
            ids = np.empty(self.k_, dtype=np.int64)
            ids[order] = np.arange(self.k_)
            return ids.tolist()
        if previous_labels is None:
            previous_labels = previous.labels_  # type: ignore[union-attr]
        prev = previous_labels.reindex(users)
        known = prev.notna().to_numpy()
        prev_ids = np.unique(prev[known].astype(np.int64))
        prev_centroids = np.vstack([x[known][prev[known].to_numpy() == s].mean(axis=0)
                                    for s in prev_ids]) if len(prev_ids) else np.empty((0, 0))
        return match_segments(centroids, prev_centroids, prev_ids)

    # -- using ------------------------------------------------------------------------------
    def check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            raise NotFittedError("SegmentModel is not fitted: call fit(profiles) first")

    def assign(self, profiles: pd.DataFrame) -> pd.DataFrame:
        """``segment_id`` and ``segment_probability`` of each profile (rows of ``profiles``)."""
        self.check_fitted()
        x = self.preprocessor_.transform(profiles)
        with threadpool_limits(limits=1):
            if self.method == "gmm":
                proba = self.estimator_.predict_proba(x)
                clusters = proba.argmax(axis=1)
                p = proba[np.arange(len(x)), clusters]
            else:
                clusters = self.estimator_.predict(x)
                p = np.ones(len(x))
        return pd.DataFrame({"segment_id": self._segment_of_cluster[clusters],
                             "segment_probability": p}, index=profiles.index)

    def assign_one(self, features: Mapping[str, Any]) -> tuple[int, float]:
        """(segment_id, probability) of one profile dict: nearest centroid or GMM posterior."""
        x = self.preprocessor_.transform_one(features)
        if self.method == "kmeans":
            d = ((self._centers() - x) ** 2).sum(axis=1)
            return int(self._segment_of_cluster[int(d.argmin())]), 1.0
        est = self.estimator_
        # log N(x | mu_c, Sigma_c) via the fitted Cholesky factors of the precisions.
        diff = x[None, :] - est.means_
        pc, kind = est.precisions_cholesky_, est.covariance_type
        if kind == "full":
            y = np.einsum("kd,kde->ke", diff, pc)
            log_det = np.log(np.diagonal(pc, axis1=1, axis2=2)).sum(axis=1)
        elif kind == "tied":
            y, log_det = diff @ pc, np.log(np.diag(pc)).sum()
        elif kind == "diag":
            y, log_det = diff * pc, np.log(pc).sum(axis=1)
        else:  # spherical
            y, log_det = diff * pc[:, None], x.size * np.log(pc)
        log_p = (np.log(est.weights_) + log_det - 0.5 * (y**2).sum(axis=1)
                 - 0.5 * x.size * np.log(2 * np.pi))
        log_p -= log_p.max()
        post = np.exp(log_p) / np.exp(log_p).sum()
        c = int(post.argmax())
        return int(self._segment_of_cluster[c]), float(post[c])

    def table(self) -> pd.DataFrame:
        """One row per segment: id, size, share, description and typical values."""
        self.check_fitted()
        return self._table.copy()

    def _make_table(self, profiles: pd.DataFrame) -> pd.DataFrame:
        labels = self.labels_
        rows = []
        for seg in sorted(self.centroids_):
            members = profiles[labels.to_numpy() == seg]
            row: dict[str, Any] = {"segment_id": seg, "size": len(members),
                                   "share": len(members) / max(len(profiles), 1),
                                   "description": self.descriptions_.get(seg, "typical")}
            for col in ("monetary", "frequency", "recency_days", "n_events"):
                if col in members:
                    row[f"median_{col}"] = float(pd.to_numeric(members[col]).median())
            if "rfm_segment" in members and len(members):
                row["top_rfm_segment"] = members["rfm_segment"].mode().iloc[0]
            rows.append(row)
        return pd.DataFrame(rows)


def match_segments(new_centroids: np.ndarray, old_centroids: np.ndarray,
                   old_ids: np.ndarray) -> list[int]:
    """Segment id of each new centroid: the matched old id (Hungarian algorithm on Euclidean
    distances), or a fresh id above every old one for centroids left unmatched."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    k = len(new_centroids)
    ids = [-1] * k
    if len(old_ids):
        rows, cols = linear_sum_assignment(cdist(new_centroids, old_centroids))
        for r, c in zip(rows, cols, strict=True):
            ids[r] = int(old_ids[c])
    fresh = int(max(old_ids)) + 1 if len(old_ids) else 0
    for r in range(k):
        if ids[r] < 0:
            ids[r] = fresh
            fresh += 1
    return ids
