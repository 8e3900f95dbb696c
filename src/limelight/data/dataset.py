"""Training datasets: the interaction matrix and its id vocabularies.

A :class:`Dataset` is what every model's ``fit`` receives. It is built from events (an event
store or a DataFrame) with configurable event weights; external ids stay in its vocabularies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from limelight.data.vocab import IdVocab
from limelight.errors import SchemaError


@dataclass
class Dataset:
    """Interactions of users with items, plus optional side information.

    Attributes
    ----------
    interactions
        CSR float32, shape (n_users, n_items): summed event weights (implicit feedback).
    users, items
        Vocabularies mapping external ids to the matrix's rows / columns.
    log
        Long format, one row per kept event: ``user_idx``, ``item_idx``, ``timestamp``
        (int64 seconds), ``type``, ``value``, ``weight``; sorted by (user, timestamp, item).
        Sequential and rating models read it.
    user_features, item_features
        Optional CSR side-feature matrices aligned with ``users`` / ``items``.
    user_feature_names, item_feature_names
        Column names of those matrices.
    """

    interactions: sp.csr_matrix
    users: IdVocab
    items: IdVocab
    log: pd.DataFrame = field(default_factory=pd.DataFrame)
    user_features: sp.csr_matrix | None = None
    item_features: sp.csr_matrix | None = None
    user_feature_names: list[str] = field(default_factory=list)
    item_feature_names: list[str] = field(default_factory=list)

    @property
    def n_users(self) -> int:
        return self.interactions.shape[0]

    @property
    def n_items(self) -> int:
        return self.interactions.shape[1]

    @property
    def ratings(self) -> sp.csr_matrix:
        """Explicit ratings (the last ``rating`` value per user/item), CSR float32."""
        rated = self.log[self.log["type"] == "rating"] if len(self.log) else self.log
        if not len(rated):
            return sp.csr_matrix(self.interactions.shape, dtype=np.float32)
        last = rated.drop_duplicates(["user_idx", "item_idx"], keep="last")
        return sp.csr_matrix(
            (last["value"].to_numpy(np.float32),
             (last["user_idx"].to_numpy(), last["item_idx"].to_numpy())),
            shape=self.interactions.shape)

    def sequences(self) -> list[np.ndarray]:
        """Per user (row order), item indices in time order."""
        if not len(self.log):
            return [np.empty(0, dtype=np.int64) for _ in range(self.n_users)]
        users = self.log["user_idx"].to_numpy()
        items = self.log["item_idx"].to_numpy().astype(np.int64)
        bounds = np.searchsorted(users, np.arange(self.n_users + 1))
        return [items[bounds[u]:bounds[u + 1]] for u in range(self.n_users)]

    @classmethod
    def from_frame(cls, events: pd.DataFrame, *, event_weights: Mapping[str, float] | None = None,
                   users: IdVocab | None = None, items: IdVocab | None = None) -> Dataset:
        """Build from a DataFrame with ``user_id``, ``item_id`` and optionally ``type``,
        ``value``, ``timestamp``.

        Without ``type`` every row counts 1 (or ``value`` when present and no weights are
        given). A ``rating`` event weighs ``event_weights["rating"] * value``. Rows whose
        weight is 0 or whose type has no weight are left out of the matrix. Given vocabularies
        are extended with unseen ids, never reordered.
        """
        missing = {"user_id", "item_id"} - set(events.columns)
        if missing:
            raise SchemaError(f"events need columns {sorted(missing)}")
        df = events[events["item_id"].notna()].copy()
        df["user_id"] = df["user_id"].astype(str)
        df["item_id"] = df["item_id"].astype(str)
        if "type" not in df:
            df["type"] = "rating" if "value" in df else "interaction"
        if "value" not in df:
            df["value"] = np.nan
        if "timestamp" not in df:
            df["timestamp"] = 0
        ts = df["timestamp"]
        if pd.api.types.is_datetime64_any_dtype(ts):
            df["timestamp"] = (ts.astype("datetime64[us, UTC]").astype("int64") // 1_000_000
                               if getattr(ts.dt, "tz", None) else
                               ts.astype("datetime64[us]").astype("int64") // 1_000_000)
        df["timestamp"] = df["timestamp"].astype(np.int64)
        df["weight"] = _weights(df, event_weights)
        df = df[df["weight"] != 0]

        users = users if users is not None else IdVocab()
        items = items if items is not None else IdVocab()
        for uid in pd.unique(df["user_id"]):
            users.add(uid)
        for iid in pd.unique(df["item_id"]):
            items.add(iid)
        df["user_idx"] = users.index(df["user_id"].to_numpy())
        df["item_idx"] = items.index(df["item_id"].to_numpy())
        df = df.sort_values(["user_idx", "timestamp", "item_idx"], kind="stable")
        matrix = sp.csr_matrix(
            (df["weight"].to_numpy(np.float32),
             (df["user_idx"].to_numpy(), df["item_idx"].to_numpy())),
            shape=(len(users), len(items)))
        matrix.sum_duplicates()
        log = df[["user_idx", "item_idx", "timestamp", "type", "value", "weight"]].reset_index(
            drop=True)
        return cls(interactions=matrix, users=users, items=items, log=log)


def _weights(df: pd.DataFrame, event_weights: Mapping[str, float] | None) -> np.ndarray:
    types = df["type"].astype(str).to_numpy()
    values = pd.to_numeric(df["value"], errors="coerce").to_numpy(np.float64)
    if event_weights is None:
        return np.where(np.isnan(values), 1.0, values)
    base = np.array([event_weights.get(t, 0.0) for t in types], dtype=np.float64)
    is_rating = types == "rating"
    base[is_rating] *= np.nan_to_num(values[is_rating], nan=0.0)
    return base
