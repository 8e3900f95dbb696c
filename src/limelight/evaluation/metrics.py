"""Offline metrics: accuracy of ranked lists, rating error, and beyond-accuracy measures.

Ranking metrics take a ``hits`` matrix -- shape (n_users, k), True where the item at that rank
is relevant -- and each user's number of relevant items, and return one value per user, so a
caller can average, bootstrap or slice them. Conventions (those of the common reference
implementations, so numbers are comparable):

- NDCG@k: binary gains, discount ``1 / log2(rank + 1)``; the ideal DCG puts
  ``min(n_relevant, k)`` relevant items first.
- MAP@k: the sum of precision at each hit, divided by ``min(n_relevant, k)``.
- MRR@k: ``1 / rank`` of the first hit within k, 0 without one.
- Recall@k: hits over ``n_relevant`` (not capped at k).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

# -- building the hits matrix --------------------------------------------------------------

def hits_matrix(recommended: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """True where ``recommended[u, r]`` is a relevant item of user ``u``.

    Parameters
    ----------
    recommended
        Item indices, shape (n_users, k), best first; ``-1`` pads short lists.
    relevant
        Sparse matrix, shape (n_users, n_items), rows aligned with ``recommended``; a stored
        non-zero marks a relevant item.

    Returns
    -------
    numpy.ndarray
        bool, shape (n_users, k).
    """
    recommended = np.atleast_2d(np.asarray(recommended, dtype=np.int64))
    relevant = sp.csr_matrix(relevant)
    relevant.eliminate_zeros()
    n_items = relevant.shape[1]
    coo = relevant.tocoo()
    keys = np.sort(coo.row.astype(np.int64) * n_items + coo.col)
    rows = np.arange(recommended.shape[0], dtype=np.int64)[:, None]
    query = rows * n_items + recommended
    pos = np.searchsorted(keys, query)
    pos = np.minimum(pos, max(len(keys) - 1, 0))
    found = keys[pos] == query if len(keys) else np.zeros(query.shape, bool)
    return found & (recommended >= 0)


def _cut(hits: np.ndarray, k: int | None) -> np.ndarray:
    hits = np.atleast_2d(np.asarray(hits, dtype=bool))
    if k is None:
        return hits
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return hits[:, :k]


def _n_relevant(n_relevant: np.ndarray | int, n_users: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(n_relevant, dtype=np.float64), (n_users,))


# -- accuracy of ranked lists (per user) ----------------------------------------------------

def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Hits in the top ``k`` divided by ``k`` (a short list still divides by k)."""
    h = _cut(hits, k)
    return h.sum(axis=1) / k


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray | int, k: int) -> np.ndarray:
    """Hits in the top ``k`` divided by the user's number of relevant items (0 when none)."""
    h = _cut(hits, k)
    n = _n_relevant(n_relevant, h.shape[0])
    return np.divide(h.sum(axis=1), n, out=np.zeros(h.shape[0]), where=n > 0)


def f1_at_k(hits: np.ndarray, n_relevant: np.ndarray | int, k: int) -> np.ndarray:
    """Harmonic mean of precision@k and recall@k (0 when both are 0)."""
    p = precision_at_k(hits, k)
    r = recall_at_k(hits, n_relevant, k)
    return np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray | int, k: int) -> np.ndarray:
    """Binary-gain NDCG@k; the ideal DCG has ``min(n_relevant, k)`` hits on top."""
    h = _cut(hits, k)
    discounts = 1.0 / np.log2(np.arange(2, h.shape[1] + 2))
    dcg = (h * discounts).sum(axis=1)
    n = np.minimum(_n_relevant(n_relevant, h.shape[0]), k).astype(np.int64)
    ideal_cum = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))]
    idcg = ideal_cum[n]
    return np.divide(dcg, idcg, out=np.zeros(h.shape[0]), where=idcg > 0)


def average_precision_at_k(hits: np.ndarray, n_relevant: np.ndarray | int, k: int
                           ) -> np.ndarray:
    """AP@k: precision at each hit summed, divided by ``min(n_relevant, k)``."""
    h = _cut(hits, k).astype(np.float64)
    prec_at_rank = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    denom = np.minimum(_n_relevant(n_relevant, h.shape[0]), k)
    return np.divide((prec_at_rank * h).sum(axis=1), denom, out=np.zeros(h.shape[0]),
                     where=denom > 0)


def reciprocal_rank_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """``1 / rank`` of the first hit within the top ``k``; 0 without a hit."""
    h = _cut(hits, k)
    any_hit = h.any(axis=1)
    first = np.argmax(h, axis=1) + 1
    return np.where(any_hit, 1.0 / first, 0.0)


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """1 when at least one relevant item is in the top ``k``, else 0."""
    return _cut(hits, k).any(axis=1).astype(np.float64)


