"""Content-based recommendations from item features (categories, tags, text TF-IDF).

Item vectors are the dataset's ``item_features`` re-weighted by inverse document frequency and
L2-normalised; a user's profile is the weighted mean of the vectors of the items they
interacted with, and items are scored by cosine to that profile. Items nobody has interacted
with yet have vectors too, so they can be recommended from day one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy.sparse as sp

from limelight.errors import SchemaError
from limelight.models.base import Recommender
from limelight.models.similarity import row_normalize

if TYPE_CHECKING:
    from limelight.data.dataset import Dataset


class ContentBased(Recommender):
    """Profile-to-item cosine over item side features.

    Parameters
    ----------
    idf
        Re-weight feature columns by ``log((1 + n_items) / (1 + df)) + 1`` so rare tags count
        more than common ones.
    feature_prefixes
        Only use feature columns whose name starts with one of these (e.g.
        ``("category=", "tag=")``); None = all.
    negative_weight
        Multiplier of negatively weighted interactions (e.g. ``not_interested``) in the profile;
        0 ignores them.

    Example
    -------
    >>> ContentBased().fit(dataset).recommend([0], n=10)  # doctest: +SKIP
    """

    supports_fold_in: ClassVar[bool] = True

    def __init__(self, idf: bool = True, feature_prefixes: tuple[str, ...] | None = None,
                 negative_weight: float = 1.0) -> None:
        self.idf = idf
        self.feature_prefixes = feature_prefixes
        self.negative_weight = negative_weight

    def _fit(self, dataset: Dataset) -> None:
        features = dataset.item_features
        if features is None or features.shape[1] == 0:
            raise SchemaError("the content model needs item features: build the dataset with "
                              "with_features=True and items that have categories, tags or text")
        features = sp.csr_matrix(features, dtype=np.float32)
        if features.shape[0] != self.n_items_:
            raise SchemaError(f"item_features has {features.shape[0]} rows, the dataset "
                              f"{self.n_items_} items")
        if self.feature_prefixes is not None:
            names = dataset.item_feature_names
            keep = [j for j, name in enumerate(names) if name.startswith(
                tuple(self.feature_prefixes))]
            features = features[:, keep]
        if self.idf:
            df = np.bincount(features.indices, minlength=features.shape[1])
            idf = np.log((1.0 + features.shape[0]) / (1.0 + df)) + 1.0
            features = features @ sp.diags(idf.astype(np.float32))
        self.item_matrix_ = row_normalize(features, norm="l2")

    def profiles(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        """User profiles (weighted mean item vector), shape (n_users, n_features)."""
        self.check_fitted()
        weights = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
        weights.data = np.where(weights.data < 0, weights.data * self.negative_weight,
                                weights.data)
        return row_normalize(weights, norm="l1") @ self.item_matrix_

    def _score_users(self, user_idx: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return (self.profiles(user_items) @ self.item_matrix_.T).toarray()

    def item_vectors(self) -> sp.csr_matrix:
        return self.item_matrix_
