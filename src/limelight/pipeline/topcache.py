"""Per-user top-M candidates: the best items of a user's exact score vector, kept between
requests, so a repeat request filters and re-ranks a few hundred items instead of scoring
the whole catalogue.

Why the answer stays exact
--------------------------
An entry holds the ``M`` best items of the user's full score vector (model and cold items
together, exactly as :meth:`HybridScorer.score <limelight.pipeline.scorers.HybridScorer.score>`
computes it), ranked by (score descending, item index ascending), and ``bound``: the best
score of any item left out. Filters only rule items out (``-inf``), so when at least ``pool``
entry items survive a request's filters with a score strictly above ``bound``, they are
exactly the ``pool`` best items of the full vector after the same filters. Otherwise the
pipeline scores the catalogue (and refreshes the entry).

When an entry is stale
----------------------
Scores depend on the model version and on the user's history. The cache lives on one
version's pipeline (a version switch starts an empty one) and each entry remembers the
history arrays it was computed from; :class:`~limelight.pipeline.history.HistoryIndex`
replaces those arrays on every event (it never mutates them), so a new event makes the
next lookup miss. Feedback (hidden items, blocked categories) does not change scores: the
filters apply it to the candidates on every request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from limelight.pipeline.candidates import candidate_pool
from limelight.pipeline.context import Scored, UserContext

#: Smallest number of candidates kept per user.
MIN_CANDIDATES = 256
#: Users kept; the oldest entry goes first when full (~2-20 KB each).
MAX_USERS = 20_000


@dataclass(frozen=True)
class TopCandidates:
    """The best items of one user's score vector.

    Attributes
    ----------
    items
        int32 catalogue indices, best first (ties by lower index).
    scores
        float32 scores of ``items``, as the full score vector holds them.
    bound
        Every item not in ``items`` scores at most this (``-inf``: ``items`` holds every
        finite-scored item).
    source
        The scoring path (``model``, ``fold_in``, ...), as in :class:`Scored`.
    """

    items: np.ndarray
    scores: np.ndarray
    bound: float
    source: str
    history_items: np.ndarray
    history_weights: np.ndarray
    model_row: int

    def fresh_for(self, user: UserContext) -> bool:
        """True when computed from ``user``'s current history (identity: arrays are replaced
        on change, never mutated) and model row."""
        return (self.history_items is user.history.items
                and self.history_weights is user.history.weights
                and self.model_row == user.model_row)


class CandidateCache:
    """Top-M candidates per user id for one model version (thread-safe).

    Parameters
    ----------
    max_users
        Entries kept; the oldest is dropped when a new user arrives at the limit (0: off).
    min_candidates
        Smallest ``M``; an entry keeps ``max(min_candidates, 2 * pool) + len(history)``
        items so that excluding seen items still leaves a full pool.
    """

    def __init__(self, max_users: int = MAX_USERS, min_candidates: int = MIN_CANDIDATES
                 ) -> None:
        self.max_users = max_users
        self.min_candidates = min_candidates
        self._entries: dict[str, TopCandidates] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, user: UserContext) -> TopCandidates | None:
        """The user's entry when it is still valid for their history, else None (counted
        as a hit or a miss)."""
        entry = self.peek(user)
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
        return entry

    def peek(self, user: UserContext) -> TopCandidates | None:
        """:meth:`get` without counting."""
        entry = self._entries.get(user.user_id)
        return entry if entry is not None and entry.fresh_for(user) else None

    def put(self, user: UserContext, scored: Scored, pool: int) -> TopCandidates:
        """Keep the best items of ``scored`` (the user's full, unfiltered score vector)."""
        size = max(self.min_candidates, 2 * pool) + len(user.history.items)
        items, scores = candidate_pool(scored.scores, size + 1)
        bound = float(scores[size]) if len(items) > size else -np.inf
        entry = TopCandidates(items=items[:size].astype(np.int32), scores=scores[:size].copy(),
                              bound=bound, source=scored.source,
                              history_items=user.history.items,
                              history_weights=user.history.weights, model_row=user.model_row)
        if self.max_users <= 0:  # caching off
            return entry
        with self._lock:
            self._entries.pop(user.user_id, None)
            while len(self._entries) >= self.max_users:
                self._entries.pop(next(iter(self._entries)))
            self._entries[user.user_id] = entry
        return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def pool_from_candidates(entry: TopCandidates, scores: np.ndarray, pool: int
                         ) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``pool`` best of ``entry`` after filters (``scores``: the entry's scores with
    filtered items at ``-inf``), or None when that is not provably the exact answer.

    Returns (catalogue items, scores), best first, as :func:`candidate_pool` would return
    them over the full filtered vector.
    """
    above = int(np.count_nonzero(scores > entry.bound))
    if above < pool and np.isfinite(entry.bound):
        return None
    # entry items are ranked by (score desc, index asc): positions tie-break like indices
    positions, values = candidate_pool(scores, pool)
    return entry.items[positions].astype(np.int64), values
