"""Bayesian personalised ranking (implicit's ``BayesianPersonalizedRanking``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from limelight.models.base import FactorModel
from limelight.models.similarity import binarize

if TYPE_CHECKING:
    from limelight.data.dataset import Dataset


class BPR(FactorModel):
    """Pairwise ranking matrix factorisation trained by SGD on (user, seen, unseen) triples.

    Parameters
    ----------
    n_factors
        Latent dimensions (implicit adds one for the item bias).
    n_epochs
        Passes over the interactions.
    learning_rate, regularization
        SGD step and L2 weight.
    verify_negative_samples
        Re-draw a negative that the user has in fact seen.
    num_threads
        SGD threads; the default 1 keeps results reproducible from ``random_state``
        (Hogwild updates with more threads are not).
    random_state
        Seed.

    Example
    -------
    >>> BPR(n_factors=64, n_epochs=100).fit(dataset).recommend([0], n=10)  # doctest: +SKIP
    """

    def __init__(self, n_factors: int = 64, n_epochs: int = 100, learning_rate: float = 0.05,
                 regularization: float = 0.01, verify_negative_samples: bool = True,
                 num_threads: int = 1, random_state: int | None = 0) -> None:
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.verify_negative_samples = verify_negative_samples
        self.num_threads = num_threads
        self.random_state = random_state

    def _fit(self, dataset: Dataset) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        model = BayesianPersonalizedRanking(
            factors=self.n_factors, learning_rate=self.learning_rate,
            regularization=self.regularization, iterations=self.n_epochs,
            verify_negative_samples=self.verify_negative_samples,
            num_threads=self.num_threads, random_state=self.random_state)
        positives = self.user_items_
        if positives.nnz and positives.data.min() <= 0:  # BPR reads any stored entry as liked
            positives = binarize(positives)
        with threadpool_limits(1, "blas"):
            model.fit(positives, show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors)
        self.item_factors_ = np.asarray(model.item_factors)

    def _score_users(self, user_idx: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return self.user_factors_[user_idx] @ self.item_factors_.T

    def _user_vectors(self, users: np.ndarray, rows: sp.csr_matrix, trained: bool
                      ) -> np.ndarray:
        # no fold-in: the trained vectors (the last item factor is the bias, the users' 1)
        return self.user_factors_[users]

    def item_vectors(self) -> np.ndarray:
        return self.item_factors_[:, :-1]  # the last column is the item bias
