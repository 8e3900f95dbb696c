"""Two-stage ranking: fast candidate retrieval, then a learned re-ranker.

Stage one asks a cheap retrieval model (ALS, item-kNN, popularity ... any registered model)
for each user's top ``n_candidates``. Stage two re-scores only those candidates, either with a
gradient-boosted ranker over user / item / pair features or with a factorization machine.

How the ranker learns without peeking: the latest ``label_fraction`` of each user's events
are cut off, the retriever is fitted on the rest, and its candidates become training rows
labelled by whether the user went on to interact with them. The retriever is then refitted
on all the data for serving, so the ranker sees the same kind of candidates it was trained on.

Pair features: the retriever's score and rank, item popularity, user activity, the affinity
between the user's history and the item over item features (categories, tags), and the user's
and the item's own features when they are narrow enough to pass as dense columns.

Scores returned by :meth:`TwoStageRanker.score`: ``1 + p`` for candidates (``p`` the ranker's
probability or the FM score squashed to (0, 1)), and values in (-1, 0] in retrieval order for
every other item, so candidates always come first and full-catalogue calls stay meaningful.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from limelight.models.base import Recommender
from limelight.models.similarity import binarize, row_normalize

if TYPE_CHECKING:
    from limelight.data.dataset import Dataset

#: Side-feature matrices up to this many columns are passed to the ranker as dense columns.
MAX_DENSE_FEATURES = 64


class TwoStageRanker(Recommender):
    """Candidates from a retrieval model, re-ranked by gradient boosting or an FM.

    Parameters
    ----------
    retriever
        Registry name of the candidate model (``"als"``, ``"item_knn"``, ``"popularity"`` ...).
    retriever_params
        Its hyperparameters.
    ranker
        ``"gbdt"`` (scikit-learn's HistGradientBoostingClassifier) or ``"fm"``
        (:class:`~limelight.models.fm.FactorizationMachine` scores the candidates).
    ranker_params
        Hyperparameters of the ranker.
    n_candidates
        Candidates per user from stage one.
    label_fraction
        Share of each user's latest events used as labels when training the ranker.
    random_state
        Seed of the ranker.

    Example
    -------
    >>> model = TwoStageRanker(retriever="als", n_candidates=100).fit(dataset)  # doctest: +SKIP
    >>> items, scores = model.recommend([0, 1], n=10)                           # doctest: +SKIP
    """

    supports_fold_in: ClassVar[bool] = True

    def __init__(self, retriever: str = "als", retriever_params: dict[str, Any] | None = None,
                 ranker: str = "gbdt", ranker_params: dict[str, Any] | None = None,
                 n_candidates: int = 100, label_fraction: float = 0.2,
                 random_state: int | None = 0) -> None:
        self.retriever = retriever
        self.retriever_params = retriever_params
        self.ranker = ranker
        self.ranker_params = ranker_params
        self.n_candidates = n_candidates
        self.label_fraction = label_fraction
        self.random_state = random_state

    # -- training ---------------------------------------------------------------------------
    def _fit(self, dataset: Dataset) -> None:
        if self.ranker not in ("gbdt", "fm"):
            raise ValueError(f"ranker must be 'gbdt' or 'fm', got {self.ranker!r}")
        if not 0 < self.label_fraction < 1:
            raise ValueError(f"label_fraction must be in (0, 1), got {self.label_fraction}")
        if self.ranker == "fm":
            from limelight.models.fm import FactorizationMachine

            params = {"random_state": self.random_state, **(self.ranker_params or {})}
            self.ranker_ = FactorizationMachine(**params).fit(dataset)
        else:
            self.ranker_ = self._fit_gbdt(dataset)
        self.retriever_ = self._new_retriever().fit(dataset)
        self._side_statistics(dataset)

    def _new_retriever(self) -> Recommender:
        from limelight.models.registry import create

        return create(self.retriever, **(self.retriever_params or {}))

    def _fit_gbdt(self, dataset: Dataset) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier

        early, labels = _label_cut(dataset, self.label_fraction)
        retriever = self._new_retriever().fit(early)
        self._side_statistics(early)
        users = np.flatnonzero(np.diff(labels.indptr) > 0)
        features, targets = [], []
        for start in range(0, len(users), 512):
            batch = users[start:start + 512]
            rows = early.interactions[batch].tocsr()
            cand, scores = self._candidates(retriever, batch, rows, None)
            features.append(self._pair_features(batch, rows, cand, scores))
            hit = np.asarray(labels[batch[:, None], np.maximum(cand, 0)].todense()) > 0
            targets.append((hit & (cand >= 0)).ravel())
        x = np.concatenate(features) if features else np.zeros((0, 1))
        y = np.concatenate(targets) if targets else np.zeros(0, bool)
        params = {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 31,
                  "early_stopping": "auto", "random_state": self.random_state,
                  **(self.ranker_params or {})}
        model = HistGradientBoostingClassifier(**params)
        if y.any() and not y.all():
            model.fit(x, y)
        else:  # nothing to learn from: rank by the retriever alone
            model = None
        self.n_training_pairs_ = len(y)
        return model

    def _side_statistics(self, dataset: Dataset) -> None:
        """Per-item and per-user quantities the pair features read."""
        binary = binarize(dataset.interactions)
        self.item_popularity_ = np.log1p(np.asarray(binary.sum(axis=0)).ravel())
        self.item_features_ = _normalised_rows(dataset.item_features)
        self.user_dense_ = _dense_or_none(dataset.user_features)
        self.item_dense_ = _dense_or_none(dataset.item_features)

    # -- stage one and features -------------------------------------------------------------
    def _candidates(self, retriever: Recommender, users: np.ndarray, rows: sp.csr_matrix,
                    allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        n = min(self.n_candidates, retriever.n_items_)
        return retriever.recommend(users, n=n, exclude_seen=True, candidates=allowed,
                                   user_items=rows)

    def _pair_features(self, users: np.ndarray, rows: sp.csr_matrix, cand: np.ndarray,
                       scores: np.ndarray) -> np.ndarray:
        """Rows of (user, candidate) features, shape (len(users) * n_candidates, n_features)."""
        n_users, width = cand.shape
        safe = np.maximum(cand, 0)
        finite = np.where(np.isfinite(scores), scores, np.nan)
        columns = [finite.ravel(),
                   np.tile(np.arange(width, dtype=np.float64), n_users),
                   self.item_popularity_[safe].ravel(),
                   np.repeat(np.log1p(np.diff(rows.indptr)), width)]
        if self.item_features_ is not None:
            # cosine between the user's history profile and the item, over item features
            profile = _normalised_rows(rows @ self.item_features_)
            columns.append(_pair_dot(profile, self.item_features_, safe))
        parts = [np.column_stack(columns)]
        if self.user_dense_ is not None:
            in_range = np.clip(users, 0, self.user_dense_.shape[0] - 1)
            user_rows = np.where((users < self.user_dense_.shape[0])[:, None],
                                 self.user_dense_[in_range], 0.0)
            parts.append(np.repeat(user_rows, width, axis=0))
        if self.item_dense_ is not None:
            parts.append(self.item_dense_[safe.ravel()])
        return np.concatenate(parts, axis=1).astype(np.float32)

    # -- scoring ----------------------------------------------------------------------------
    def _score_users(self, user_idx: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        rows = sp.csr_matrix(user_items)
        cand, first = self._candidates(self.retriever_, user_idx, rows, None)
        dense = self.retriever_._score_users(user_idx, rows).astype(np.float64)
        order = np.argsort(-dense, axis=1, kind="stable")
        out = np.empty_like(dense)
        ranks = np.broadcast_to(-np.arange(dense.shape[1]) / dense.shape[1], dense.shape)
        np.put_along_axis(out, order, ranks, axis=1)
        second = self._rerank(user_idx, rows, cand, first)
        r, c = np.nonzero(cand >= 0)
        out[r, cand[r, c]] = 1.0 + second[r, c]
        return out.astype(np.float32)

    def _rerank(self, users: np.ndarray, rows: sp.csr_matrix, cand: np.ndarray,
                first: np.ndarray) -> np.ndarray:
        """Stage-two scores in (0, 1) of each candidate, shape like ``cand``."""
        if self.ranker == "fm":
            known = users < self.ranker_.n_users_
            raw = np.zeros(cand.shape)
            if known.any():
                full = self.ranker_.score(users[known], np.maximum(cand[known], 0))
                raw[known] = full
            return 1.0 / (1.0 + np.exp(-raw))
        if self.ranker_ is None:
            return np.linspace(1.0, 0.0, cand.shape[1], endpoint=False)[None, :].repeat(
                len(users), axis=0)
        x = self._pair_features(users, rows, cand, first)
        return self.ranker_.predict_proba(x)[:, 1].reshape(cand.shape)

    def item_vectors(self) -> np.ndarray | sp.spmatrix:
        self.check_fitted()
        return self.retriever_.item_vectors()


def _label_cut(dataset: Dataset, fraction: float) -> tuple[Dataset, sp.csr_matrix]:
    """(the dataset without each user's latest ``fraction`` of events, those events as a
    binary user x item matrix). Users with fewer than 3 events keep them all."""
    from limelight.models.fm_validation import temporal_holdout

    log = dataset.log
    users = log["user_idx"].to_numpy(np.int64)
    is_label = np.zeros(len(users), dtype=bool)
    is_label[temporal_holdout(users, fraction, round_up=True)[1]] = True
    is_label &= log["weight"].to_numpy() > 0
    labels = sp.csr_matrix((np.ones(int(is_label.sum()), np.float32),
                            (users[is_label], log["item_idx"].to_numpy(np.int64)[is_label])),
                           shape=dataset.interactions.shape)
    return dataset.restrict(~is_label), labels


def _normalised_rows(matrix: sp.spmatrix | None) -> sp.csr_matrix | None:
    """Rows at unit L2 norm; None without features."""
    if matrix is None or matrix.shape[1] == 0:
        return None
    return row_normalize(matrix, "l2")


def _pair_dot(left: sp.csr_matrix, right: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """``left[u] . right[items[u, j]]`` for every (u, j), flattened row-major."""
    out = np.empty(items.size)
    width = items.shape[1]
    for u in range(items.shape[0]):
        out[u * width:(u + 1) * width] = np.asarray(
            (right[items[u]] @ left[u].T).todense()).ravel()
    return out


def _dense_or_none(matrix: sp.spmatrix | None) -> np.ndarray | None:
    if matrix is None or not 0 < matrix.shape[1] <= MAX_DENSE_FEATURES:
        return None
    return np.asarray(matrix.todense(), dtype=np.float32)
