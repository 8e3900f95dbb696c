"""Filter stage: business rules applied to the score vector in place.

A filter sets the score of every item it rules out to ``-inf`` (boost/bury move scores
instead). Each is a small callable ``filter(scores, user, request)``; the builder chains them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from limelight.pipeline.catalog import ItemCatalog
from limelight.pipeline.context import RecRequest, UserContext


class SeenFilter:
    """Leave out items already in the user's history (when the request asks for it), and
    always the items the user hid or marked not interested."""

    def __call__(self, scores: np.ndarray, user: UserContext, request: RecRequest) -> None:
        if request.exclude_seen and len(user.history.items):
            scores[user.history.items] = -np.inf
        if len(user.hidden_items):
            scores[user.hidden_items] = -np.inf


class StockFilter:
    """Leave out items marked out of stock."""

    def __init__(self, catalog: ItemCatalog) -> None:
        self.out_of_stock = np.flatnonzero(~catalog.in_stock)

    def __call__(self, scores: np.ndarray, user: UserContext, request: RecRequest) -> None:
        if len(self.out_of_stock):
            scores[self.out_of_stock] = -np.inf


class CategoryFilter:
    """Keep only ``request.categories`` (when given); drop ``request.exclude_categories`` and
    the categories the user said they are not interested in."""

    def __init__(self, catalog: ItemCatalog) -> None:
        self.catalog = catalog

    def __call__(self, scores: np.ndarray, user: UserContext, request: RecRequest) -> None:
        if request.categories:
            scores[~self.catalog.category_mask(request.categories)] = -np.inf
        blocked = [*request.exclude_categories, *user.blocked_categories]
        if blocked:
            scores[self.catalog.category_mask(blocked)] = -np.inf


class PriceFilter:
    """Keep items priced within [min_price, max_price]; unpriced items fail a price bound."""

    def __init__(self, catalog: ItemCatalog) -> None:
        self.price = catalog.price

    def __call__(self, scores: np.ndarray, user: UserContext, request: RecRequest) -> None:
        if request.min_price is None and request.max_price is None:
            return
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(self.price)
            if request.min_price is not None:
                ok &= self.price >= request.min_price
            if request.max_price is not None:
                ok &= self.price <= request.max_price
        scores[~ok] = -np.inf


class BoostBuryFilter:
    """Move boosted items above and buried items below every other eligible item.

    Items already ruled out by an earlier filter stay out. The relative order within the
    boosted (or buried) items follows their own scores.
    """

    def __init__(self, catalog: ItemCatalog, boost: Sequence[str] = (),
                 bury: Sequence[str] = ()) -> None:
        self.boost = _known(catalog, boost)
        self.bury = _known(catalog, bury)

    def __call__(self, scores: np.ndarray, user: UserContext, request: RecRequest) -> None:
        if not len(self.boost) and not len(self.bury):
            return
        finite = np.isfinite(scores)
        if not finite.any():
            return
        lo, hi = float(scores[finite].min()), float(scores[finite].max())
        span = (hi - lo) or 1.0
        for items, shift in ((self.boost, span + 1.0), (self.bury, -(span + 1.0))):
            if len(items):
                ok = items[finite[items]]
                scores[ok] += np.float32(shift)


def _known(catalog: ItemCatalog, ids: Sequence[str]) -> np.ndarray:
    idx = catalog.items.index(list(ids), missing="ignore")
    return idx[idx >= 0]
