"""Neighbourhood models: item-kNN and user-kNN with cosine, TF-IDF or BM25 weighting.

Similarities are cosines of the weighted interaction vectors, optionally shrunk towards zero
for pairs with little support: ``s_ij = x_i . x_j / (|x_i| |x_j| + shrinkage)``. Without
shrinkage item-kNN uses implicit's multi-threaded ``all_pairs_knn`` kernel (the same similarity
as implicit's ``CosineRecommender`` / ``TFIDFRecommender`` / ``BM25Recommender``, which keep an
item in its own top-K); with shrinkage a blocked scipy kernel computes the shrunk cosine and
leaves the item itself out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from limelight.models.base import Recommender, top_n
from limelight.models.similarity import blocked_top_k, column_norms, top_k_sparse

if TYPE_CHECKING:
    from limelight.data.dataset import Dataset

WEIGHTINGS = ("cosine", "tfidf", "bm25")


class DocumentWeights:
    """TF-IDF / BM25 weighting of "documents" (rows) over "terms" (columns), learned once.

    Rows seen later (new users) are weighted with the statistics learned here, so fold-in and
    training rows are comparable. Formulas follow implicit's ``tfidf_weight`` / ``bm25_weight``.
    """

    def __init__(self, matrix: sp.csr_matrix, weighting: str, k1: float, b: float) -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        self.weighting, self.k1, self.b = weighting, k1, b
        n_docs = max(matrix.shape[0], 1)
        df = np.bincount(matrix.indices, minlength=matrix.shape[1]).astype(np.float64)
        self.idf = np.log(n_docs) - np.log1p(df)
        lengths = np.asarray(matrix.sum(axis=1)).ravel()
        self.mean_length = float(lengths.mean()) if len(lengths) and lengths.mean() > 0 else 1.0

    def __call__(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        if self.weighting == "cosine":
            return out
        idf = self.idf[out.indices]
        if self.weighting == "tfidf":
            out.data = (np.sqrt(np.abs(out.data)) * idf).astype(np.float32)
            return out
        lengths = np.repeat(np.asarray(out.sum(axis=1)).ravel(), np.diff(out.indptr))
        norm = (1.0 - self.b) + self.b * lengths / self.mean_length
        out.data = (out.data * (self.k1 + 1.0) / (self.k1 * norm + out.data) * idf).astype(
            np.float32)
        return out


class ItemKNN(Recommender):
    """Item-based collaborative filtering: ``score(u, j) = sum_i x_ui s_ij`` over the top-K.

    Parameters
    ----------
    n_neighbors
        Neighbours kept per item (K).
    weighting
        ``"cosine"`` (raw weights), ``"tfidf"`` or ``"bm25"`` (users as terms of item
        documents).
    shrinkage
        Added to the cosine's denominator; damps similarities resting on few users.
    bm25_k1, bm25_b
        BM25 saturation and length normalisation.
    num_threads
        Threads of implicit's kernel (0 = all cores).
    history_half_life
        Score training users from recency-weighted histories (the ``k``-th most recent
        interaction weighs ``0.5 ** (k / history_half_life)``); None = plain weights.

    Example
    -------
    >>> ItemKNN(n_neighbors=50, weighting="bm25").fit(dataset).recommend([0, 1], n=10)
    ... # doctest: +SKIP
    """

    supports_fold_in: ClassVar[bool] = True

    def __init__(self, n_neighbors: int = 50, weighting: str = "cosine", shrinkage: float = 0.0,
                 bm25_k1: float = 1.2, bm25_b: float = 0.75, num_threads: int = 0,
                 history_half_life: float | None = None) -> None:
        self.n_neighbors = n_neighbors
        self.weighting = weighting
        self.shrinkage = shrinkage
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.num_threads = num_threads
        self.history_half_life = history_half_life

    def _fit(self, dataset: Dataset) -> None:
        self._set_scoring_history(dataset, self.history_half_life)
        item_docs = self.user_items_.T.tocsr()
        weighted = DocumentWeights(item_docs, self.weighting, self.bm25_k1, self.bm25_b)(
            item_docs)
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        if self.shrinkage <= 0:
            from implicit.nearest_neighbours import all_pairs_knn

            inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
            unit_users = (sp.diags(inverse) @ weighted.astype(np.float64)).T.tocsr()
            with threadpool_limits(1, "blas"):
                self.similarity_ = all_pairs_knn(unit_users, self.n_neighbors,
                                                 num_threads=self.num_threads,
                                                 show_progress=False).tocsr().astype(np.float32)
        else:
            shrink = float(self.shrinkage)

            def shrunk(dense: np.ndarray, rows: slice) -> np.ndarray:
                return dense / (norms[rows, None] * norms[None, :] + shrink)

            self.similarity_ = blocked_top_k(weighted, weighted.T.tocsc(), self.n_neighbors,
                                             transform=shrunk, drop_diagonal=True)

    def _score_users(self, user_idx: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return (user_items @ self.similarity_).toarray()

    def similar_items(self, item_ids: np.ndarray | int, n: int = 10
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Items by learned similarity (the item itself left out)."""
        self.check_fitted()
        items = np.atleast_1d(np.asarray(item_ids, dtype=np.int64))
        sims = self.similarity_[items].toarray()
        sims[np.arange(len(items)), items] = -np.inf
        return top_n(sims, n)


class UserKNN(Recommender):
    """User-based collaborative filtering: ``score(u, j) = sum_v s_uv x_vj`` over the top-K
    most similar training users.

    Parameters
    ----------
    n_neighbors
        Neighbours kept per user (K).
    weighting
        ``"cosine"``, ``"tfidf"`` or ``"bm25"`` (items as terms of user documents).
    shrinkage
        Added to the cosine's denominator.
    bm25_k1, bm25_b
        BM25 parameters.

    Notes
    -----
    Neighbours are found at scoring time from the rows given (training rows or a new user's
    current history), so new users are served without refitting.
    """

    supports_fold_in: ClassVar[bool] = True

    def __init__(self, n_neighbors: int = 50, weighting: str = "cosine", shrinkage: float = 0.0,
                 bm25_k1: float = 1.2, bm25_b: float = 0.75) -> None:
        self.n_neighbors = n_neighbors
        self.weighting = weighting
        self.shrinkage = shrinkage
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b

    def _fit(self, dataset: Dataset) -> None:
        self.weights_ = DocumentWeights(self.user_items_, self.weighting, self.bm25_k1,
                                        self.bm25_b)
        self.user_docs_ = self.weights_(self.user_items_)
        self.user_norms_ = column_norms(self.user_docs_.T)

    def _scores_for(self, users: np.ndarray, user_items: sp.csr_matrix | None
                    ) -> tuple[sp.csr_matrix, np.ndarray]:
        rows = self._history(users, user_items)
        docs = self.weights_(rows)
        norms = column_norms(docs.T)
        dense = (docs @ self.user_docs_.T).toarray()
        dense /= norms[:, None] * self.user_norms_[None, :] + max(self.shrinkage, 1e-12)
        if user_items is None:  # a training user is not their own neighbour
            dense[np.arange(len(users)), users] = 0.0
        neighbours = top_k_sparse(dense, self.n_neighbors)
        return rows, (neighbours @ self.user_items_).toarray()

    def _score_users(self, user_idx: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError  # _scores_for does the work

    def item_vectors(self) -> sp.csr_matrix:
        return self.user_docs_.T.tocsr()
