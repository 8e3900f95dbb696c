"""Explanation stage: a short reason for every recommended item.

Reasons, in the order they are tried (an item can get several):

- ``similar_to_history``: "because you watched X" -- the history item most similar to the
  recommended one (collaborative vectors for items the model knows, content vectors else);
- ``popular_in_group``: "popular in your segment" / "popular in <region>" when the item is
  among the most popular of the user's group;
- ``new_in_category``: "new in Sci-Fi" for items nobody interacted with yet or created recently;
- ``popular``: "popular right now" when nothing more specific applies.
"""

from __future__ import annotations

import numpy as np

from limelight.pipeline.candidates import GroupPopularity
from limelight.pipeline.catalog import ItemCatalog
from limelight.pipeline.context import Slate, UserContext
from limelight.pipeline.history import HistoryIndex

#: Verbs by event type for "because you <verb> <title>".
VERBS = {
    "rating": "watched",
    "view": "viewed",
    "click": "looked at",
    "add_to_cart": "added to your cart",
    "purchase": "bought",
    "like": "liked",
    "share": "shared",
    "review": "reviewed",
}
#: Similarity below which an item is not explained by a history item.
MIN_SIMILARITY = 0.05
#: An item created within this many days of the newest item counts as new.
NEW_DAYS = 30
NEW_SHARE = 0.1
#: "Popular in your group" when the item ranks in the group's top this many.
GROUP_TOP = 50


class Explainer:
    """Builds the reasons for a :class:`~limelight.pipeline.context.Slate` in place.

    Parameters
    ----------
    catalog, popularity, histories
        Serving state (titles, categories, group popularity, event type names).
    item_vectors
        Collaborative item vectors (normalised) for items the model knows, or None.
    """

    def __init__(self, catalog: ItemCatalog, popularity: GroupPopularity,
                 histories: HistoryIndex, item_vectors: np.ndarray | None) -> None:
        self.catalog = catalog
        self.popularity = popularity
        self.histories = histories
        self.item_vectors = item_vectors
        known = catalog.created[catalog.created >= 0]
        # new = created in the last NEW_DAYS before the newest item, and among the newest
        # NEW_SHARE of the catalogue (a catalogue created all at once has no "new" items)
        self.new_since = (max(int(known.max()) - NEW_DAYS * 86_400,
                              int(np.quantile(known, 1.0 - NEW_SHARE)) + 1)
                          if len(known) else None)
        self._group_top: dict[tuple[str, str], set[int]] = {}

    def __call__(self, slate: Slate, user: UserContext) -> None:
        recent = user.history.recent(50)
        slate.explanations = [self._reasons(int(i), recent, user, slate) for i in slate.items]

    def _reasons(self, item: int, recent: np.ndarray, user: UserContext, slate: Slate
                 ) -> list[dict[str, str]]:
        reasons: list[dict[str, str]] = []
        anchor = self._anchor(item, recent)
        if anchor is not None:
            verb = VERBS.get(self._type_of(user, anchor), "interacted with")
            title = str(self.catalog.titles[anchor])
            reasons.append({"type": "similar_to_history",
                            "item_id": self.catalog.ids_of([anchor])[0],
                            "text": f"because you {verb} {title}"})
        for key in user.groups[:2] if slate.source != "popular" else user.groups[:1]:
            if slate.group is not None and key != slate.group:
                continue
            if item in self._top_of(key):
                where = "your segment" if key[0] == "segment" else (
                    key[1] if key[0] == "region" else f"your {key[0]} group ({key[1]})")
                reasons.append({"type": "popular_in_group", "group": f"{key[0]}:{key[1]}",
                                "text": f"popular in {where}"})
                break
        if item >= self.catalog.n_model_items or (
                self.new_since is not None and self.catalog.created[item] >= self.new_since):
            cats = self.catalog.category_names(item)
            where = cats[0] if cats else "the catalogue"
            reasons.append({"type": "new_in_category", "category": where,
                            "text": f"new in {where}"})
        if not reasons:
            reasons.append({"type": "popular", "text": "popular right now"})
        return reasons

    def _anchor(self, item: int, recent: np.ndarray) -> int | None:
        if not len(recent):
            return None
        n_model = self.catalog.n_model_items
        if item < n_model and self.item_vectors is not None:
            pool = recent[recent < n_model]
            if not len(pool):
                return None
            sims = self.item_vectors[pool] @ self.item_vectors[item]
        else:
            pool = recent
            sims = self.catalog.content[pool] @ self.catalog.content[item]
        best = int(np.argmax(sims))
        return int(pool[best]) if sims[best] >= MIN_SIMILARITY else None

    def _type_of(self, user: UserContext, item: int) -> str:
        hist = user.history
        where = np.flatnonzero(hist.items == item)
        return self.histories.type_name(hist.types[where[-1]]) if len(where) else ""

    def _top_of(self, key: tuple[str, str]) -> set[int]:
        found = self._group_top.get(key)
        if found is None:
            found = set(self.popularity.top(key, GROUP_TOP).tolist())
            self._group_top[key] = found
        return found
