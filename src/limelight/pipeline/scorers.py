"""Scoring stage: one score per catalogue item for the user being served.

Which path answers depends on what is known about the user:

- a user the model was trained on, with no event since: the model's own scores (``model``);
- a user with events the model has not seen (live events, or a user new to the model):
  the model's fold-in of the current history when the model supports it (``fold_in``),
  otherwise similarity to the most recent items (``recent_knn``, added to the model's own
  standardised scores for a known user);
- a user with no history: popularity in the most specific group they belong to
  (``popular``: segment, region, demographics, then overall).

Items the model has never seen (cold items) are scored by content similarity to the user's
history, on the scale of the model's best scores, so a new item in a category the user loves
can still reach the list.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from limelight.models.base import Recommender
from limelight.pipeline.candidates import GroupPopularity
from limelight.pipeline.catalog import ItemCatalog, normalize_rows
from limelight.pipeline.context import Scored, UserContext
from limelight.pipeline.history import UserHistory

#: Most recent distinct items used by recent-history kNN and content profiles.
RECENT_ITEMS = 20
#: Dimensions of collaborative item vectors derived from a sparse representation.
COLLAB_DIMS = 64
#: Rank of the model score a perfect content match of a cold item is scaled to.
COLD_RANK = 10


class HybridScorer:
    """Scores every catalogue item for a user (see the module docstring for the paths).

    Parameters
    ----------
    model
        A fitted :class:`~limelight.models.base.Recommender`.
    catalog
        The serving catalogue (its first ``model.n_items_`` indices are the model's items).
    popularity
        Overall and per-group popularity for users without history.
    cold_weight
        Scale of content scores of cold items relative to the model's ``COLD_RANK``-th best
        score.
    random_state
        Seed for the reduction of sparse item vectors.
    """

    def __init__(self, model: Recommender, catalog: ItemCatalog, popularity: GroupPopularity,
                 *, cold_weight: float = 1.0, random_state: int = 0) -> None:
        model.check_fitted()
        self.model = model
        self.catalog = catalog
        self.popularity = popularity
        self.cold_weight = cold_weight
        self.n_model_items = int(model.n_items_)
        self.n_model_users = int(model.n_users_)
        self.supports_fold_in = bool(getattr(model, "supports_fold_in", False))
        self.item_vectors = collaborative_vectors(model, random_state=random_state)
        self._factors = _fold_in_factors(model)
        # sequence models score the user's ordered history, not an unordered row
        self._score_sequences = getattr(model, "score_sequences", None) \
            if self._factors is None and callable(getattr(model, "score_sequences", None)) \
            else None
        self._rows: dict[int, sp.csr_matrix] = {}  # training rows built so far
        # ALS-style models score a known user as user_vectors[u] @ factors.T: a subset of
        # items can then be scored without scoring the whole catalogue
        self._user_vectors = _als_user_vectors(model, self._factors)
        if self._factors is not None:
            # what fold_in builds once (ALS: its solver and the items' Gram matrix, ~10 ms on
            # 42k items) is paid here, as the version loads, not by the first live event
            self._fold_in_vector(sp.csr_matrix((1, self.n_model_items), dtype=np.float32))

    # -- public --------------------------------------------------------------------------------
    def score(self, user: UserContext) -> Scored:
        """Scores over the whole catalogue (float32, shape (n_items,)) and the path used."""
        history = user.history
        known = 0 <= user.model_row < self.n_model_users
        if not len(history.items) and not known:
            pop, group = self.popularity.scores(user.groups)
            return Scored(scores=pop.astype(np.float32), source="popular", group=group)
        if known and history.live_events == 0:
            base = self._model_scores(user.model_row, None)
            source = "model"
        elif self._score_sequences is not None:
            base = self._sequence_scores(history)
            source = "fold_in"
        elif self.supports_fold_in:
            base = self._model_scores(user.model_row if known else -1, self._row(history))
            source = "fold_in"
        else:
            knn = self._recent_knn(history)
            if known:
                base = _standardise(self._model_scores(user.model_row, None)) + _standardise(knn)
                source = "model+recent_knn"
            else:
                base = knn
                source = "recent_knn"
        scores = np.empty(self.catalog.n_items, dtype=np.float32)
        scores[:self.n_model_items] = base
        scores[self.n_model_items:] = -np.inf
        content_items = self._score_cold(scores, history.items)
        return Scored(scores=scores, source=source, content_items=content_items)

    def score_subset(self, user: UserContext, items: np.ndarray) -> tuple[np.ndarray, str] | None:
        """Scores of the given catalogue items only, when that is exact and cheaper than
        :meth:`score`: an ALS-style model and only items the model knows (a cold item's score
        depends on the model's best scores over the whole catalogue). None otherwise."""
        if self._factors is None or not len(items) or int(items.max()) >= self.n_model_items:
            return None
        history = user.history
        known = 0 <= user.model_row < self.n_model_users
        if not len(history.items) and not known:
            return None  # popularity answers
        if known and history.live_events == 0:
            if self._user_vectors is None:
                return None
            vector, source = self._user_vectors[user.model_row], "model"
        elif self.supports_fold_in:  # the same path as score()'s fold-in
            vector = self._fold_in_vector(self._row(history))
            source = "fold_in"
        else:
            return None
        return self._factors[items] @ vector, source

    def similar(self, item: int, n: int) -> tuple[np.ndarray, np.ndarray, str]:
        """Items most similar to catalogue item ``item``: collaborative vectors for items the
        model knows, content vectors otherwise. Returns (items, similarities, source)."""
        if item < self.n_model_items and self.item_vectors is not None and \
                np.any(self.item_vectors[item]):
            sims = np.full(self.catalog.n_items, -np.inf, dtype=np.float32)
            sims[:self.n_model_items] = self.item_vectors @ self.item_vectors[item]
            source = "model"
        else:
            sims = self.catalog.content @ self.catalog.content[item]
            source = "content"
        sims[item] = -np.inf
        from limelight.pipeline.candidates import candidate_pool

        found, values = candidate_pool(sims, n)
        return found, values, source

    # -- paths ---------------------------------------------------------------------------------
    def _model_scores(self, model_row: int, row: sp.csr_matrix | None) -> np.ndarray:
        if row is None and self._user_vectors is not None:
            # what ALS._score_users computes, without building the user's training row
            return (self._user_vectors[model_row:model_row + 1] @ self._factors.T)[0]
        if row is None:
            users = np.array([model_row], dtype=np.int64)
            return np.asarray(self.model._score_users(users, self._training_row(model_row)),
                              dtype=np.float32)[0]
        if self._factors is not None:
            # fold_in solves the user's vector from the given history (ALS-style models)
            vector = self._fold_in_vector(row)
            return self._factors @ vector
        users = np.array([max(model_row, 0)], dtype=np.int64)
        scores_for = getattr(self.model, "_scores_for", None)
        if scores_for is not None:  # fold-in models score from the given history here
            return np.asarray(scores_for(users, row)[1], dtype=np.float32)[0]
        return np.asarray(self.model._score_users(users, row), dtype=np.float32)[0]

    def _fold_in_vector(self, row: sp.csr_matrix) -> np.ndarray:
        """``model.fold_in(row)`` as a float32 vector."""
        return np.asarray(self.model.fold_in(row), dtype=np.float32).ravel()

    def _sequence_scores(self, history: UserHistory) -> np.ndarray:
        """A sequence model's next-item scores for the user's history in time order (repeats
        kept, as in training; items the model does not know left out)."""
        sequence = history.items[history.items < self.n_model_items]
        return np.asarray(self._score_sequences([sequence]), dtype=np.float32)[0]

    def _training_row(self, model_row: int) -> sp.csr_matrix:
        """The user's training row as a 1-row CSR view (scipy's fancy indexing is ~30x
        slower, which matters at hundreds of requests per second), built once per user:
        even the view's constructor costs a tenth of a millisecond."""
        row = self._rows.get(model_row)
        if row is None:
            if len(self._rows) >= 200_000:
                self._rows.clear()
            row = self._rows[model_row] = self._build_training_row(model_row)
        return row

    def _build_training_row(self, model_row: int) -> sp.csr_matrix:
        matrix = self.model.user_items_
        lo, hi = matrix.indptr[model_row], matrix.indptr[model_row + 1]
        return sp.csr_matrix((matrix.data[lo:hi], matrix.indices[lo:hi],
                              np.array([0, hi - lo], dtype=matrix.indptr.dtype)),
                             shape=(1, matrix.shape[1]), copy=False)

    def _row(self, history: UserHistory) -> sp.csr_matrix:
        """The history as one CSR row over the model's items (weights summed per item)."""
        in_model = history.items < self.n_model_items
        items = history.items[in_model]
        weights = history.weights[in_model]
        row = sp.csr_matrix((weights, (np.zeros(len(items), dtype=np.int64), items)),
                            shape=(1, self.n_model_items), dtype=np.float32)
        row.sum_duplicates()
        return row

    def _recent_knn(self, history: UserHistory) -> np.ndarray:
        recent = history.recent(RECENT_ITEMS)
        recent = recent[recent < self.n_model_items]
        if self.item_vectors is None or not len(recent):
            pop, _ = self.popularity.scores([])
            return pop[:self.n_model_items].astype(np.float32)
        # sum of cosines to each recent item == cosine-weighted dot with their summed vectors
        profile = self.item_vectors[recent].sum(axis=0)
        return self.item_vectors @ profile

    def _score_cold(self, scores: np.ndarray, history_items: np.ndarray) -> np.ndarray:
        n_cold = self.catalog.n_items - self.n_model_items
        if n_cold <= 0 or not len(history_items):
            return np.empty(0, dtype=np.int64)
        recent = history_items[-RECENT_ITEMS:]
        profile = self.catalog.content[recent].sum(axis=0)
        norm = float(np.linalg.norm(profile))
        if norm == 0:
            return np.empty(0, dtype=np.int64)
        sims = self.catalog.content[self.n_model_items:] @ (profile / norm)
        # a perfect content match lands around the model's COLD_RANK-th best score: cold items
        # enter a list on a strong match without pushing out the model's best picks
        scale = abs(self._anchor(scores[:self.n_model_items], history_items))
        scale = scale if scale != 0 else 1.0
        positive = sims > 0
        cold = scores[self.n_model_items:]
        np.multiply(sims, np.float32(scale * self.cold_weight), out=cold)
        cold[~positive] = -np.inf
        return np.flatnonzero(positive) + self.n_model_items

    @staticmethod
    def _anchor(model_scores: np.ndarray, history_items: np.ndarray) -> float:
        """The ``COLD_RANK``-th best model score among items outside the history (1.0 when
        there is none). History scores are masked in place and restored, so the only copy
        of the score vector is the one partial sort makes."""
        n = len(model_scores)
        k = min(COLD_RANK, n)
        if k <= 0:
            return 1.0
        seen = history_items[history_items < n]
        saved = model_scores[seen]
        model_scores[seen] = -np.inf
        try:
            anchor = float(np.partition(model_scores, n - k)[n - k])
        finally:
            model_scores[seen] = saved
        return anchor if np.isfinite(anchor) else 1.0


def collaborative_vectors(model: Recommender, *, random_state: int = 0) -> np.ndarray | None:
    """The model's item vectors as dense L2-normalised float32 rows (None when unavailable).

    Sparse or very wide representations (e.g. interaction columns) are reduced with a
    truncated SVD to :data:`COLLAB_DIMS` dimensions.
    """
    try:
        vectors = model.item_vectors()
    except (NotImplementedError, AttributeError):
        return None
    if vectors is None:
        return None
    if sp.issparse(vectors) or vectors.shape[1] > 4 * COLLAB_DIMS:
        n_items, width = vectors.shape
        k = min(COLLAB_DIMS, width - 1, n_items - 1)
        if k < 2:
            return None
        from sklearn.decomposition import TruncatedSVD

        matrix = sp.csr_matrix(vectors, dtype=np.float32)
        rng = np.random.default_rng(random_state)
        sample = np.sort(rng.choice(n_items, min(n_items, 5_000), replace=False))
        svd = TruncatedSVD(n_components=k, random_state=random_state).fit(matrix[sample])
        vectors = svd.transform(matrix)
    return normalize_rows(np.asarray(vectors, dtype=np.float32))


def _als_user_vectors(model: Recommender, factors: np.ndarray | None) -> np.ndarray | None:
    """float32 user vectors when ``model`` scores exactly as ALS does (``vectors[u] @
    factors.T``), else None."""
    from limelight.models.als import ALS

    if factors is None or not isinstance(model, ALS) or \
            type(model)._score_users is not ALS._score_users:
        return None
    vectors = np.asarray(model.scoring_factors_, dtype=np.float32)
    return vectors if vectors.ndim == 2 and len(vectors) == model.n_users_ else None


def _fold_in_factors(model: Recommender) -> np.ndarray | None:
    """Item factors matching ``model.fold_in``'s user vectors, when the model has both."""
    if not callable(getattr(model, "fold_in", None)):
        return None
    factors = getattr(model, "item_factors_", None)
    if factors is None:
        return None
    factors = np.asarray(factors, dtype=np.float32)
    return factors if factors.ndim == 2 and factors.shape[0] == model.n_items_ else None


def _standardise(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    if not finite.any():
        return values.astype(np.float32)
    mean = float(values[finite].mean())
    std = float(values[finite].std()) or 1.0
    return ((values - mean) / std).astype(np.float32)