def auc(scores: np.ndarray, relevant: sp.csr_matrix, excluded: sp.csr_matrix | None = None
        ) -> np.ndarray:
    """Per-user ROC AUC of the full score vector: relevant items against all other items.

    Parameters
    ----------
    scores
        Shape (n_users, n_items).
    relevant
        Shape (n_users, n_items); non-zeros are the positives.
    excluded
        Shape (n_users, n_items); non-zeros are neither positive nor negative (e.g. the
        user's training items). None excludes nothing.

    Returns
    -------
    numpy.ndarray
        Shape (n_users,); ``nan`` for a user without positives or negatives. Ties count 1/2.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    relevant = sp.csr_matrix(relevant)
    excluded = sp.csr_matrix(excluded) if excluded is not None else None
    out = np.full(scores.shape[0], np.nan)
    for u in range(scores.shape[0]):
        pos = relevant.indices[relevant.indptr[u]:relevant.indptr[u + 1]]
        keep = np.ones(scores.shape[1], bool)
        if excluded is not None:
            keep[excluded.indices[excluded.indptr[u]:excluded.indptr[u + 1]]] = False
        keep[pos] = True
        is_pos = np.zeros(scores.shape[1], bool)
        is_pos[pos] = True
        n_pos = int(is_pos[keep].sum())
        n_neg = int(keep.sum()) - n_pos
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = rankdata(scores[u, keep])  # average ranks: ties count one half
        rank_sum = ranks[is_pos[keep]].sum()
        out[u] = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return out


# -- rating error --------------------------------------------------------------------------

def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error."""
    predicted, actual = np.asarray(predicted, float), np.asarray(actual, float)
    if predicted.shape != actual.shape or not predicted.size:
        raise ValueError("predicted and actual must be non-empty and of the same shape")
    return float(np.sqrt(np.mean((predicted - actual) ** 2)))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error."""
    predicted, actual = np.asarray(predicted, float), np.asarray(actual, float)
    if predicted.shape != actual.shape or not predicted.size:
        raise ValueError("predicted and actual must be non-empty and of the same shape")
    return float(np.mean(np.abs(predicted - actual)))


# -- beyond accuracy -----------------------------------------------------------------------

def _valid_items(recommended: np.ndarray) -> np.ndarray:
    rec = np.asarray(recommended, dtype=np.int64)
    return rec[rec >= 0]


def catalogue_coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one recommendation list."""
    return len(np.unique(_valid_items(recommended))) / n_items if n_items else 0.0


def exposure(recommended: np.ndarray, n_items: int) -> np.ndarray:
    """How often each item is recommended, shape (n_items,)."""
    return np.bincount(_valid_items(recommended), minlength=n_items).astype(np.float64)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative ``values`` (0: all equal; towards 1: concentrated).

    Applied to :func:`exposure` over the whole catalogue it measures how unequally a
    recommender spreads attention (popularity bias).
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    if (x < 0).any():
        raise ValueError("gini needs non-negative values")
    ranks = np.arange(1, n + 1)
    return float(((2 * ranks - n - 1) * x).sum() / (n * x.sum()))


def item_popularity(interactions: sp.spmatrix) -> np.ndarray:
    """Share of users who interacted with each item (training data), shape (n_items,)."""
    binary = sp.csr_matrix(interactions, copy=True)
    binary.eliminate_zeros()
    counts = np.bincount(binary.indices, minlength=binary.shape[1]).astype(np.float64)
    return counts / max(binary.shape[0], 1)


def novelty(recommended: np.ndarray, popularity: np.ndarray, n_users: int) -> float:
    """Mean self-information ``-log2 p(i)`` of recommended items.

    ``p(i)`` is the item's share of users (:func:`item_popularity`); an item nobody has
    touched counts as touched once (``1 / n_users``) so its novelty stays finite.
    """
    items = _valid_items(recommended)
    if not len(items):
        return 0.0
    p = np.maximum(np.asarray(popularity, float)[items], 1.0 / max(n_users, 1))
    return float(np.mean(-np.log2(p)))


def average_popularity(recommended: np.ndarray, popularity: np.ndarray) -> float:
    """Mean popularity (share of users) of recommended items -- high means popularity bias."""
    items = _valid_items(recommended)
    return float(np.mean(np.asarray(popularity, float)[items])) if len(items) else 0.0


def intra_list_diversity(recommended: np.ndarray, item_features: np.ndarray | sp.spmatrix
                         ) -> float:
    """Mean pairwise cosine distance ``1 - cos(f_a, f_b)`` inside each list, averaged over
    lists with at least two items. An item without features is at distance 1 from all."""
    rec = np.atleast_2d(np.asarray(recommended, dtype=np.int64))
    feats = sp.csr_matrix(item_features, dtype=np.float64)
    norms = np.sqrt(np.asarray(feats.multiply(feats).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    unit = sp.diags(1.0 / norms) @ feats
    values = []
    for row in rec:
        items = row[row >= 0]
        m = len(items)
        if m < 2:
            continue
        vecs = unit[items]
        sims = (vecs @ vecs.T).toarray()
        off_diag = sims.sum() - np.trace(sims)
        values.append(1.0 - off_diag / (m * (m - 1)))
    return float(np.mean(values)) if values else 0.0
