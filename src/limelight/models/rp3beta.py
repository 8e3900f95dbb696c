"""RP3beta: a three-step random walk user -> item -> user -> item, popularity-discounted.

Following Paudel et al. (2017) and Dacrema et al. (2019): with ``P_ui`` the row-normalised
user->item transition matrix and ``P_iu`` the item->user one, both raised element-wise to
``alpha``, the item-item weight is ``W_ij = (P_iu P_ui)_ij / pop_j^beta``; each row keeps its
``n_neighbors`` largest entries and a user's scores are ``x_u W``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy.sparse as sp

from limelight.models.base import Recommender, top_n
from limelight.models.similarity import binarize, blocked_top_k, row_normalize

if TYPE_CHECKING:
    from limelight.data.dataset import Dataset


class RP3beta(Recommender):
    """Graph-based item-item model.

    Parameters
    ----------
    alpha
        Exponent of the transition probabilities (1 = plain random walk).
    beta
        Popularity discount of the target item (0 = P3alpha).
    n_neighbors
        Entries kept per item row of the weight matrix.
    normalize_rows
        Rescale each kept row to sum 1.
    binary
        Walk on 0/1 interactions instead of their weights.
    history_half_life
        Score training users from recency-weighted histories (the ``k``-th most recent
        interaction weighs ``0.5 ** (k / history_half_life)``); None = plain.

    Example
    -------
    >>> RP3beta(alpha=1.0, beta=0.5, n_neighbors=100).fit(dataset)  # doctest: +SKIP
    """

    supports_fold_in: ClassVar[bool] = True

    def __init__(self, alpha: float = 1.0, beta: float = 0.5, n_neighbors: int = 100,
                 normalize_rows: bool = False, binary: bool = True,
                 history_half_life: float | None = None) -> None:
        self.alpha = alpha
        self.beta = beta
        self.n_neighbors = n_neighbors
        self.normalize_rows = normalize_rows
        self.binary = binary
        self.history_half_life = history_half_life

    def _inputs(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        if not self.binary:
            return user_items
        return binarize(user_items)

    def _fit(self, dataset: Dataset) -> None:
        x = self._inputs(self.user_items_)
        x = x.copy()
        x.data = np.maximum(x.data, 0)
        x.eliminate_zeros()
        p_ui = row_normalize(x)
        p_iu = row_normalize(x.T)
        if self.alpha != 1.0:
            p_ui.data **= self.alpha
            p_iu.data **= self.alpha
        popularity = np.asarray((x > 0).sum(axis=0)).ravel().astype(np.float64)
        discount = np.power(np.maximum(popularity, 1.0), -self.beta)

        def discounted(dense: np.ndarray, rows: slice) -> np.ndarray:
            return dense * discount[None, :]

        weights = blocked_top_k(p_iu, p_ui, self.n_neighbors, transform=discounted,
                                drop_diagonal=True)
        if self.normalize_rows:
            weights = row_normalize(weights)
        self.weights_ = weights.astype(np.float32)
        self._set_scoring_history(dataset, self.history_half_life, binary=self.binary)

    def _score_users(self, user_idx: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return (self._inputs(user_items) @ self.weights_).toarray()

    def _score_history(self, user_idx: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return (history @ self.weights_).toarray()

    def similar_items(self, item_ids: np.ndarray | int, n: int = 10
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Items by random-walk weight (the item itself left out)."""
        self.check_fitted()
        items = np.atleast_1d(np.asarray(item_ids, dtype=np.int64))
        sims = self.weights_[items].toarray()
        sims[np.arange(len(items)), items] = -np.inf
        return top_n(sims, n)
