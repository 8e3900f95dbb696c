"""Training datasets: the interaction matrix and its id vocabularies.

A :class:`Dataset` is what every model's ``fit`` receives. It is built from events (an event
store or a DataFrame) with configurable event weights; external ids stay in its vocabularies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from limelight.data.vocab import IdVocab
from limelight.errors import SchemaError

if TYPE_CHECKING:
    from limelight.store.base import EventStore

_SECONDS_PER_DAY = 86_400.0


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
    report
        What building kept and left out (``events_read``, ``events_without_item``,
        ``events_unweighted``, ``events_filtered``, ``users_filtered``, ``items_filtered``,
        ``reasons``): nothing is dropped without being counted here.
    """

    interactions: sp.csr_matrix
    users: IdVocab
    items: IdVocab
    log: pd.DataFrame = field(default_factory=pd.DataFrame)
    user_features: sp.csr_matrix | None = None
    item_features: sp.csr_matrix | None = None
    user_feature_names: list[str] = field(default_factory=list)
    item_feature_names: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return self.interactions.shape[0]

    @property
    def n_items(self) -> int:
        return self.interactions.shape[1]

    @property
    def ratings(self) -> sp.csr_matrix:
        """Explicit ratings (the last ``rating`` value per user/item), CSR float32.

        Computed once per log (several models of one fit read it); treat it as read-only.
        """
        key = (id(self.log), len(self.log), self.interactions.shape)
        cached = self.__dict__.get("_ratings_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        rated = self.log[self.log["type"] == "rating"] if len(self.log) else self.log
        if not len(rated):
            matrix = sp.csr_matrix(self.interactions.shape, dtype=np.float32)
        else:
            last = rated.drop_duplicates(["user_idx", "item_idx"], keep="last")
            matrix = sp.csr_matrix(
                (last["value"].to_numpy(np.float32),
                 (last["user_idx"].to_numpy(), last["item_idx"].to_numpy())),
                shape=self.interactions.shape)
        self.__dict__["_ratings_cache"] = (key, matrix)
        return matrix

    def sequences(self) -> list[np.ndarray]:
        """Per user (row order), item indices in time order."""
        if not len(self.log):
            return [np.empty(0, dtype=np.int64) for _ in range(self.n_users)]
        users = self.log["user_idx"].to_numpy()
        items = self.log["item_idx"].to_numpy().astype(np.int64)
        bounds = np.searchsorted(users, np.arange(self.n_users + 1))
        return [items[bounds[u]:bounds[u + 1]] for u in range(self.n_users)]

    def restrict(self, keep: np.ndarray) -> Dataset:
        """A dataset with the same vocabularies and features holding only the log rows where
        ``keep`` (boolean, one per :attr:`log` row) is true (e.g. a validation cut)."""
        keep = np.asarray(keep, dtype=bool)
        if len(keep) != len(self.log):
            raise ValueError(f"keep needs one flag per log row ({len(self.log)}), got {len(keep)}")
        log = self.log[keep].reset_index(drop=True)
        matrix = sp.csr_matrix(
            (log["weight"].to_numpy(np.float32),
             (log["user_idx"].to_numpy(), log["item_idx"].to_numpy())),
            shape=self.interactions.shape)
        matrix.sum_duplicates()
        return Dataset(interactions=matrix, users=self.users, items=self.items, log=log,
                       user_features=self.user_features, item_features=self.item_features,
                       user_feature_names=self.user_feature_names,
                       item_feature_names=self.item_feature_names,
                       report={**self.report, "restricted_from": len(self.log)})

    @classmethod
    def from_frame(cls, events: pd.DataFrame, *, event_weights: Mapping[str, float] | None = None,
                   users: IdVocab | None = None, items: IdVocab | None = None,
                   half_life_days: float | None = None, reference_time: int | None = None,
                   min_user_interactions: int = 1, min_item_interactions: int = 1) -> Dataset:
        """Build from a DataFrame with ``user_id``, ``item_id`` and optionally ``type``,
        ``value``, ``timestamp``.

        Without ``type`` every row counts 1 (or ``value`` when present and no weights are
        given). A ``rating`` event weighs ``event_weights["rating"] * value``. Rows whose
        weight is 0 or whose type has no weight are left out of the matrix (and counted in
        :attr:`report`). Given vocabularies are extended with unseen ids, never reordered.

        Parameters
        ----------
        half_life_days
            When set, an event's weight is multiplied by ``0.5 ** (age / half_life)``, its age
            measured from ``reference_time`` (unix seconds; default: the latest event).
        min_user_interactions, min_item_interactions
            k-core filter: users and items with fewer distinct partners are removed, repeated
            until both thresholds hold. Only applies when no vocabulary is given (a given
            vocabulary must keep its indices).

        Example
        -------
        >>> frame = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"]})
        >>> Dataset.from_frame(frame).interactions.toarray().tolist()
        [[1.0, 1.0], [1.0, 0.0]]
        """
        missing = {"user_id", "item_id"} - set(events.columns)
        if missing:
            raise SchemaError(f"events need columns {sorted(missing)}")
        report: dict[str, Any] = {"events_read": len(events), "reasons": {}}
        has_item = events["item_id"].notna()
        report["events_without_item"] = int((~has_item).sum())
        df = events[has_item].copy()
        df["user_id"] = df["user_id"].astype(str)
        df["item_id"] = df["item_id"].astype(str)
        if "type" not in df:
            df["type"] = "rating" if "value" in df else "interaction"
        if "value" not in df:
            df["value"] = np.nan
        if "timestamp" not in df:
            df["timestamp"] = 0
        df["timestamp"] = _unix_seconds(df["timestamp"])
        df["weight"] = _weights(df, event_weights)
        unweighted = df["weight"] == 0
        report["events_unweighted"] = int(unweighted.sum())
        if unweighted.any():
            report["reasons"] = df.loc[unweighted, "type"].value_counts().to_dict()
        df = df[~unweighted]
        if half_life_days is not None:
            df["weight"] = df["weight"] * _decay(df["timestamp"].to_numpy(), half_life_days,
                                                 reference_time)
        n_before = len(df)
        users_before, items_before = df["user_id"].nunique(), df["item_id"].nunique()
        if users is None and items is None:
            df = k_core(df, min_user_interactions, min_item_interactions)
        report["events_filtered"] = n_before - len(df)
        report["users_filtered"] = users_before - df["user_id"].nunique()
        report["items_filtered"] = items_before - df["item_id"].nunique()

        users, df["user_idx"] = _encode(df["user_id"], users)
        items, df["item_idx"] = _encode(df["item_id"], items)
        df = df.sort_values(["user_idx", "timestamp", "item_idx"], kind="stable")
        matrix = sp.csr_matrix(
            (df["weight"].to_numpy(np.float32),
             (df["user_idx"].to_numpy(), df["item_idx"].to_numpy())),
            shape=(len(users), len(items)))
        matrix.sum_duplicates()
        log = df[["user_idx", "item_idx", "timestamp", "type", "value", "weight"]].reset_index(
            drop=True)
        report["events_kept"] = len(log)
        return cls(interactions=matrix, users=users, items=items, log=log, report=report)


def build_dataset(store: EventStore, *, event_weights: Mapping[str, float] | None = None,
                  half_life_days: float | None = None, min_user_interactions: int = 1,
                  min_item_interactions: int = 1, with_features: bool = True,
                  reference_time: int | None = None, text_max_features: int = 5000) -> Dataset:
    """Training dataset from an event store's events (and users / items for features).

    Parameters
    ----------
    store
        An open :class:`~limelight.store.base.EventStore`.
    event_weights
        Weight per event type (``rating`` multiplies the rating value); default: the
        ``[dataset] event_weights`` defaults of :class:`limelight.settings.DatasetConfig`.
    half_life_days
        Exponential time decay of interaction weights (None: no decay).
    min_user_interactions, min_item_interactions
        k-core thresholds (distinct items per user, distinct users per item).
    with_features
        Also build ``user_features`` (age bins, gender, country, region one-hot) and
        ``item_features`` (categories, tags, TF-IDF of title and description).
    reference_time
        "Now" for the decay, unix seconds (default: the latest event).
    text_max_features
        Vocabulary size of the item text TF-IDF.

    Returns
    -------
    Dataset

    Example
    -------
    >>> from limelight.store import open_store
    >>> ds = build_dataset(open_store("memory://"))  # doctest: +SKIP
    """
    if event_weights is None:
        from limelight.settings import DatasetConfig

        event_weights = DatasetConfig().event_weights
    columns = ["user_id", "item_id", "type", "value", "timestamp"]
    events = store.read("events", columns=columns)
    dataset = Dataset.from_frame(
        events, event_weights=event_weights, half_life_days=half_life_days,
        reference_time=reference_time, min_user_interactions=min_user_interactions,
        min_item_interactions=min_item_interactions)
    if with_features:
        add_features(dataset, store.read("users"), store.read("items"),
                     text_max_features=text_max_features)
    return dataset


def add_features(dataset: Dataset, users: pd.DataFrame | None, items: pd.DataFrame | None, *,
                 text_max_features: int = 5000) -> Dataset:
    """Attach user / item side-feature matrices (rows aligned with the vocabularies).

    Users or items without a row in ``users`` / ``items`` get all-zero feature rows.
    """
    from limelight.data.side_features import item_feature_matrix, user_feature_matrix

    if users is not None and len(users):
        dataset.user_features, dataset.user_feature_names = user_feature_matrix(
            users, dataset.users)
    if items is not None and len(items):
        dataset.item_features, dataset.item_feature_names = item_feature_matrix(
            items, dataset.items, text_max_features=text_max_features)
    return dataset


def _encode(values: pd.Series, vocab: IdVocab | None) -> tuple[IdVocab, np.ndarray]:
    """(vocabulary extended with unseen values in order of appearance, index of each value)."""
    codes, uniques = pd.factorize(values, sort=False)
    if vocab is None:
        vocab = IdVocab(uniques)
        return vocab, codes.astype(np.int64)
    for value in uniques:  # one call per distinct id, never per row
        vocab.add(value)
    positions = np.fromiter((vocab.get(v) for v in uniques), dtype=np.int64, count=len(uniques))
    return vocab, positions[codes]


def k_core(df: pd.DataFrame, min_user: int, min_item: int) -> pd.DataFrame:
    """Rows of ``df`` (``user_id``, ``item_id``) left after iterated min-count filtering."""
    if min_user <= 1 and min_item <= 1:
        return df
    while True:
        pairs = df[["user_id", "item_id"]].drop_duplicates()
        user_n = pairs["user_id"].value_counts()
        item_n = pairs["item_id"].value_counts()
        keep = (df["user_id"].map(user_n).to_numpy() >= min_user) & (
            df["item_id"].map(item_n).to_numpy() >= min_item)
        if keep.all():
            return df
        df = df[keep]


def _unix_seconds(ts: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(ts):
        unit = ts.astype("datetime64[us, UTC]") if getattr(ts.dt, "tz", None) else ts.astype(
            "datetime64[us]")
        return unit.astype("int64") // 1_000_000
    return ts.astype(np.int64)


def _decay(timestamps: np.ndarray, half_life_days: float, reference_time: int | None
           ) -> np.ndarray:
    if half_life_days <= 0:
        raise ValueError(f"half_life_days must be positive, got {half_life_days}")
    now = timestamps.max() if reference_time is None and len(timestamps) else reference_time or 0
    age_days = np.maximum(now - timestamps, 0) / _SECONDS_PER_DAY
    return np.power(0.5, age_days / half_life_days)


def _weights(df: pd.DataFrame, event_weights: Mapping[str, float] | None) -> np.ndarray:
    types = df["type"].astype(str).to_numpy()
    values = pd.to_numeric(df["value"], errors="coerce").to_numpy(np.float64)
    if event_weights is None:
        return np.where(np.isnan(values), 1.0, values)
    base = np.array([event_weights.get(t, 0.0) for t in types], dtype=np.float64)
    is_rating = types == "rating"
    base[is_rating] *= np.nan_to_num(values[is_rating], nan=0.0)
    return base
