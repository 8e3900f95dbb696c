"""How much deduplication work an event batch needs, decided from 64-bit hashes of its keys.

Ingest deduplicates events exactly, by ``event_key`` (the 128-bit key of each event id, see
:mod:`limelight.data.event_keys`), in the store's insert (an anti-join against
the stored ids and a pass over ids repeated within the batch). Both passes cost time in
proportion to what they scan, so ingest first looks at the hashes of the batch's ids: distinct
hashes prove distinct ids, and while the store holds only the current run's events, hashes the
run has not stored prove the batch repeats no stored id. Hashes only ever decide which work to
skip; every hash match is settled by comparing the ids themselves.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from limelight.data.event_keys import KEY
from limelight.store.duckdb import EVENT_TABLE, run_sql

#: Above this many repeated (or already stored) hashes, the passes scan the whole batch.
MAX_INLINE_REPEATS = 5_000


class RunIds:
    """64-bit hashes of the event keys of a run's batches so far, distinct and sorted.

    Probing the stored table for each batch's ids costs time in proportion to the table, so a
    long ingest into a fresh store would grow quadratically. While every stored event was
    written by this run (the table's row count equals what the run inserted), a batch whose
    hashes no earlier batch had cannot repeat a stored id and skips the probe. Any hash match
    (a real repeat, or a 64-bit collision) falls back to an exact comparison, so hashes only
    ever decide when to skip work, never which row is kept.

    Batches are admitted in the order they are stored (``seq`` 0, 1, ...) as soon as they
    are staged, by whichever thread offers the batch that completes the sequence so far
    (:meth:`offer`): the helper that validates ahead then admits each batch as it stages it,
    off the thread that inserts. Admitting needs only the hashes, never the store. Batches
    are stored in order and a failed one ends the run, so when a batch is stored, the
    earlier batches are exactly what the run has committed. ``inserted`` counts the rows the
    run stored (kept by the storing thread).
    """

    def __init__(self) -> None:
        self.hashes = np.empty(0, dtype=np.uint64)
        self.inserted = 0
        self.admitted = 0  # batches admitted so far
        self._offered: dict[int, np.ndarray | None] = {}  # staged before their turn
        self._matched: dict[int, np.ndarray] = {}  # admitted, not yet taken by ``matched``
        self._lock = threading.Lock()

    def offer(self, seq: int, sorted_hashes: np.ndarray | None) -> None:
        """Batch ``seq``'s sorted hashes are known (None: a batch with no rows): admit it,
        and the later batches offered before their turn, once every earlier batch is."""
        with self._lock:
            self._offered[seq] = sorted_hashes
            while self.admitted in self._offered:
                batch = self._offered.pop(self.admitted)
                self._matched[self.admitted] = self._admit(batch)
                self.admitted += 1

    def matched(self, seq: int) -> np.ndarray:
        """The distinct hashes of batch ``seq`` that earlier batches had (taken once, after
        batches ``0..seq`` were all offered)."""
        with self._lock:
            if seq not in self._matched:
                raise RuntimeError(f"batch {seq} is not admitted: an earlier batch was not "
                                   f"offered (admitted {self.admitted})")
            return self._matched.pop(seq)

    def _admit(self, sorted_hashes: np.ndarray | None) -> np.ndarray:
        if sorted_hashes is None:
            sorted_hashes = self.hashes[:0]
        merged = _merge(self.hashes, _distinct(sorted_hashes))
        repeat = merged[1:] == merged[:-1]  # both sides distinct: each pair is one match
        matched = merged[1:][repeat]
        self.hashes = merged[np.concatenate(([True], ~repeat))] if len(matched) else merged
        return matched


def _merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sorted union (with repeats) of two sorted arrays.

    A stable sort of the two concatenated runs is one linear merge (timsort finds the runs):
    probing with ``searchsorted`` and merging into a buffer cost ~4x more on 10M-event runs.
    """
    merged = np.concatenate((a, b))
    merged.sort(kind="stable")
    return merged


def _distinct(sorted_values: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array, in order."""
    if len(sorted_values) < 2:
        return sorted_values
    keep = np.empty(len(sorted_values), dtype=bool)
    keep[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=keep[1:])
    return sorted_values if keep.all() else sorted_values[keep]


#: Staging-table column with the 64-bit hash of each row's key (see :func:`hash_column`).
HASH = "__h"


def hash_column(select: str) -> str:
    """``select`` (a validated event batch) with the hash of each key as column ``__h``.

    Stored beside the key in the staging table, so later passes filter candidate rows by a
    64-bit integer instead of comparing 128-bit keys.
    """
    return f"SELECT *, hash({KEY}) AS {HASH} FROM ({select})"


def _lines(cur: Any, sql: str) -> list[int]:
    return [int(r[0]) for r in run_sql(cur, sql).fetchall()]


def _in_list(values: np.ndarray) -> str:
    return ", ".join(str(int(v)) for v in values)


def settle_repeats(cur: Any, typed: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Drop a staged batch's repeated ids (all but the first by line); hashes and insert hints.

    Returns the sorted hashes of every valid row's id (repeats included) and the hints for
    :meth:`~limelight.store.duckdb.DuckDBEventStore.insert_from`. Needs only the batch (not the
    store), so it runs while the previous batch is stored. Distinct hashes prove distinct ids;
    otherwise only the rows whose hash repeats are compared by id, and the later rows of each
    repeated id are deleted from the staging table, so the insert needs no within-batch pass.
    Beyond :data:`MAX_INLINE_REPEATS` repeated hashes the insert's own pass does the work.
    """
    hashes = run_sql(cur,
        f"SELECT {HASH} FROM {typed} WHERE __reason IS NULL").fetchnumpy()[HASH]
    hashes = np.sort(np.asarray(hashes, dtype=np.uint64))
    repeated = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
    if len(repeated) > MAX_INLINE_REPEATS:
        return hashes, {"distinct_keys": False}
    if len(repeated):
        losers = _lines(cur, f"SELECT __line FROM (SELECT __line, row_number() OVER "
                             f"(PARTITION BY {KEY} ORDER BY __line) AS n FROM {typed} "
                             f"WHERE __reason IS NULL AND {HASH} IN ({_in_list(repeated)})) "
                             f"WHERE n > 1")
        if losers:
            run_sql(cur, f"DELETE FROM {typed} WHERE __line IN "
                        f"({', '.join(map(str, losers))})")
    return hashes, {"distinct_keys": True}


def settle_stored(store: Any, typed: str, hashes: np.ndarray, ids_given: bool, seen: RunIds,
                  earlier: np.ndarray) -> dict[str, Any]:
    """Drop a staged batch's rows whose id is already stored, when that is cheap; insert hints.

    While the store holds only this run's events, only batch rows whose hash an earlier batch
    had (``earlier``, from :meth:`RunIds.matched`) can repeat a stored id: none means the
    anti-join is skipped, a few means those rows are compared by key with the stored events
    (for derived ids, only events with the same timestamps) and the repeats are deleted from
    the staging table, so the insert needs no anti-join either. Otherwise the returned hints
    narrow the insert's anti-join. Call with the store's write lock held through the batch's
    commit (:meth:`exclusive`), outside its transaction (the staging table lives in another
    database).
    """
    stored = store.execute(f"SELECT count(*) FROM {EVENT_TABLE}").fetchone()[0]
    matched = earlier if stored == seen.inserted else None
    if matched is not None and not len(matched):
        return {"probe_store": False}
    if matched is not None and len(matched) <= MAX_INLINE_REPEATS:
        candidates = f"__reason IS NULL AND {HASH} IN ({_in_list(matched)})"
        narrow = ""
        if not ids_given:
            stamps = store.execute(f"SELECT DISTINCT CAST(timestamp AS VARCHAR) FROM {typed} "
                                   f"WHERE {candidates}").fetchall()
            # Derived ids are a function of the timestamp (see event_keys.derived_key_sql).
            narrow = " AND e.timestamp IN (" + ", ".join(
                f"CAST('{t}' AS TIMESTAMPTZ)" for (t,) in stamps) + ")"
        known = _lines(store, f"SELECT t.__line FROM {typed} t WHERE {candidates} AND "
                              f"t.{KEY} IN (SELECT e.{KEY} FROM {EVENT_TABLE} e WHERE "
                              f"e.{KEY} IN (SELECT {KEY} FROM {typed} WHERE {candidates})"
                              f"{narrow})")
        if known:
            store.execute(f"DELETE FROM {typed} WHERE __line IN ({', '.join(map(str, known))})")
        return {"probe_store": False}
    if not ids_given and len(hashes):
        lo, hi = store.execute(
            f"SELECT CAST(min(timestamp) AS VARCHAR), CAST(max(timestamp) AS VARCHAR) "
            f"FROM {typed} WHERE __reason IS NULL").fetchone()
        # Derived ids are a function of the timestamp, so a stored event with the same id
        # has a timestamp inside this batch's range.
        return {"probe_where": f"e.timestamp BETWEEN CAST('{lo}' AS TIMESTAMPTZ) "
                               f"AND CAST('{hi}' AS TIMESTAMPTZ)"}
    return {}

