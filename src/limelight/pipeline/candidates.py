"""Candidate stages: which items may be considered at all, and the pool handed to re-ranking.

Candidates are expressed over the whole catalogue as a boolean mask (cheap with numpy even
for 50k items); :func:`candidate_pool` then takes the best ``k`` by score for the re-rankers.
:class:`GroupPopularity` is the candidate source for users the model cannot personalise.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from limelight.pipeline.catalog import ItemCatalog
from limelight.pipeline.context import RecRequest
from limelight.pipeline.history import HistoryIndex

#: A popularity group needs at least this many users to be trusted over a broader one.
MIN_GROUP_USERS = 3


def eligible_items(catalog: ItemCatalog, request: RecRequest) -> np.ndarray:
    """bool, shape (n_items,): items the request allows before any filter.

    All items, or only ``request.items`` when the caller named the items to score, or only
    items in ``request.categories`` when those are given.
    """
    if request.items is not None:
        mask = np.zeros(catalog.n_items, dtype=bool)
        mask[request.items] = True
    else:
        mask = np.ones(catalog.n_items, dtype=bool)
    if request.categories:
        mask &= catalog.category_mask(request.categories)
    return mask


def candidate_pool(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best finite-scored items, best first; equal scores rank by lower item index,
    so the pool is a function of the scores alone (and a subset holding the best items gives
    the same pool, see :mod:`limelight.pipeline.topcache`).

    Returns
    -------
    (items, scores)
        int64 and float32 arrays of length <= k (shorter when fewer items qualify).
    """
    n = len(scores)
    k = min(k, n)
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    if k < n:
        # one pass, no negated copy: the k largest sit at the end (-inf, excluded, sort first)
        top = np.argpartition(scores, n - k)[n - k:]
        part = top[np.isfinite(scores[top])]
        if len(part) < k and np.isnan(scores[top]).any():  # NaN sorts above everything
            finite = np.flatnonzero(np.isfinite(scores))
            part = finite[np.argpartition(-scores[finite], min(k, len(finite)) - 1)[:k]] \
                if len(finite) else finite
        if len(part) == k:
            # argpartition keeps any of the items scored exactly at the cut: keep the lowest
            # indices among them
            cut = scores[part].min()
            above = part[scores[part] > cut]
            tied = np.flatnonzero(scores == cut)
            part = np.concatenate([above, tied[:k - len(above)]])
    else:
        part = np.flatnonzero(np.isfinite(scores))
    order = np.lexsort((part, -scores[part]))
    items = part[order].astype(np.int64)
    return items, scores[items].astype(np.float32)


class GroupPopularity:
    """Item popularity overall and within user groups (segment, region, age band, gender).

    Parameters
    ----------
    overall
        float32, shape (n_items,): interaction counts over all users.
    by_group
        (kind, value) -> (popularity vector, number of users in the group).
    """

    def __init__(self, overall: np.ndarray,
                 by_group: Mapping[tuple[str, str], tuple[np.ndarray, int]] | None = None
                 ) -> None:
        self.overall = np.asarray(overall, dtype=np.float32)
        self.by_group = dict(by_group or {})

    @classmethod
    def from_histories(cls, histories: HistoryIndex, n_items: int,
                       user_groups: Mapping[str, list[tuple[str, str]]]) -> GroupPopularity:
        """Count, per group, how many of its users interacted with each item (vectorised)."""
        users, user_pos, items = histories.pairs()
        # one count per (user, item): distinct pairs through a combined integer key
        keys = np.unique(user_pos.astype(np.int64) * n_items + items)
        pair_users, pair_items = keys // n_items, keys % n_items
        overall = np.bincount(pair_items, minlength=n_items).astype(np.float32)
        group_index: dict[tuple[str, str], int] = {}
        member_user: list[int] = []
        member_group: list[int] = []
        for pos, user in enumerate(users):
            for key in user_groups.get(user, ()):
                member_user.append(pos)
                member_group.append(group_index.setdefault(key, len(group_index)))
        by_group: dict[tuple[str, str], tuple[np.ndarray, int]] = {}
        if group_index:
            # users -> groups as a sparse matrix; pairs -> (group, item) counts in one product
            import scipy.sparse as sp

            membership = sp.csr_matrix(
                (np.ones(len(member_user), dtype=np.float32), (member_group, member_user)),
                shape=(len(group_index), len(users)))
            user_item = sp.csr_matrix(
                (np.ones(len(keys), dtype=np.float32), (pair_users, pair_items)),
                shape=(len(users), n_items))
            counts = (membership @ user_item).toarray()
            sizes = np.asarray(membership.sum(axis=1)).ravel()
            for key, g in group_index.items():
                by_group[key] = (counts[g].astype(np.float32), int(sizes[g]))
        return cls(overall, by_group)

    def scores(self, groups: list[tuple[str, str]]) -> tuple[np.ndarray, tuple[str, str] | None]:
        """Popularity in the most specific known group with enough users, else overall.

        Returns the score vector (popularity share, so groups of any size compare) and the
        group used (None for overall).
        """
        for key in groups:
            found = self.by_group.get(key)
            if found is not None and found[1] >= MIN_GROUP_USERS and found[0].sum() > 0:
                vec = found[0]
                return vec / vec.sum(), key
        total = self.overall.sum()
        return (self.overall / total if total > 0 else self.overall.copy()), None

    def top(self, key: tuple[str, str], k: int) -> np.ndarray:
        """The ``k`` most popular items of a group (empty when the group is unknown)."""
        found = self.by_group.get(key)
        if found is None:
            return np.empty(0, dtype=np.int64)
        vec = found[0]
        k = min(k, int((vec > 0).sum()))
        return np.argsort(-vec, kind="stable")[:k]


def age_band(age: object) -> str | None:
    """Age band label used for demographic popularity (``"25-34"``), None when unknown."""
    try:
        value = int(age)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    if value < 0 or value > 130:
        return None
    for hi, label in ((17, "<18"), (24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54"),
                      (64, "55-64")):
        if value <= hi:
            return label
    return "65+"


def user_groups(attributes: Mapping[str, object], segment: object = None
                ) -> list[tuple[str, str]]:
    """(kind, value) groups of a user from their attributes, most specific first."""
    groups: list[tuple[str, str]] = []
    if segment is not None and not (isinstance(segment, float) and np.isnan(segment)):
        groups.append(("segment", str(segment)))
    region = attributes.get("region") or attributes.get("country")
    band = age_band(attributes.get("age"))
    gender = attributes.get("gender")
    if _present(region):
        groups.append(("region", str(region)))
    if band is not None and _present(gender):
        groups.append(("demographic", f"{band}/{gender}"))
    if band is not None:
        groups.append(("age", band))
    if _present(gender):
        groups.append(("gender", str(gender)))
    return groups


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and \
        str(value) != "" and not pd.isna(value)
