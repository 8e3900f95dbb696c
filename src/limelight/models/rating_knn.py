"""kNN on baseline residuals for explicit ratings (Koren 2010's "KNNBaseline").

Item-based: ``r_ij ~ b_ij + sum_k s_jk (r_ik - b_ik) / sum_k s_jk`` over the ``n_neighbors``
items ``k`` rated by user ``i`` that are most similar to ``j``; ``b_ij = mu + b_i + c_j`` are
regularised biases (alternating least squares), and ``s`` is the Pearson correlation of the
residuals ``r - b`` over common raters, shrunk by ``(n_common - 1) / (n_common - 1 +
shrinkage)``. User-based is the same with the roles of users and items swapped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from limelight.models.base import Recommender

if TYPE_CHECKING:
    from limelight.data.dataset import Dataset

_PAIRS_PER_CHUNK = 4096


class BaselineKNN(Recommender):
    """Neighbourhood rating predictor on top of user/item biases.

    Parameters
    ----------
    n_neighbors
        Rated items used per prediction (k).
    shrinkage
        Shrinks similarities resting on few common raters.
    user_regularization, item_regularization
        Ridge weights of the user and item biases (absolute, as pseudo-ratings).
    n_epochs
        Alternating sweeps fitting the biases.
    based_on
        ``"item"`` (neighbours are items the user rated) or ``"user"`` (neighbours are users
        who rated the item).

    Example
    -------
    >>> BaselineKNN(n_neighbors=40).fit(dataset).predict([0], [3])  # doctest: +SKIP
    """

    def __init__(self, n_neighbors: int = 40, shrinkage: float = 100.0,
                 user_regularization: float = 15.0, item_regularization: float = 10.0,
                 n_epochs: int = 10, based_on: str = "item") -> None:
        self.n_neighbors = n_neighbors
        self.shrinkage = shrinkage
        self.user_regularization = user_regularization
        self.item_regularization = item_regularization
        self.n_epochs = n_epochs
        self.based_on = based_on

    def _fit(self, dataset: Dataset) -> None:
        ratings = dataset.ratings
        if ratings.nnz == 0:
            ratings = self.user_items_
        coo = ratings.tocoo()
        self.rating_range_ = (float(coo.data.min()), float(coo.data.max())) if coo.nnz else (
            0.0, 1.0)
        self.mu_ = float(coo.data.mean()) if coo.nnz else 0.0
        self.user_bias_, self.item_bias_ = _fit_biases(
            coo, self.mu_, self.n_users_, self.n_items_, self.user_regularization,
            self.item_regularization, self.n_epochs)
        if self.based_on not in ("item", "user"):
            raise ValueError(f"based_on must be 'item' or 'user', got {self.based_on!r}")
        residual = coo.data - self._baseline(coo.row, coo.col)
        residuals = sp.csr_matrix((residual, (coo.row, coo.col)), shape=ratings.shape)
        # "owners" hold the histories searched for neighbours: users (item-based) or items
        self.residuals_ = residuals if self.based_on == "item" else residuals.T.tocsr()
        self.similarity_ = _pearson_baseline(self.residuals_, self.shrinkage).astype(np.float32)
        self._pad_histories()

    def _baseline(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.mu_ + self.user_bias_[users] + self.item_bias_[items]

    def _pad_histories(self) -> None:
        """Each user's rated items and residuals as rows of a padded array (vectorised
        neighbour search in :meth:`predict`)."""
        n_owners = self.residuals_.shape[0]
        lengths = np.diff(self.residuals_.indptr)
        width = max(int(lengths.max()) if len(lengths) else 0, 1)
        rows = np.repeat(np.arange(n_owners), lengths)
        cols = np.arange(self.residuals_.nnz) - self.residuals_.indptr[rows]
        self.history_items_ = np.zeros((n_owners, width), dtype=np.int64)
        self.history_residuals_ = np.zeros((n_owners, width), dtype=np.float32)
        self.history_mask_ = np.zeros((n_owners, width), dtype=bool)
        self.history_items_[rows, cols] = self.residuals_.indices
        self.history_residuals_[rows, cols] = self.residuals_.data
        self.history_mask_[rows, cols] = True

    def neighbour_term(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """The kNN correction ``sum s (r - b) / sum s`` of each (user, item) pair."""
        self.check_fitted()
        users = np.atleast_1d(np.asarray(user_idx, dtype=np.int64))
        items = np.atleast_1d(np.asarray(item_idx, dtype=np.int64))
        owners, queries = (users, items) if self.based_on == "item" else (items, users)
        out = np.zeros(len(users))
        k = min(self.n_neighbors, self.history_items_.shape[1])
        for start in range(0, len(users), _PAIRS_PER_CHUNK):
            u = owners[start:start + _PAIRS_PER_CHUNK]
            i = queries[start:start + _PAIRS_PER_CHUNK]
            sims = self.similarity_[i[:, None], self.history_items_[u]]
            sims[~self.history_mask_[u]] = -np.inf
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            top_sims = np.take_along_axis(sims, top, axis=1)
            top_res = np.take_along_axis(self.history_residuals_[u], top, axis=1)
            top_sims = np.where(np.isfinite(top_sims) & (top_sims > 0), top_sims, 0.0)
            total = top_sims.sum(axis=1)
            out[start:start + len(u)] = np.divide((top_sims * top_res).sum(axis=1), total,
                                                  out=np.zeros(len(u)), where=total > 0)
        return out

    def predict(self, user_idx: np.ndarray | int, item_idx: np.ndarray | int) -> np.ndarray:
        """Predicted ratings of (user, item) pairs, clipped to the training rating range."""
        self.check_fitted()
        users = np.atleast_1d(np.asarray(user_idx, dtype=np.int64))
        items = np.atleast_1d(np.asarray(item_idx, dtype=np.int64))
        pred = self._baseline(users, items) + self.neighbour_term(users, items)
        return np.clip(pred, *self.rating_range_)

    def _score_users(self, user_idx: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        users = np.repeat(user_idx, self.n_items_)
        items = np.tile(np.arange(self.n_items_), len(user_idx))
        return self.predict(users, items).reshape(len(user_idx), self.n_items_)

    def item_vectors(self) -> np.ndarray:
        return self.similarity_


def _fit_biases(coo: sp.coo_matrix, mu: float, n_users: int, n_items: int, user_reg: float,
                item_reg: float, n_epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """Regularised user and item biases by alternating closed-form updates."""
    user_bias = np.zeros(n_users)
    item_bias = np.zeros(n_items)
    user_n = np.bincount(coo.row, minlength=n_users)
    item_n = np.bincount(coo.col, minlength=n_items)
    for _ in range(max(n_epochs, 1)):
        item_bias = np.bincount(coo.col, weights=coo.data - mu - user_bias[coo.row],
                                minlength=n_items) / (item_n + item_reg)
        user_bias = np.bincount(coo.row, weights=coo.data - mu - item_bias[coo.col],
                                minlength=n_users) / (user_n + user_reg)
    return user_bias, item_bias


def _pearson_baseline(residuals: sp.csr_matrix, shrinkage: float) -> np.ndarray:
    """Dense item x item shrunk correlation of baseline residuals over common raters."""
    residuals = sp.csr_matrix(residuals, dtype=np.float32)
    rated = residuals.copy()
    rated.data = np.ones_like(rated.data)
    transposed = residuals.T.tocsr()
    products = (transposed @ residuals).toarray()
    squared = transposed.copy()
    squared.data **= 2
    squares = (squared @ rated).toarray()  # sum over common raters
    rated_t = transposed.copy()
    rated_t.data[:] = 1.0
    common = (rated_t @ rated).toarray()
    denominator = np.sqrt(squares * squares.T)
    sims = np.divide(products, denominator, out=np.zeros_like(products),
                     where=denominator > 0)
    support = np.maximum(common - 1.0, 0.0)
    sims *= support / (support + shrinkage)
    np.fill_diagonal(sims, 0.0)
    return sims
