"""Assembles the serving pipeline: candidates -> score -> filters -> re-ranking -> explanations.

:func:`build_pipeline` composes the default stages from a model, the catalogue, the users'
histories and the serve settings; :class:`RecommendationPipeline` runs them for one request.
All stages work on numpy arrays in catalogue index space; external ids appear only at the
API edge.

Example
-------
>>> pipeline = build_pipeline(model, catalog, histories, popularity)      # doctest: +SKIP
>>> slate = pipeline.recommend(user_context, RecRequest(n=10, diversity=0.3, explain=True))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from limelight.models.base import Recommender
from limelight.pipeline.candidates import GroupPopularity, candidate_pool, eligible_items
from limelight.pipeline.catalog import ItemCatalog
from limelight.pipeline.context import RecRequest, Slate, UserContext
from limelight.pipeline.explainers import Explainer
from limelight.pipeline.filters import (
    BoostBuryFilter,
    CategoryFilter,
    PriceFilter,
    SeenFilter,
    StockFilter,
)
from limelight.pipeline.history import HistoryIndex
from limelight.pipeline.rerankers import CategoryCapReranker, MMRReranker, NoveltyReranker
from limelight.pipeline.scorers import HybridScorer
from limelight.pipeline.topcache import MAX_USERS, CandidateCache, pool_from_candidates

Filter = Callable[..., None]  # (scores, user, request, items=None), see pipeline.filters
Reranker = Callable[[np.ndarray, np.ndarray, RecRequest], tuple[np.ndarray, np.ndarray]]

#: Candidate pool handed to the re-rankers: max(POOL_FACTOR * n, MIN_POOL) items.
POOL_FACTOR = 5
MIN_POOL = 50


@dataclass
class RecommendationPipeline:
    """The serving stages for one model version.

    Attributes
    ----------
    scorer
        Scores every catalogue item for a user (model, fold-in, recent kNN or popularity).
    filters
        Applied in order to the score vector.
    rerankers
        Applied in order to the candidate pool.
    explainer
        Adds reasons when the request asks for them.
    diversity_vectors
        Item vectors MMR and intra-list diversity use.
    cache
        Each user's best candidates for this model version (see
        :mod:`limelight.pipeline.topcache`).
    """

    catalog: ItemCatalog
    scorer: HybridScorer
    filters: Sequence[Filter]
    rerankers: Sequence[Reranker]
    explainer: Explainer
    diversity_vectors: np.ndarray
    stage_names: list[str] = field(default_factory=list)
    cache: CandidateCache = field(default_factory=CandidateCache)

    @property
    def caches_candidates(self) -> bool:
        """The cache is on and every filter gives the same answer on a candidate subset."""
        return self.cache.max_users > 0 and all(
            getattr(stage, "subset_exact", False) for stage in self.filters)

    def recommend(self, user: UserContext, request: RecRequest) -> Slate:
        """Top ``request.n`` items for ``user`` after filters and re-ranking.

        A user's cached best candidates answer when they provably give the same pool as
        scoring the whole catalogue (see :mod:`limelight.pipeline.topcache`); otherwise the
        catalogue is scored and the cache refreshed.
        """
        reranking = request.diversity > 0 or request.novelty > 0 or bool(request.max_per_category)
        pool = max(POOL_FACTOR * request.n, MIN_POOL) if reranking else request.n
        cacheable = request.items is None and self.caches_candidates
        found = self._pool_from_cache(user, request, pool) if cacheable else None
        if found is not None:
            items, relevance, source = found
            group = None
        else:
            scored = self.scorer.score(user)
            if cacheable and scored.source != "popular":
                self.cache.put(user, scored, pool)
            scores = scored.scores
            if request.items is not None or request.categories:
                scores[~eligible_items(self.catalog, request)] = -np.inf
            for stage in self.filters:
                stage(scores, user, request)
            items, relevance = candidate_pool(scores, pool)
            source, group = scored.source, scored.group
        criterion = relevance
        pooled = items
        for stage in self.rerankers:
            items, criterion = stage(items, criterion, request)
        items = items[:request.n]
        # relevance of the kept items (re-rankers return their own criterion)
        order = np.argsort(pooled, kind="stable")
        relevance = relevance[order[np.searchsorted(pooled[order], items)]]
        if source == "popular":
            sources = ["popular"] * len(items)
        else:
            # items past the model's own are cold: only content similarity can score them
            n_model = self.catalog.n_model_items
            sources = ["content" if i >= n_model else "model" for i in items.tolist()]
        if len(items) and all(s == "content" for s in sources):
            source = "content"
        slate = Slate(items=items, scores=relevance.astype(np.float32), source=source,
                      group=group, item_sources=sources)
        if request.explain:
            self.explainer(slate, user)
        return slate

    def warm(self, user: UserContext, pool: int = MIN_POOL) -> bool:
        """Score ``user`` over the catalogue and cache their best candidates (when the cache
        applies and holds no current entry); True when an entry was made."""
        if not self.caches_candidates or self.cache.peek(user) is not None:
            return False
        scored = self.scorer.score(user)
        if scored.source == "popular":
            return False
        self.cache.put(user, scored, pool)
        return True

    def _pool_from_cache(self, user: UserContext, request: RecRequest, pool: int
                         ) -> tuple[np.ndarray, np.ndarray, str] | None:
        entry = self.cache.get(user)
        if entry is None:
            return None
        scores = entry.scores.copy()
        for stage in self.filters:
            stage(scores, user, request, entry.items)
        found = pool_from_candidates(entry, scores, pool)
        if found is None:
            return None
        return found[0], found[1], entry.source

    def score_items(self, user: UserContext, items: np.ndarray) -> tuple[np.ndarray, str]:
        """Scores of given catalogue items for ``user`` (no filters); NaN where an item cannot
        be scored (e.g. a cold item with no content link to the user's history)."""
        subset = self.scorer.score_subset(user, items)
        if subset is not None:  # only the given items are scored
            values = subset[0].astype(np.float64)
            values[~np.isfinite(values)] = np.nan
            return values, subset[1]
        scored = self.scorer.score(user)
        values = scored.scores[items].astype(np.float64)
        values[~np.isfinite(values)] = np.nan
        return values, scored.source

    def similar(self, item: int, n: int) -> tuple[np.ndarray, np.ndarray, str]:
        """Items most similar to catalogue item ``item`` (collaborative, else content)."""
        return self.scorer.similar(item, n)


def build_pipeline(model: Recommender, catalog: ItemCatalog, histories: HistoryIndex,
                   popularity: GroupPopularity, *, boost_items: Sequence[str] = (),
                   bury_items: Sequence[str] = (), random_state: int = 0,
                   cache_users: int = MAX_USERS) -> RecommendationPipeline:
    """The default pipeline for ``model``.

    Parameters
    ----------
    model
        A fitted recommender whose item indices are the catalogue's first indices.
    catalog, histories, popularity
        Serving state built by the API's state loader.
    boost_items, bury_items
        External item ids moved to the top / bottom of eligible items (``settings.serve``).
    random_state
        Seed of vector reductions.
    cache_users
        Users whose best candidates are cached (0: every request scores the catalogue).
    """
    scorer = HybridScorer(model, catalog, popularity, random_state=random_state)
    has_content = bool(np.any(catalog.content))
    if has_content or scorer.item_vectors is None:
        vectors = catalog.content
    else:
        vectors = np.zeros((catalog.n_items, scorer.item_vectors.shape[1]), dtype=np.float32)
        vectors[:catalog.n_model_items] = scorer.item_vectors
    filters: list[Filter] = [SeenFilter(), StockFilter(catalog), CategoryFilter(catalog),
                             PriceFilter(catalog), BoostBuryFilter(catalog, boost_items,
                                                                   bury_items)]
    rerankers: list[Reranker] = [NoveltyReranker(catalog), MMRReranker(vectors),
                                 CategoryCapReranker(catalog)]
    explainer = Explainer(catalog, popularity, histories, scorer.item_vectors)
    names = [type(s).__name__ for s in (*filters, *rerankers)]
    return RecommendationPipeline(catalog=catalog, scorer=scorer, filters=filters,
                                  rerankers=rerankers, explainer=explainer,
                                  diversity_vectors=vectors, stage_names=names,
                                  cache=CandidateCache(max_users=cache_users))
