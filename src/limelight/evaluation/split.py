"""Train/test splitters over a :class:`~limelight.data.dataset.Dataset`.

Every splitter works on the dataset's event log (one row per kept event) and returns two
datasets that share the *same* user and item vocabularies, so an index means the same user or
item on both sides and the whole catalogue stays rankable even when an item has no training
event. Interactions of one (user, item) pair never straddle the split: a pair is assigned as a
whole (by its *last* event for temporal splitters), otherwise a repeated purchase in training
would leak the test answer.

Splitters
---------
- :class:`RandomHoldout` -- a random fraction of each user's items.
- :class:`TemporalHoldout` -- per user, sorted by (timestamp, item index), the last fraction
  (rounded up) goes to test.
- :class:`GlobalTimeCut` -- everything at or after one instant goes to test.
- :class:`LeaveLastOut` -- the last ``k`` items of each user.
- :class:`HeldOutUsers` -- a fraction of users leaves training entirely (cold start).
- :func:`ml100k_folds` -- the official MovieLens 100K folds ``u1..u5``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from limelight.data.dataset import Dataset
from limelight.data.vocab import IdVocab
from limelight.errors import IngestError, SchemaError


@runtime_checkable
class Splitter(Protocol):
    """Anything that cuts a dataset into (train, test) with shared vocabularies."""

    def split(self, dataset: Dataset) -> tuple[Dataset, Dataset]: ...


# -- helpers -------------------------------------------------------------------------------

def subset(dataset: Dataset, log: pd.DataFrame) -> Dataset:
    """A dataset with the same vocabularies and features holding only the events in ``log``.

    The interaction matrix is rebuilt from the log's ``weight`` column, so event weights and
    time decay chosen when ``dataset`` was built carry over.
    """
    log = log.sort_values(["user_idx", "timestamp", "item_idx"], kind="stable").reset_index(
        drop=True)
    matrix = sp.csr_matrix(
        (log["weight"].to_numpy(np.float32),
         (log["user_idx"].to_numpy(np.int64), log["item_idx"].to_numpy(np.int64))),
        shape=dataset.interactions.shape)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return replace(dataset, interactions=matrix, log=log)


def binarize(dataset: Dataset) -> Dataset:
    """Every event weighs 1 (e.g. "every rating is one interaction"); values are kept."""
    log = dataset.log.copy()
    log["weight"] = np.float32(1.0)
    out = subset(dataset, log)
    out.interactions.data[:] = 1.0  # a repeated pair still counts once
    return out


def _check_log(dataset: Dataset) -> pd.DataFrame:
    log = dataset.log
    need = {"user_idx", "item_idx", "timestamp", "weight"}
    if not len(log) or need - set(log.columns):
        raise SchemaError("splitting needs a dataset with an event log (user_idx, item_idx, "
                          "timestamp, weight); build it with Dataset.from_frame or build_dataset")
    return log


def _pair_table(log: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, item) pair with the time of its last event, sorted per user by
    (timestamp, item index) -- the order the temporal protocols are defined on."""
    pairs = (log.groupby(["user_idx", "item_idx"], sort=False)["timestamp"].max()
             .reset_index())
    return pairs.sort_values(["user_idx", "timestamp", "item_idx"], kind="stable").reset_index(
        drop=True)


def _assign(dataset: Dataset, test_pairs: pd.DataFrame) -> tuple[Dataset, Dataset]:
    """Split the log so that the pairs in ``test_pairs`` (user_idx, item_idx) go to test."""
    log = _check_log(dataset)
    n_items = dataset.n_items
    key = log["user_idx"].to_numpy(np.int64) * n_items + log["item_idx"].to_numpy(np.int64)
    test_key = (test_pairs["user_idx"].to_numpy(np.int64) * n_items
                + test_pairs["item_idx"].to_numpy(np.int64))
    is_test = np.isin(key, test_key)
    return subset(dataset, log[~is_test]), subset(dataset, log[is_test])


