"""Validation helpers of the factorization machine: hold-out splits and NDCG@10.

Early stopping holds out either each user's latest events (warm users) or whole users (the
cold-start use); the model is scored on them after every epoch with full ranking.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from limelight.evaluation.metrics import hits_matrix, ndcg_at_k
from limelight.models.base import masked_top

_SCORE_BATCH = 1024


def temporal_holdout(users: np.ndarray, fraction: float, *, round_up: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Positions of training and validation examples: the last ``fraction`` of each user's
    events (the log is sorted by user then time; the count rounded down, or up with
    ``round_up``) when the user has at least 3."""
    positions = np.arange(len(users))
    if fraction <= 0 or not len(users):
        return positions, positions[:0]
    starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
    counts = np.diff(np.r_[starts, len(users)])
    cut = np.ceil(counts * fraction) if round_up else np.floor(counts * fraction)
    n_valid = np.where(counts >= 3, cut.astype(int), 0)
    rank = positions - np.repeat(starts, counts)
    is_valid = rank >= np.repeat(counts - n_valid, counts)
    return positions[~is_valid], positions[is_valid]


def held_out_users(users: np.ndarray, fraction: float, random_state: int | None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Positions of training and validation examples: every example of a random
    ``fraction`` of the users (at least one user when any is drawn) is validation."""
    positions = np.arange(len(users))
    distinct = np.unique(users)
    n_valid = round(fraction * len(distinct))
    if fraction <= 0 or len(distinct) < 2:
        return positions, positions[:0]
    rng = np.random.default_rng(random_state)
    chosen = rng.choice(distinct, size=min(max(n_valid, 1), len(distinct) - 1), replace=False)
    is_valid = np.isin(users, chosen)
    return positions[~is_valid], positions[is_valid]


def truth_matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary (n_users, n_items) matrix of the given (user, item) pairs."""
    truth = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)),
                          shape=(n_users, n_items))
    truth.data[:] = 1.0
    return truth


def ndcg_at_10(model: Any, truth: sp.csr_matrix, seen: sp.csr_matrix,
                max_users: int = 2000) -> float:
    """Mean NDCG@10 over users with validation items (full ranking, seen items excluded)."""
    users = np.flatnonzero(np.diff(truth.indptr))[:max_users]
    total = 0.0
    for start in range(0, len(users), _SCORE_BATCH):
        chunk = users[start:start + _SCORE_BATCH]
        scores = model._score_users(chunk, seen[chunk]).astype(np.float32)
        top, _ = masked_top(scores, 10, None, seen[chunk])
        relevant = truth[chunk]
        total += float(ndcg_at_k(hits_matrix(top, relevant), np.diff(relevant.indptr), 10).sum())
    return total / max(len(users), 1)
