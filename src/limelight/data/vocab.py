"""External string ids <-> contiguous integer indices.

Models only ever see integer indices; ids are mapped at the edges.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from limelight.errors import UnknownIdError


class IdVocab:
    """An ordered, append-only mapping between external ids and ``0..n-1``.

    Parameters
    ----------
    ids
        Distinct external ids in index order.

    Example
    -------
    >>> v = IdVocab(["u1", "u7"])
    >>> v.index(["u7"]).tolist(), v.ids_of([0]).tolist()
    ([1], ['u1'])
    """

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._ids: list[str] = [str(x) for x in ids]
        self._index: dict[str, int] = {x: i for i, x in enumerate(self._ids)}
        if len(self._index) != len(self._ids):
            raise ValueError("IdVocab ids must be distinct")

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, external_id: object) -> bool:
        return str(external_id) in self._index

    @property
    def ids(self) -> np.ndarray:
        """All external ids as an object array, index order."""
        return np.asarray(self._ids, dtype=object)

    def add(self, external_id: str) -> int:
        """Index of ``external_id``, appending it when new."""
        key = str(external_id)
        idx = self._index.get(key)
        if idx is None:
            idx = len(self._ids)
            self._ids.append(key)
            self._index[key] = idx
        return idx

    def get(self, external_id: object, default: int = -1) -> int:
        return self._index.get(str(external_id), default)

    def index(self, external_ids: Sequence[object] | np.ndarray, *, missing: str = "raise"
              ) -> np.ndarray:
        """Indices of ``external_ids``; ``missing="raise"`` or ``"ignore"`` (gives -1)."""
        idx = np.fromiter((self._index.get(str(x), -1) for x in external_ids), dtype=np.int64,
                          count=len(external_ids))
        if missing == "raise" and (idx < 0).any():
            unknown = [x for x, i in zip(external_ids, idx, strict=True) if i < 0]
            raise UnknownIdError("id", unknown[:10])
        return idx

    def ids_of(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """External ids of integer ``indices``."""
        return self.ids[np.asarray(indices, dtype=np.int64)]

    def to_list(self) -> list[str]:
        return list(self._ids)