def _tail_per_user(pairs: pd.DataFrame, counts: np.ndarray) -> np.ndarray:
    """Boolean mask of the last ``counts[u]`` rows of each user's block in sorted ``pairs``."""
    users = pairs["user_idx"].to_numpy(np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
    sizes = np.diff(np.r_[starts, len(users)])
    pos = np.arange(len(users)) - np.repeat(starts, sizes)  # position inside the user block
    from_end = np.repeat(sizes, sizes) - pos                # 1 for the last row
    return from_end <= np.repeat(counts, sizes)


def _user_sizes(pairs: pd.DataFrame) -> np.ndarray:
    users = pairs["user_idx"].to_numpy(np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
    return np.diff(np.r_[starts, len(users)])


def _ceil_fraction(sizes: np.ndarray, fraction: float, min_train: int) -> np.ndarray:
    # plain float ceil, as math.ceil(n * fraction) computes it (35 * 0.2 -> 8): the same cut
    # as the usual reference implementations, so numbers stay comparable
    n_test = np.ceil(sizes * fraction).astype(np.int64)
    # a user needs min_train pairs left in training to be evaluated at all
    return np.where(sizes - n_test >= min_train, n_test, 0)


def _check_fraction(fraction: float) -> None:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {fraction}")


# -- splitters -----------------------------------------------------------------------------

@dataclass(frozen=True)
class TemporalHoldout:
    """Per user, the last ``ceil(test_fraction * n)`` items by (timestamp, item index) go to test.

    Parameters
    ----------
    test_fraction
        Share of each user's distinct items held out (rounded up).
    min_train
        Users left with fewer training items keep everything in training.

    Example
    -------
    >>> train, test = TemporalHoldout(0.2).split(dataset)  # doctest: +SKIP
    """

    test_fraction: float = 0.2
    min_train: int = 1

    def split(self, dataset: Dataset) -> tuple[Dataset, Dataset]:
        _check_fraction(self.test_fraction)
        pairs = _pair_table(_check_log(dataset))
        n_test = _ceil_fraction(_user_sizes(pairs), self.test_fraction, self.min_train)
        return _assign(dataset, pairs[_tail_per_user(pairs, n_test)])


@dataclass(frozen=True)
class LeaveLastOut:
    """The last ``k`` items of each user (by timestamp, item index) go to test."""

    k: int = 1
    min_train: int = 1

    def split(self, dataset: Dataset) -> tuple[Dataset, Dataset]:
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        pairs = _pair_table(_check_log(dataset))
        sizes = _user_sizes(pairs)
        n_test = np.where(sizes - self.k >= self.min_train, self.k, 0)
        return _assign(dataset, pairs[_tail_per_user(pairs, n_test)])


@dataclass(frozen=True)
class RandomHoldout:
    """A random ``ceil(test_fraction * n)`` of each user's distinct items go to test."""

    test_fraction: float = 0.2
    min_train: int = 1
    random_state: int = 0

    def split(self, dataset: Dataset) -> tuple[Dataset, Dataset]:
        _check_fraction(self.test_fraction)
        pairs = _pair_table(_check_log(dataset))
        rng = np.random.default_rng(self.random_state)
        # shuffle inside each user block: sort by (user, random key)
        pairs = pairs.assign(_r=rng.random(len(pairs))).sort_values(
            ["user_idx", "_r"], kind="stable").reset_index(drop=True)
        n_test = _ceil_fraction(_user_sizes(pairs), self.test_fraction, self.min_train)
        return _assign(dataset, pairs[_tail_per_user(pairs, n_test)])


@dataclass(frozen=True)
class GlobalTimeCut:
    """Events at or after a time cut go to test; before it, to train.

    Parameters
    ----------
    cut
        The cut as epoch seconds; when None, the ``quantile`` of event times is used.
    quantile
        Share of events (by time) that stays in training when ``cut`` is None.

    Notes
    -----
    A pair whose last event is at or after the cut goes to test as a whole; users with no
    event before the cut appear only in test (the realistic "new user" case).
    """

    cut: int | None = None
    quantile: float = 0.8

    def split(self, dataset: Dataset) -> tuple[Dataset, Dataset]:
        log = _check_log(dataset)
        cut = self.cut_time(dataset)
        pairs = _pair_table(log)
        return _assign(dataset, pairs[pairs["timestamp"].to_numpy() >= cut])

    def cut_time(self, dataset: Dataset) -> int:
        """The cut in epoch seconds for ``dataset``."""
        if self.cut is not None:
            return int(self.cut)
        _check_fraction(self.quantile)
        times = _check_log(dataset)["timestamp"].to_numpy(np.int64)
        return int(np.quantile(times, self.quantile, method="higher"))


@dataclass(frozen=True)
class HeldOutUsers:
    """A random ``test_fraction`` of users leaves training entirely (user cold start).

    Parameters
    ----------
    test_fraction
        Share of users held out.
    given
        The first ``given`` items (by time) of each held-out user are returned in a third
        dataset, *history*: what a new user has done when asking for recommendations. Their
        remaining items are the test. ``0`` means pure cold start.
    random_state
        Seed of the user draw.

    Use :meth:`split_with_history` for (train, history, test); :meth:`split` returns
    (train, test) with the history folded into neither (it is neither trained on nor scored).
    """

    test_fraction: float = 0.2
    given: int = 5
    random_state: int = 0

    def split(self, dataset: Dataset) -> tuple[Dataset, Dataset]:
        train, _, test = self.split_with_history(dataset)
        return train, test

    def split_with_history(self, dataset: Dataset) -> tuple[Dataset, Dataset, Dataset]:
        _check_fraction(self.test_fraction)
        log = _check_log(dataset)
        users = np.unique(log["user_idx"].to_numpy(np.int64))
        rng = np.random.default_rng(self.random_state)
        n_out = max(1, math.ceil(len(users) * self.test_fraction))
        held = np.sort(rng.choice(users, size=min(n_out, len(users)), replace=False))
        in_held = np.isin(log["user_idx"].to_numpy(np.int64), held)
        train = subset(dataset, log[~in_held])
        pairs = _pair_table(log[in_held])
        sizes = _user_sizes(pairs)
        n_test = np.maximum(sizes - self.given, 0)
        test_pairs = pairs[_tail_per_user(pairs, n_test)]
        history_pairs = pairs.drop(test_pairs.index)
        held_log = log[in_held]
        _, test = _assign(replace(dataset, log=held_log), test_pairs)
        _, history = _assign(replace(dataset, log=held_log), history_pairs)
        return train, history, test


# -- MovieLens 100K official folds ---------------------------------------------------------

def _read_ml100k_file(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise IngestError(f"MovieLens 100K file {path} not found")
    frame = pd.read_csv(path, sep="\t", header=None,
                        names=["user_id", "item_id", "value", "timestamp"],
                        dtype={"user_id": str, "item_id": str, "value": np.float64,
                               "timestamp": np.int64})
    frame["type"] = "rating"
    return frame


def ml100k_vocabularies(data_dir: str | Path) -> tuple[IdVocab, IdVocab]:
    """User and item vocabularies of ML-100K in numeric id order (user ``"1"`` is index 0)."""
    full = _read_ml100k_file(Path(data_dir) / "u.data")
    users = sorted(full["user_id"].unique(), key=int)
    items = sorted(full["item_id"].unique(), key=int)
    return IdVocab(users), IdVocab(items)


def ml100k_dataset(data_dir: str | Path, *, implicit: bool = False,
                   with_features: bool = False) -> Dataset:
    """All of ML-100K's ``u.data`` as one dataset (ratings as ``rating`` events).

    ``implicit=True`` makes every rating one interaction of weight 1 (the ranking protocol);
    otherwise the weight is the rating value. Ratings stay in ``Dataset.ratings`` either way.
    ``with_features`` attaches user (demographics) and item (genres, title) features through
    the MovieLens source adapter.
    """
    data_dir = Path(data_dir)
    users, items = ml100k_vocabularies(data_dir)
    dataset = Dataset.from_frame(_read_ml100k_file(data_dir / "u.data"), users=users, items=items)
    if implicit:
        dataset = binarize(dataset)
    if with_features:
        from limelight.data.dataset import add_features

        users_frame, items_frame = _ml100k_side_frames(data_dir)
        add_features(dataset, users_frame, items_frame)
    return dataset


def _ml100k_side_frames(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users (age, gender) and items (title, genres as categories) in the data model."""
    try:  # the source adapter, where installed, is the one place that knows the format
        from limelight.data.sources import load_movielens_100k
    except ImportError:
        load_movielens_100k = None
    if load_movielens_100k is not None:
        frames = load_movielens_100k(data_dir)
        return frames.get("users"), frames.get("items")
    genres = [line.split("|")[0] for line in
              (data_dir / "u.genre").read_text(encoding="latin-1").splitlines() if line]
    items = pd.read_csv(data_dir / "u.item", sep="|", header=None, encoding="latin-1")
    flags = items.iloc[:, 5:5 + len(genres)].to_numpy(bool)
    items_frame = pd.DataFrame({
        "item_id": items[0].astype(str), "title": items[1].astype(str),
        "categories": [[g for g, on in zip(genres, row, strict=True) if on] for row in flags]})
    users = pd.read_csv(data_dir / "u.user", sep="|", header=None, encoding="latin-1")
    users_frame = pd.DataFrame({"user_id": users[0].astype(str), "age": users[1],
                                "gender": users[2].astype(str)})
    return users_frame, items_frame


def ml100k_fold(data_dir: str | Path, k: int, *, implicit: bool = False
                ) -> tuple[Dataset, Dataset]:
    """The official fold ``u{k}.base`` / ``u{k}.test`` (k in 1..5) as (train, test)."""
    if k not in range(1, 6):
        raise ValueError(f"ML-100K folds are numbered 1..5, got {k}")
    data_dir = Path(data_dir)
    users, items = ml100k_vocabularies(data_dir)
    train = Dataset.from_frame(_read_ml100k_file(data_dir / f"u{k}.base"),
                               users=users, items=items)
    test = Dataset.from_frame(_read_ml100k_file(data_dir / f"u{k}.test"),
                              users=users, items=items)
    if implicit:
        train, test = binarize(train), binarize(test)
    return train, test


def ml100k_folds(data_dir: str | Path, *, implicit: bool = False
                 ) -> list[tuple[Dataset, Dataset]]:
    """The five official folds u1..u5 as a list of (train, test)."""
    return [ml100k_fold(data_dir, k, implicit=implicit) for k in range(1, 6)]


SPLITTERS: dict[str, type] = {
    "temporal": TemporalHoldout,
    "random": RandomHoldout,
    "time-cut": GlobalTimeCut,
    "leave-last-out": LeaveLastOut,
    "held-out-users": HeldOutUsers,
}
