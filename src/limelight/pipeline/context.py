"""Plain data passed between the serving stages: the request, the user, the result."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from limelight.pipeline.history import UserHistory


@dataclass
class RecRequest:
    """What a caller asks for (already validated at the API edge).

    ``diversity`` is the MMR lambda (0 = ranking by relevance only); ``novelty`` weighs a boost
    for less popular items; ``max_per_category`` caps items sharing a primary category;
    ``items`` restricts the answer to those catalogue indices (scoring a given list).
    """

    n: int = 10
    exclude_seen: bool = True
    categories: list[str] = field(default_factory=list)
    exclude_categories: list[str] = field(default_factory=list)
    min_price: float | None = None
    max_price: float | None = None
    diversity: float = 0.0
    novelty: float = 0.0
    max_per_category: int | None = None
    explain: bool = False
    items: np.ndarray | None = None


@dataclass
class UserContext:
    """What the pipeline knows about the user being served.

    ``model_row`` is the user's row in the model (-1 when the model has never seen them);
    ``groups`` lists (kind, value) pairs from most to least specific, e.g.
    ``[("segment", "2"), ("region", "north")]``, for cold-start popularity.
    """

    user_id: str
    model_row: int
    history: UserHistory
    groups: list[tuple[str, str]] = field(default_factory=list)
    hidden_items: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    liked_items: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    blocked_categories: list[str] = field(default_factory=list)


@dataclass
class Scored:
    """Scores of every catalogue item for one user, and which path produced them.

    ``source`` is one of ``model``, ``fold_in``, ``recent_knn``, ``popular``; ``group`` names the
    popularity group used (e.g. ``("region", "north")``) when ``source == "popular"``.
    ``item_source`` marks per item where its score came from (``model`` or ``content``).
    """

    scores: np.ndarray
    source: str
    group: tuple[str, str] | None = None
    content_items: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


@dataclass
class Slate:
    """The answer: item indices best first, their scores, and optional explanations."""

    items: np.ndarray
    scores: np.ndarray
    source: str
    group: tuple[str, str] | None = None
    item_sources: list[str] = field(default_factory=list)
    explanations: list[list[dict[str, str]]] = field(default_factory=list)

    @property
    def fallback(self) -> str | None:
        """Which cold-start fallback answered (None for a personalised answer)."""
        if self.source == "popular":
            return "popular_" + (self.group[0] if self.group else "global")
        if self.source == "content":
            return "content"
        return None
