"""Per-user interaction history kept in memory for serving.

The history is loaded once from the event store (when a model version is loaded) and every
accepted event is appended here as it is written through to the store, so a request never
queries the store. Items are catalogue indices (see :mod:`limelight.pipeline.catalog`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from limelight.data.vocab import IdVocab

_EMPTY = np.empty(0, dtype=np.int64)
# shared by every empty history: the same arrays each time (caches key entries on them)
_EMPTY_TYPES = np.empty(0, dtype=np.int16)
_EMPTY_WEIGHTS = np.empty(0, dtype=np.float32)


@dataclass(frozen=True)
class UserHistory:
    """One user's items in time order (oldest first) with the event type of each."""

    items: np.ndarray
    types: np.ndarray  # int16 codes into HistoryIndex.type_names
    weights: np.ndarray  # float32 interaction strength of each event (settings' event weights)
    live_events: int  # how many of them arrived while serving (after the load)

    def recent(self, k: int) -> np.ndarray:
        """The last ``k`` distinct items, most recent first."""
        out: list[int] = []
        seen: set[int] = set()
        for item in self.items[::-1].tolist():
            if item not in seen:
                seen.add(item)
                out.append(item)
                if len(out) == k:
                    break
        return np.asarray(out, dtype=np.int64)


#: the history of every user without one (caches key entries on its arrays)
_EMPTY_HISTORY = UserHistory(_EMPTY, _EMPTY_TYPES, _EMPTY_WEIGHTS, 0)


