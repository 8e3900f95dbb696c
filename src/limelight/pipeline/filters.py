"""Filter stage: business rules applied to the score vector in place.

A filter sets the score of every item it rules out to ``-inf`` (boost/bury move scores
instead). Each is a small callable ``filter(scores, user, request, items=None)``; the builder
chains them. With ``items`` (catalogue indices), ``scores`` holds the scores of those items
only (a user's cached candidates, see :mod:`limelight.pipeline.topcache`); a filter whose
effect on a subset is the same as on the whole catalogue says so with ``subset_exact``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from limelight.pipeline.catalog import ItemCatalog
from limelight.pipeline.context import RecRequest, UserContext


class SeenFilter:
    """Leave out items already in the user's history (when the request asks for it), and
    always the items the user hid or marked not interested."""

    subset_exact = True

    def __call__(self, scores: np.ndarray, user: UserContext, request: RecRequest,
                 items: np.ndarray | None = None) -> None:
        for ruled_out, applies in ((user.history.items, request.exclude_seen),
                                   (user.hidden_items, True)):
            if applies and len(ruled_out):
                if items is None:
                    scores[ruled_out] = -np.inf
                else:
                    scores[_members(items, ruled_out)] = -np.inf


class StockFilter:
    """Leave out items marked out of stock."""

    def __init__(self, catalog: ItemCatalog) -> None:
        self.in_stock = catalog.in_stock
        self.out_of_stock = np.flatnonzero(~catalog.in_stock)

    subset_exact = True

    def __call__(self, scores: np.ndarray, user: UserContext, request: RecRequest,
                 items: np.ndarray | None = None) -> None:
        if not len(self.out_of_stock):
            return
        if items is None:
            scores[self.out_of_stock] = -np.inf
        else:
            scores[~self.in_stock[items]] = -np.inf


class CategoryFilter:
    """Keep only ``request.categories`` (when given); drop ``request.exclude_categories`` and
    the categories the user said they are not interested in."""

    def __init__(self, catalog: ItemCatalog) -> None:
        self.catalog = catalog

    subset_exact = True

    def __call__(self, scores: np.ndarray, user: UserContext, request: RecRequest,
                 items: np.ndarray | None = None) -> None:
        if request.categories:
            keep = self.catalog.category_mask(request.categories)
            scores[~(keep if items is None else keep[items])] = -np.inf
        blocked = [*request.exclude_categories, *user.blocked_categories]
        if blocked:
            drop = self.catalog.category_mask(blocked)
            scores[drop if items is None else drop[items]] = -np.inf


class PriceFilter:
    """Keep items priced within [min_price, max_price]; unpriced items fail a price bound."""

    def __init__(self, catalog: ItemCatalog) -> None:
        self.price = catalog.price

    subset_exact = True

    def __call__(self, scores: np.ndarray, user: UserContext, request: RecRequest,
                 items: np.ndarray | None = None) -> None:
        if request.min_price is None and request.max_price is None:
            return
        price = self.price if items is None else self.price[items]
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(price)
            if request.min_price is not None:
                ok &= price >= request.min_price
            if request.max_price is not None:
                ok &= price <= request.max_price
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
        # the shift depends on the range of every eligible score: a subset cannot know it
        self.subset_exact = not len(self.boost) and not len(self.bury)

    def __call__(self, scores: np.ndarray, user: UserContext, request: RecRequest,
                 items: np.ndarray | None = None) -> None:
        if not len(self.boost) and not len(self.bury):
            return
        if items is not None:
            raise ValueError("boost/bury lists need the whole score vector")
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


def _members(items: np.ndarray, values: np.ndarray) -> np.ndarray:
    """bool per item: is it in ``values``? (a sorted search: ~10x cheaper than ``np.isin``
    for a few hundred candidates)"""
    ordered = np.sort(values)
    at = np.minimum(np.searchsorted(ordered, items), len(ordered) - 1)
    return ordered[at] == items
