"""EASE: embarrassingly shallow autoencoder (Steck 2019), solved in closed form.

``B = argmin ||X - X B||^2 + lambda ||B||^2`` subject to ``diag(B) = 0`` has the solution
``P = (X^T X + lambda I)^-1``, ``B = -P / diag(P)`` (column-wise), ``B_ii = 0``. The Gram
matrix and its inverse are dense ``n_items x n_items``: fine up to a few tens of thousands of
items. The inverse is computed in ``dtype`` (float32 by default: the Gram matrix plus
``lambda I`` is well conditioned, and float32 halves the time of the O(n_items^3) inversion;
float64 is there for tiny ``lambda``) and stored in float32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy.sparse as sp

from limelight.models.base import Recommender
from limelight.models.similarity import binarize

if TYPE_CHECKING:
    from limelight.data.dataset import Dataset


class EASE(Recommender):
    """Item-item linear autoencoder with a zero diagonal.

    Parameters
    ----------
    regularization
        ``lambda``; larger values smooth towards popularity. Typical: 50-1000.
    binary
        Fit on 0/1 interactions instead of their weights.
    dtype
        ``"float32"`` or ``"float64"``: precision of the inversion.
    history_half_life
        Score training users from their history with the ``k``-th most recent interaction
        weighted ``0.5 ** (k / history_half_life)`` (None: unweighted). Fitting is unchanged;
        it favours what a user did last, which matters when the future is predicted.

    Example
    -------
    >>> EASE(regularization=400).fit(dataset).recommend([0, 1], n=10)  # doctest: +SKIP
    """

    supports_fold_in: ClassVar[bool] = True

    def __init__(self, regularization: float = 400.0, binary: bool = False,
                 dtype: str = "float32", history_half_life: float | None = None) -> None:
        self.regularization = regularization
        self.binary = binary
        self.dtype = dtype
        self.history_half_life = history_half_life

    def _inputs(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        if not self.binary:
            return user_items
        return binarize(user_items)

    def _fit(self, dataset: Dataset) -> None:
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        x = self._inputs(self.user_items_).astype(self.dtype)
        gram = np.asarray((x.T @ x).todense())
        gram[np.diag_indices_from(gram)] += self.regularization
        precision = np.linalg.inv(gram)
        precision /= -np.diag(precision)[None, :]
        np.fill_diagonal(precision, 0.0)
        self.weights_ = precision.astype(np.float32, copy=False)
        self._set_scoring_history(dataset, self.history_half_life, binary=self.binary)

    def _score_users(self, user_idx: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return np.asarray(self._inputs(user_items) @ self.weights_)

    def _score_history(self, user_idx: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return np.asarray(history @ self.weights_)

    def item_vectors(self) -> np.ndarray:
        return self.weights_.T
