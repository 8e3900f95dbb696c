"""Re-ranking stage: reorder a candidate pool (best first) before it is cut to ``n``.

- :class:`NoveltyReranker` adds a bonus to less popular items (against the Matthew effect);
- :class:`MMRReranker` trades relevance for diversity (maximal marginal relevance, lambda);
- :class:`CategoryCapReranker` limits how many items of one primary category make the list.

Each takes and returns ``(items, scores)`` of the same pool; the scores returned are the
ranking criterion of that stage, the original relevance is kept by the builder.
"""

from __future__ import annotations

import numpy as np

from limelight.pipeline.catalog import ItemCatalog
from limelight.pipeline.context import RecRequest


def minmax(values: np.ndarray) -> np.ndarray:
    """Values scaled to [0, 1] (all ones when constant)."""
    values = np.asarray(values, dtype=np.float32)
    if not len(values):
        return values
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 1e-12:
        return np.ones_like(values)
    return (values - lo) / (hi - lo)


class NoveltyReranker:
    """Relevance (min-max scaled) plus ``request.novelty`` times the item's novelty.

    Novelty is the self-information ``-log2(share of interactions)``, scaled to [0, 1] over the
    catalogue, so weight 1 lets an obscure item outrank a somewhat more relevant blockbuster.
    """

    def __init__(self, catalog: ItemCatalog) -> None:
        pop = catalog.popularity.astype(np.float64)
        share = (pop + 1.0) / (pop.sum() + len(pop))
        info = -np.log2(share)
        self.novelty = minmax(info).astype(np.float32)

    def __call__(self, items: np.ndarray, scores: np.ndarray, request: RecRequest
                 ) -> tuple[np.ndarray, np.ndarray]:
        if request.novelty <= 0 or not len(items):
            return items, scores
        mixed = minmax(scores) + np.float32(request.novelty) * self.novelty[items]
        order = np.argsort(-mixed, kind="stable")
        return items[order], mixed[order]


class MMRReranker:
    """Maximal marginal relevance over item vectors.

    Picks greedily ``argmax (1 - lambda) * rel(i) - lambda * max_{j picked} sim(i, j)`` where
    ``rel`` is the min-max scaled score and ``sim`` the cosine of the item vectors
    (``lambda = request.diversity``; 0 keeps the relevance order).

    Parameters
    ----------
    vectors
        float32, shape (n_items, d), L2-normalised rows (content or collaborative vectors).
    """

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def __call__(self, items: np.ndarray, scores: np.ndarray, request: RecRequest
                 ) -> tuple[np.ndarray, np.ndarray]:
        lam = float(request.diversity)
        if lam <= 0 or len(items) <= 2:
            return items, scores
        rel = minmax(scores)
        vecs = self.vectors[items]
        sims = vecs @ vecs.T
        k = min(request.n, len(items))
        picked: list[int] = []
        # lambda * max(sim) == max(lambda * sim) for lambda > 0: the penalty is scaled once
        penalties = lam * sims
        max_penalty = np.full(len(items), -np.inf, dtype=np.float32)
        marginal = np.empty(len(items), dtype=np.float32)
        gain = rel.copy()
        weighted_rel = (1.0 - lam) * rel
        for _ in range(k):
            best = int(gain.argmax())
            picked.append(best)
            marginal[best] = gain[best]
            weighted_rel[best] = -np.inf  # a picked item's gain stays -inf from now on
            np.maximum(max_penalty, penalties[best], out=max_penalty)
            np.subtract(weighted_rel, max_penalty, out=gain)
        available = np.ones(len(items), dtype=bool)
        available[picked] = False
        rest = np.flatnonzero(available)  # keep relevance order after the picked ones
        order = np.concatenate([np.asarray(picked, dtype=np.int64), rest])
        marginal[rest] = rel[rest] - 1.0  # below every picked item
        return items[order], marginal[order]


class CategoryCapReranker:
    """At most ``request.max_per_category`` items per primary category at the top of the list;
    items over the cap move behind the others (kept, in order, in case the list runs short)."""

    def __init__(self, catalog: ItemCatalog) -> None:
        self.primary = catalog.primary_category

    def __call__(self, items: np.ndarray, scores: np.ndarray, request: RecRequest
                 ) -> tuple[np.ndarray, np.ndarray]:
        cap = request.max_per_category
        if not cap or not len(items):
            return items, scores
        counts: dict[int, int] = {}
        keep: list[int] = []
        over: list[int] = []
        for pos, cat in enumerate(self.primary[items].tolist()):
            if cat < 0:
                keep.append(pos)
                continue
            seen = counts.get(cat, 0)
            (keep if seen < cap else over).append(pos)
            counts[cat] = seen + 1
        order = np.asarray(keep + over, dtype=np.int64)
        return items[order], scores[order]


def intra_list_diversity(vectors: np.ndarray, items: np.ndarray) -> float:
    """Mean pairwise cosine distance ``1 - cos`` of a list's item vectors (0 for < 2 items)."""
    if len(items) < 2:
        return 0.0
    vecs = vectors[np.asarray(items, dtype=np.int64)]
    sims = vecs @ vecs.T
    n = len(items)
    off = sims[~np.eye(n, dtype=bool)]
    return float(np.mean(1.0 - off))
