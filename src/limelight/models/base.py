"""The Recommender contract shared by every model.

Models see integer user/item indices and CSR matrices only (see :mod:`limelight.data.vocab`);
the :class:`~limelight.data.dataset.Dataset` they are fitted on carries the vocabularies, and
results are mapped back to external ids at the edge.

Conventions (scikit-learn's): ``__init__`` stores hyperparameters unchanged; ``fit`` returns
``self``; learned state ends in ``_``; every other method checks that the model is fitted.
"""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from limelight.errors import ArtifactError, NotFittedError

if TYPE_CHECKING:
    from limelight.data.dataset import Dataset

ARTIFACT_FORMAT = 1


class Recommender:
    """Base of every model.

    Subclasses implement :meth:`_fit` and :meth:`_score_users` (dense scores of users over
    items); :meth:`recommend`, :meth:`score`, :meth:`similar_items` and persistence come from
    here and may be overridden where a model has a faster path.
    """

    #: True when the model can recommend for users absent from training given their history.
    supports_fold_in: ClassVar[bool] = False

    # -- parameters -------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        sig = inspect.signature(type(self).__init__)
        return {n: getattr(self, n) for n in sig.parameters if n != "self" and hasattr(self, n)}

    def set_params(self, **params: Any) -> Recommender:
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {key!r}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, dataset: Dataset) -> Recommender:
        """Learn from ``dataset``; returns ``self``."""
        self.n_users_, self.n_items_ = dataset.interactions.shape
        # no copy when the matrix already is CSR float32 (large matrices, fit-time parity)
        self.user_items_ = dataset.interactions.tocsr().astype(np.float32, copy=False)
        self._fit(dataset)
        return self

    def _fit(self, dataset: Dataset) -> None:
        raise NotImplementedError

    def check_fitted(self) -> None:
        if not hasattr(self, "user_items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(dataset) first")

    # -- scoring ----------------------------------------------------------------------------
    def _score_users(self, user_idx: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        """Dense scores, shape (len(user_idx), n_items). ``user_items`` are those users' rows."""
        raise NotImplementedError

    def _scores_for(self, users: np.ndarray, user_items: sp.csr_matrix | None
                    ) -> tuple[sp.csr_matrix, np.ndarray]:
        """(history rows, dense scores) of ``users``; fold-in models override this to use
        ``user_items`` (when given) instead of their stored user state."""
        rows = self._history(users, user_items)
        history = getattr(self, "scoring_history_", None)
        if user_items is None and history is not None:
            return rows, self._score_history(users, history[users])
        return rows, self._score_users(users, rows)

    def _score_history(self, user_idx: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """Scores from recency-weighted training rows (models that transform their inputs,
        e.g. binarise them, override this to use the rows as they are)."""
        return self._score_users(user_idx, history)

    def _set_scoring_history(self, dataset: Dataset, half_life: float | None, *,
                             binary: bool = False) -> None:
        """Score training users from recency-weighted rows: a user's ``k``-th most recent
        interaction (``k = 0`` the latest, order of :attr:`Dataset.log`) weighs
        ``0.5 ** (k / half_life)`` times its weight. None keeps the plain rows."""
        if half_life is None:
            self.scoring_history_ = None
            return
        if half_life <= 0:
            raise ValueError(f"history_half_life must be positive, got {half_life}")
        self.scoring_history_ = recency_weighted(dataset, half_life, binary=binary)

    def score(self, user_ids: np.ndarray | int, item_ids: np.ndarray | int,
              *, user_items: sp.csr_matrix | None = None) -> np.ndarray:
        """Scores of users for items.

        Parameters
        ----------
        user_ids
            User indices, shape (n,) or a scalar.
        item_ids
            Item indices, shape (m,) -- the same items for every user -- or (n, m).
        user_items
            Current history rows for these users (fold-in); defaults to the training rows.

        Returns
        -------
        numpy.ndarray
            Shape (n, m) float32.
        """
        self.check_fitted()
        users = np.atleast_1d(np.asarray(user_ids, dtype=np.int64))
        items = np.asarray(item_ids, dtype=np.int64)
        _, dense = self._scores_for(users, user_items)
        if items.ndim <= 1:
            return dense[:, np.atleast_1d(items)].astype(np.float32, copy=False)
        return np.take_along_axis(dense, items, axis=1).astype(np.float32, copy=False)

    def recommend(self, user_ids: np.ndarray | int, n: int = 10, *, exclude_seen: bool = True,
                  candidates: np.ndarray | None = None,
                  user_items: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items per user.

        Parameters
        ----------
        user_ids
            User indices, shape (u,) or a scalar.
        n
            List length; fewer come back (padded with -1 / -inf) when too few items qualify.
        exclude_seen
            Leave out items in the user's history.
        candidates
            Item indices to choose from (shape (c,)); all items when None.
        user_items
            Current history rows for these users; defaults to their training rows.

        Returns
        -------
        (item_ids, scores)
            Both shape (u, n); item_ids int64, scores float32, best first.
        """
        self.check_fitted()
        users = np.atleast_1d(np.asarray(user_ids, dtype=np.int64))
        rows, scores = self._scores_for(users, user_items)
        return masked_top(np.array(scores, dtype=np.float32, copy=True), n, candidates,
                          rows if exclude_seen else None)

    def similar_items(self, item_ids: np.ndarray | int, n: int = 10
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Most similar items (cosine of item representations), the item itself left out."""
        self.check_fitted()
        items = np.atleast_1d(np.asarray(item_ids, dtype=np.int64))
        vectors = self.item_vectors()
        norms = np.linalg.norm(vectors, axis=1) if not sp.issparse(vectors) else np.sqrt(
            np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        query = vectors[items]
        sims = query @ vectors.T
        sims = np.asarray(sims.todense() if sp.issparse(sims) else sims, dtype=np.float32)
        sims /= norms[items][:, None] * norms[None, :]
        sims[np.arange(len(items)), items] = -np.inf
        return top_n(sims, n)

    def item_vectors(self) -> np.ndarray | sp.spmatrix:
        """Item representations used by :meth:`similar_items` (default: interaction columns)."""
        return self.user_items_.T.tocsr()

    def _history(self, users: np.ndarray, user_items: sp.csr_matrix | None) -> sp.csr_matrix:
        if user_items is not None:
            if user_items.shape != (len(users), self.n_items_):
                raise ValueError(
                    f"user_items must have shape ({len(users)}, {self.n_items_}), "
                    f"got {user_items.shape}")
            return sp.csr_matrix(user_items, dtype=np.float32)
        if len(users) and (users.min() < 0 or users.max() >= self.n_users_):
            from limelight.errors import UnknownIdError

            raise UnknownIdError("user index", users[(users < 0) | (users >= self.n_users_)][:10])
        return self.user_items_[users]

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fitted model to ``path`` (a single file)."""
        self.check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with tmp.open("wb") as fh:
            pickle.dump({"format": ARTIFACT_FORMAT, "class": type(self).__qualname__,
                         "module": type(self).__module__, "model": self}, fh,
                        protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)  # atomic: a reader never sees half a file
        return path

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Read a model written by :meth:`save`; checks that it is a ``cls``."""
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"no model artifact at {path}")
        try:
            with path.open("rb") as fh:
                payload = pickle.load(fh)
        except Exception as exc:  # pickle raises many kinds on a corrupt file
            raise ArtifactError(f"cannot read model artifact {path}: {exc}") from exc
        if not isinstance(payload, dict) or payload.get("format") != ARTIFACT_FORMAT:
            raise ArtifactError(f"{path} is not a Limelight model artifact")
        model = payload["model"]
        if not isinstance(model, cls):
            raise ArtifactError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model


class FactorModel(Recommender):
    """A model whose scores are user vectors times ``item_factors_`` (ALS, BPR).

    Subclasses implement :meth:`_user_vectors`; scoring and :meth:`user_vectors` (what an
    index over the item factors, :mod:`limelight.models.ann`, searches with) come from here.
    """

    def user_vectors(self, users: np.ndarray, user_items: sp.csr_matrix | None = None
                     ) -> np.ndarray:
        """Vectors whose product with ``item_factors_`` are the users' scores; from
        ``user_items`` (their current histories) when given and the model folds in."""
        self.check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        return self._user_vectors(users, self._history(users, user_items), user_items is None)

    def _user_vectors(self, users: np.ndarray, rows: sp.csr_matrix, trained: bool
                      ) -> np.ndarray:
        """Vectors of ``users`` whose history rows are ``rows``; ``trained`` when those are
        the training rows (no fold-in needed)."""
        raise NotImplementedError

    def _scores_for(self, users: np.ndarray, user_items: sp.csr_matrix | None
                    ) -> tuple[sp.csr_matrix, np.ndarray]:
        rows = self._history(users, user_items)
        return rows, self._user_vectors(users, rows, user_items is None) @ self.item_factors_.T


def recency_weighted(dataset: Dataset, half_life: float, *, binary: bool = False
                     ) -> sp.csr_matrix:
    """Interaction matrix whose entries decay with their rank from the end of each user's
    history (see :meth:`Recommender._set_scoring_history`). Falls back to the plain matrix
    when the dataset has no event log. ``binary`` decays 1 instead of each event's weight."""
    log = dataset.log
    if not len(log):
        matrix = dataset.interactions.tocsr().astype(np.float32)
        if binary:
            matrix.data = (matrix.data > 0).astype(np.float32)
        return matrix
    users = log["user_idx"].to_numpy()
    after_last = np.searchsorted(users, users, side="right")
    rank_from_end = after_last - 1 - np.arange(len(users))
    base = log["weight"].to_numpy(np.float64)
    if binary:
        base = (base > 0).astype(np.float64)
    weights = base * np.power(0.5, rank_from_end / half_life)
    matrix = sp.csr_matrix((weights.astype(np.float32), (users, log["item_idx"].to_numpy())),
                           shape=dataset.interactions.shape)
    matrix.sum_duplicates()
    return matrix


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-``n`` of a dense score matrix, best first; -inf entries come back as -1.

    Returns (indices int64, scores float32), both shape (rows, min(n, n_cols)).
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    scores = np.atleast_2d(scores)
    k = min(n, scores.shape[1])
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1).astype(np.int64)
    best = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    idx[~np.isfinite(best) & (best < 0)] = -1
    return idx, best


def masked_top(scores: np.ndarray, n: int, candidates: np.ndarray | None,
                seen: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n`` of ``scores`` (rows of users) with items outside ``candidates`` and the
    ``seen`` entries of each row set to -inf (in place when ``scores`` is float32)."""
    scores = np.asarray(scores, dtype=np.float32)
    if candidates is not None:
        mask = np.full(scores.shape[1], True)
        mask[np.asarray(candidates, dtype=np.int64)] = False
        scores[:, mask] = -np.inf
    if seen is not None:
        coo = seen.tocoo()
        scores[coo.row, coo.col] = -np.inf
    return top_n(scores, n)