class HistoryIndex:
    """In-memory histories of every user, by external user id.

    Parameters
    ----------
    type_names
        Event type names; codes are their positions.
    event_weights
        Weight of each event type (a rating weighs its weight times its value); events whose
        weight is not positive are not part of the history.
    max_items
        Longest history kept per user (oldest events drop out first).
    """

    def __init__(self, type_names: list[str] | None = None,
                 event_weights: Mapping[str, float] | None = None, max_items: int = 2000
                 ) -> None:
        self.type_names: IdVocab = IdVocab(type_names or [])
        self.event_weights = dict(event_weights) if event_weights is not None else None
        self.max_items = max_items
        # one frozen record per user, replaced whole by a live event: a reader never sees
        # items of one version with weights of another, and needs no lock
        self._histories: dict[str, UserHistory] = {}
        self._lock = threading.Lock()  # writers only

    @classmethod
    def from_events(cls, events: pd.DataFrame | None, items: IdVocab, *,
                    event_weights: Mapping[str, float] | None = None, max_items: int = 2000
                    ) -> HistoryIndex:
        """Build from an events frame (``user_id``, ``item_id``, ``type``, ``timestamp``,
        optionally ``value``).

        Events whose item is not in ``items`` (or has no item) or whose weight is not positive
        are left out.
        """
        index = cls(event_weights=event_weights, max_items=max_items)
        if events is None or not len(events):
            return index
        frame = events[events["item_id"].notna()]
        # vectorised id lookups: millions of events load in seconds, not minutes
        item_idx = pd.Index(items.ids).get_indexer(frame["item_id"].astype(str)).astype(np.int64)
        types = frame["type"].astype(str).to_numpy()
        values = (pd.to_numeric(frame["value"], errors="coerce").to_numpy(np.float64)
                  if "value" in frame else np.full(len(frame), np.nan))
        weights = index.weights_of(types, values)
        keep = (item_idx >= 0) & (weights > 0)
        frame = frame.loc[keep]
        item_idx = item_idx[keep]
        weights = weights[keep]
        types = types[keep]
        if not len(frame):
            return index
        for name in pd.unique(types):
            index.type_names.add(name)
        type_codes = pd.Index(index.type_names.ids).get_indexer(types).astype(np.int16)
        user_codes, users = pd.factorize(frame["user_id"].astype(str), sort=False)
        users = np.asarray(users, dtype=object)
        ts = pd.to_datetime(frame["timestamp"], utc=True).astype("int64").to_numpy()
        order = np.lexsort((ts, user_codes))
        user_codes = user_codes[order]
        bounds = np.searchsorted(user_codes, np.arange(len(users) + 1))
        item_sorted = item_idx[order]
        type_sorted = type_codes[order]
        weight_sorted = weights[order]
        for k, user in enumerate(users.tolist()):
            lo, hi = bounds[k], bounds[k + 1]
            lo = max(lo, hi - max_items)
            index._histories[user] = UserHistory(item_sorted[lo:hi].copy(),
                                                 type_sorted[lo:hi].copy(),
                                                 weight_sorted[lo:hi].copy(), 0)
        return index

    def weights_of(self, types: np.ndarray, values: np.ndarray) -> np.ndarray:
        """float32 weight of events by type (and value for ratings)."""
        if self.event_weights is None:
            return np.ones(len(types), dtype=np.float32)
        names, codes = np.unique(np.asarray(types, dtype=object).astype(str),
                                 return_inverse=True)
        base = np.array([self.event_weights.get(t, 0.0) for t in names],
                        dtype=np.float64)[codes.ravel()]
        rating = types == "rating"
        base[rating] *= np.nan_to_num(values[rating], nan=1.0)
        return base.astype(np.float32)

    def weight_of(self, type_name: str, value: float | None = None) -> float:
        """:meth:`weights_of` for one event (without building arrays: a batch of live
        events applies one at a time)."""
        if self.event_weights is None:
            return 1.0
        weight = float(self.event_weights.get(str(type_name), 0.0))
        if type_name == "rating":
            weight *= float(np.nan_to_num(np.nan if value is None else value, nan=1.0))
        return float(np.float32(weight))

    def __contains__(self, user_id: str) -> bool:
        return user_id in self._histories

    def __len__(self) -> int:
        return len(self._histories)

    def get(self, user_id: str) -> UserHistory:
        """History of ``user_id`` (empty for an unknown user)."""
        return self._histories.get(user_id, _EMPTY_HISTORY)

    def append(self, user_id: str, item_idx: int, type_name: str, value: float | None = None
               ) -> bool:
        """Record one live event; False when its weight makes it no part of the history.

        The user's record is replaced, never mutated, so concurrent readers see a consistent
        history.
        """
        weight = self.weight_of(type_name, value)
        if weight <= 0:
            return False
        with self._lock:
            code = self.type_names.add(type_name)
            old = self.get(user_id)
            cut = -self.max_items
            self._histories[user_id] = UserHistory(
                np.append(old.items, np.int64(item_idx))[cut:],
                np.append(old.types, np.int16(code))[cut:],
                np.append(old.weights, np.float32(weight))[cut:], old.live_events + 1)
        return True

    def remove_last(self, user_id: str, item_idx: int, type_name: str) -> bool:
        """Undo the latest live :meth:`append` of (item, type) for a user; False if absent."""
        with self._lock:
            old = self._histories.get(user_id)
            code = self.type_names.get(type_name)
            if old is None or code < 0:
                return False
            hits = np.flatnonzero((old.items == item_idx) & (old.types == code))
            if not len(hits):
                return False
            keep = np.ones(len(old.items), dtype=bool)
            keep[hits[-1]] = False
            self._histories[user_id] = UserHistory(old.items[keep], old.types[keep],
                                                   old.weights[keep],
                                                   max(old.live_events - 1, 0))
        return True

    def user_ids(self) -> list[str]:
        return list(self._histories)

    def pairs(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(user ids, user position per event, item per event) over every history."""
        users = list(self._histories)
        arrays = [self._histories[u].items for u in users]
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        items = np.concatenate(arrays) if arrays else np.empty(0, dtype=np.int64)
        return users, np.repeat(np.arange(len(users)), lengths), items

    def type_name(self, code: int) -> str:
        return str(self.type_names.ids[int(code)])
