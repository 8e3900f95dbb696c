"""Exposure counting: how often each item was shown, to report over-exposure of the head."""

from __future__ import annotations

import threading

import numpy as np


class ExposureCounter:
    """Counts impressions per item id across model versions.

    Counts are kept by external item id in a growing numpy array so recording a list costs
    one vectorised add.

    Example
    -------
    >>> c = ExposureCounter()
    >>> c.record(["a", "b"]); c.record(["a"])
    >>> c.top(1)
    [('a', 2)]
    """

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._counts = np.zeros(1024, dtype=np.int64)
        self._lock = threading.Lock()
        self.lists = 0

    def record(self, item_ids: list[str]) -> None:
        """Count one shown list."""
        with self._lock:
            idx = [self._slot(i) for i in item_ids]
            np.add.at(self._counts, idx, 1)
            self.lists += 1

    def _slot(self, item_id: str) -> int:
        slot = self._index.get(item_id)
        if slot is None:
            slot = len(self._index)
            self._index[item_id] = slot
            if slot >= len(self._counts):
                self._counts = np.concatenate([self._counts, np.zeros_like(self._counts)])
        return slot

    @property
    def total(self) -> int:
        return int(self._counts.sum())

    def counts(self) -> dict[str, int]:
        return {item: int(self._counts[i]) for item, i in self._index.items()}

    def top(self, k: int = 10) -> list[tuple[str, int]]:
        """The ``k`` most exposed items with their counts."""
        ids = list(self._index)
        counts = self._counts[: len(ids)]
        order = np.argsort(-counts, kind="stable")[:k]
        return [(ids[i], int(counts[i])) for i in order]

    def head_share(self, fraction: float = 0.1, n_items: int | None = None) -> float:
        """Share of all exposure taken by the top ``fraction`` of items (of ``n_items``, the
        catalogue size, or of the items shown at least once)."""
        counts = np.sort(self._counts[: len(self._index)])[::-1]
        total = counts.sum()
        if total == 0:
            return 0.0
        n = n_items or len(counts)
        k = max(1, int(np.ceil(fraction * n)))
        return float(counts[:k].sum() / total)

    def gini(self, n_items: int | None = None) -> float:
        """Gini coefficient of exposure over ``n_items`` items (unshown items count as 0)."""
        counts = self._counts[: len(self._index)].astype(np.float64)
        if n_items is not None and n_items > len(counts):
            counts = np.concatenate([counts, np.zeros(n_items - len(counts))])
        if not len(counts) or counts.sum() == 0:
            return 0.0
        x = np.sort(counts)
        n = len(x)
        ranks = np.arange(1, n + 1)
        return float((2 * (ranks * x).sum()) / (n * x.sum()) - (n + 1) / n)

    def report(self, n_items: int | None = None, k: int = 10) -> dict[str, object]:
        """Summary for the API: lists served, impressions, head share, Gini, top items."""
        return {"lists": self.lists, "impressions": self.total,
                "head_share_top10pct": self.head_share(0.1, n_items),
                "gini": self.gini(n_items),
                "top": [{"item_id": i, "count": c} for i, c in self.top(k)]}
