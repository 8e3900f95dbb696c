"""Feature encoding of the factorization machine: one index space over all fields.

A factorization machine sees each example as a sparse vector over the user id, the user's
features, the item id, the item's features and the context. This module lays those fields out
in one index space and turns users, items, contexts and feature names into the padded
(indices, values) rows the network reads; :mod:`limelight.models.fm` holds the model, its
training and its scoring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from limelight.models.torch_utils import padded_rows

if TYPE_CHECKING:
    from limelight.data.dataset import Dataset

#: UTC hours in four bands of six hours, for the ``time_of_day`` context field.
TIME_OF_DAY = ("night", "morning", "afternoon", "evening")


def context_values(log: pd.DataFrame, fields: Sequence[str]) -> list[list[str]]:
    """Context tokens (``"field=value"``) of each event in ``log``.

    ``time_of_day`` comes from ``timestamp`` (UTC hour in four bands), ``channel`` from a
    ``channel`` column when the log has one; absent fields give no token.
    """
    columns: list[np.ndarray] = []
    if "time_of_day" in fields and "timestamp" in log:
        hours = (log["timestamp"].to_numpy(np.int64) // 3600) % 24
        bands = np.asarray(TIME_OF_DAY, dtype=object)[hours // 6]
        columns.append(np.char.add("time_of_day=", bands.astype(str)))
    if "channel" in fields and "channel" in log:
        channel = log["channel"].astype("string").fillna("none").to_numpy(str)
        columns.append(np.char.add("channel=", channel))
    if not columns:
        return [[] for _ in range(len(log))]
    return [list(row) for row in zip(*columns, strict=True)]


class FeatureEncoding:
    """Field layout and row encoders, mixed into the factorization machine.

    The index space is ``[padding, user ids, user features, item ids, item features,
    context tokens]``; index 0 is padding (value 0), so rows of different lengths are summed
    without masks.
    """

    # set by the model (a Recommender, which also provides check_fitted)
    n_users_: int
    n_items_: int
    use_ids: bool
    context_fields: Sequence[str]

    def _layout(self, dataset: Dataset) -> None:
        """Offsets of the fields in one index space: user ids, user features, item ids,
        item features, context tokens."""
        n_uf = dataset.user_features.shape[1] if dataset.user_features is not None else 0
        n_if = dataset.item_features.shape[1] if dataset.item_features is not None else 0
        self.user_feature_names_ = list(dataset.user_feature_names) or [
            f"user_feature_{j}" for j in range(n_uf)]
        self.item_feature_names_ = list(dataset.item_feature_names) or [
            f"item_feature_{j}" for j in range(n_if)]
        self.user_id_offset_ = 1                          # index 0 is padding
        self.user_feature_offset_ = self.user_id_offset_ + self.n_users_
        self.item_id_offset_ = self.user_feature_offset_ + n_uf
        self.item_feature_offset_ = self.item_id_offset_ + self.n_items_
        self.context_offset_ = self.item_feature_offset_ + n_if
        tokens = context_values(dataset.log, self.context_fields) if len(dataset.log) else []
        names = sorted({t for row in tokens for t in row})
        self.context_names_ = names
        self.n_features_ = self.context_offset_ + len(names)
        self._log_context = tokens

    def _user_rows(self, features: sp.csr_matrix | None, ids: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray]:
        return self._side_rows(features, ids, self.user_id_offset_, self.user_feature_offset_)

    def _item_rows(self, features: sp.csr_matrix | None, ids: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray]:
        return self._side_rows(features, ids, self.item_id_offset_, self.item_feature_offset_)

    def _side_rows(self, features: sp.csr_matrix | None, ids: np.ndarray | None,
                   id_offset: int, feature_offset: int) -> tuple[np.ndarray, np.ndarray]:
        """Padded (index, value) rows of one side: its id feature (when ids are used) and
        its side features."""
        if features is None:
            features = sp.csr_matrix((len(ids), 0), dtype=np.float32)
        leading = None if ids is None or not self.use_ids else ids + id_offset
        return padded_rows(features, feature_offset, leading)

    def _context_rows(self, contexts: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        lookup = {name: i + self.context_offset_ for i, name in enumerate(self.context_names_)}
        width = max([len(c) for c in contexts] + [1])
        idx = np.zeros((len(contexts), width), dtype=np.int64)
        for row, tokens in enumerate(contexts):
            known = [lookup[t] for t in tokens if t in lookup]
            idx[row, :len(known)] = known
        return idx, (idx > 0).astype(np.float32)

    def _context_tokens(self, context: Mapping[str, str] | Sequence[Mapping[str, str]] | None,
                        n: int) -> list[list[str]] | None:
        if context is None:
            return None
        rows = [context] * n if isinstance(context, Mapping) else list(context)
        if len(rows) != n:
            raise ValueError(f"got {len(rows)} contexts for {n} users")
        return [[f"{k}={v}" for k, v in row.items()] for row in rows]

    def feature_rows(self, features: Sequence[Mapping[str, float] | Sequence[str]],
                     side: str = "user") -> sp.csr_matrix:
        """CSR rows over the training feature columns from names (``["gender=F", ...]``) or
        ``{name: value}`` mappings; unknown names are ignored (counted in ``last_unknown_``)."""
        self.check_fitted()
        names = self.user_feature_names_ if side == "user" else self.item_feature_names_
        lookup = {name: j for j, name in enumerate(names)}
        rows, cols, vals, unknown = [], [], [], 0
        for r, entry in enumerate(features):
            pairs = entry.items() if isinstance(entry, Mapping) else ((k, 1.0) for k in entry)
            for name, value in pairs:
                j = lookup.get(str(name))
                if j is None:
                    unknown += 1
                    continue
                rows.append(r)
                cols.append(j)
                vals.append(float(value))
        self.last_unknown_ = unknown
        return sp.csr_matrix((vals, (rows, cols)), shape=(len(features), len(names)),
                             dtype=np.float32)

    def _as_rows(self, rows: Any, side: str) -> sp.csr_matrix:
        width = len(self.user_feature_names_ if side == "user" else self.item_feature_names_)
        if isinstance(rows, list | tuple) and (not rows or isinstance(
                rows[0], Mapping | list | tuple)):
            return self.feature_rows(rows, side)
        matrix = sp.csr_matrix(rows, dtype=np.float32)
        if matrix.shape[1] != width:
            raise ValueError(f"{side} feature rows need {width} columns, got {matrix.shape[1]}")
        return matrix
