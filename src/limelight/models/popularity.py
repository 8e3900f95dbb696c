"""Most-popular baseline, optionally time-decayed and per group (segment, region, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy.sparse as sp

from limelight.models.base import Recommender

if TYPE_CHECKING:
    from limelight.data.dataset import Dataset

_SECONDS_PER_DAY = 86_400.0


class Popularity(Recommender):
    """Items ranked by how many users interacted with them.

    Parameters
    ----------
    half_life_days
        When set, each interaction counts ``0.5 ** (age / half_life)`` with its age measured
        from the latest event in the dataset's log, so recent popularity wins.
    group_of_user
        Optional group label per user index (segment, region; shape (n_users,), negative =
        no group). A user in a group is ranked by their group's popularity, shrunk towards
        the global one with weight ``shrinkage / (group_size + shrinkage)``; others get the
        global ranking. May also be passed to :meth:`fit`.
    shrinkage
        Pseudo-count of users pulling a small group towards global popularity.

    Example
    -------
    >>> Popularity(half_life_days=30).fit(dataset).recommend(0, n=5)  # doctest: +SKIP
    """

    supports_fold_in: ClassVar[bool] = True

    def __init__(self, half_life_days: float | None = None,
                 group_of_user: np.ndarray | None = None, shrinkage: float = 10.0) -> None:
        self.half_life_days = half_life_days
        self.group_of_user = group_of_user
        self.shrinkage = shrinkage

    def fit(self, dataset: Dataset, group_of_user: np.ndarray | None = None) -> Popularity:
        """Count interactions; ``group_of_user`` overrides the constructor's groups."""
        self._fit_groups = group_of_user if group_of_user is not None else self.group_of_user
        try:
            super().fit(dataset)
        finally:
            del self._fit_groups
        return self

    def _fit(self, dataset: Dataset) -> None:
        counts = self._user_item_counts(dataset)
        self.global_share_ = _share(np.asarray(counts.sum(axis=0)).ravel())
        groups = self._fit_groups
        if groups is None:
            self.group_of_user_ = np.full(self.n_users_, -1, dtype=np.int64)
            self.group_scores_ = np.zeros((0, self.n_items_), dtype=np.float32)
            return
        groups = np.asarray(groups, dtype=np.int64)
        if groups.shape != (self.n_users_,):
            raise ValueError(
                f"group_of_user must have one label per user ({self.n_users_}), got "
                f"shape {groups.shape}")
        self.group_of_user_ = groups
        n_groups = int(groups.max()) + 1 if len(groups) and groups.max() >= 0 else 0
        member = groups >= 0
        assign = sp.csr_matrix((np.ones(member.sum()), (groups[member],
                                                       np.flatnonzero(member))),
                               shape=(n_groups, self.n_users_))
        group_counts = np.asarray((assign @ counts).todense())
        sizes = np.bincount(groups[member], minlength=n_groups).astype(np.float64)
        totals = group_counts.sum(axis=1, keepdims=True)
        shares = np.divide(group_counts, totals, out=np.zeros_like(group_counts),
                           where=totals > 0)
        pull = (self.shrinkage / (sizes + self.shrinkage))[:, None]
        self.group_scores_ = ((1 - pull) * shares + pull * self.global_share_[None, :]).astype(
            np.float32)

    def _user_item_counts(self, dataset: Dataset) -> sp.csr_matrix:
        """Users x items: 1 per interacting user (decayed by the age of their last event)."""
        log = dataset.log
        if self.half_life_days is None or not len(log):
            counts = self.user_items_.copy()
            counts.data = (counts.data > 0).astype(np.float64)
            counts.eliminate_zeros()
            return counts
        positive = log[log["weight"] > 0]
        latest = positive.groupby(["user_idx", "item_idx"], sort=False)["timestamp"].max()
        users = latest.index.get_level_values(0).to_numpy()
        items = latest.index.get_level_values(1).to_numpy()
        age_days = (log["timestamp"].max() - latest.to_numpy()) / _SECONDS_PER_DAY
        decay = np.power(0.5, age_days / self.half_life_days)
        return sp.csr_matrix((decay, (users, items)), shape=(self.n_users_, self.n_items_))

    def _score_users(self, user_idx: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        scores = np.tile(self.global_share_.astype(np.float32), (len(user_idx), 1))
        known = (user_idx >= 0) & (user_idx < self.n_users_)
        groups = np.full(len(user_idx), -1, dtype=np.int64)
        groups[known] = self.group_of_user_[user_idx[known]]
        grouped = groups >= 0
        if grouped.any():
            scores[grouped] = self.group_scores_[groups[grouped]]
        return scores

    def item_vectors(self) -> np.ndarray:
        return self.user_items_.T.tocsr()


def _share(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts, dtype=np.float64)
