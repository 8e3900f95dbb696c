"""How much deduplication work an event batch needs, decided from 64-bit hashes of its ids.

Ingest deduplicates events exactly, by ``event_id``, in the store's insert (an anti-join against
the stored ids and a pass over ids repeated within the batch). Both passes cost time in
proportion to what they scan, so ingest first looks at the hashes of the batch's ids: distinct
hashes prove distinct ids, and while the store holds only the current run's events, hashes the
run has not stored prove the batch repeats no stored id. Hashes only ever decide which work to
skip; every hash match is settled by comparing the ids themselves.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Above this many repeated (or already stored) hashes, the passes scan the whole batch.
MAX_INLINE_REPEATS = 5_000


class RunIds:
    """64-bit hashes of the event ids a run has committed, kept sorted in memory.

    Probing the stored table for each batch's ids costs time in proportion to the table, so a
    long ingest into a fresh store would grow quadratically. While every stored event was
    written by this run (the table's row count equals what the run inserted), a batch whose id
    hashes are all absent here cannot repeat a stored id and skips the probe. Any hash match (a
    real repeat, or a 64-bit collision) falls back to the exact anti-join, so hashes only ever
    decide when to skip work, never which row is kept.
    """

    def __init__(self) -> None:
        self.hashes = np.empty(0, dtype=np.uint64)
        self.inserted = 0
        self._spare = np.empty(0, dtype=np.uint64)  # the next merge's buffer, reused
        self._probe: tuple[np.ndarray, np.ndarray] | None = None

    def seen(self, sorted_hashes: np.ndarray) -> np.ndarray:
        """The distinct hashes of ``sorted_hashes`` that this run has committed."""
        if not len(self.hashes) or not len(sorted_hashes):
            return np.empty(0, dtype=np.uint64)
        idx = np.searchsorted(self.hashes, sorted_hashes)
        self._probe = (sorted_hashes, idx)  # add() merges at the same places
        hit = idx < len(self.hashes)
        hit[hit] = self.hashes[idx[hit]] == sorted_hashes[hit]
        return np.unique(sorted_hashes[hit])

    def add(self, sorted_hashes: np.ndarray, inserted: int) -> None:
        """Merge a committed batch's sorted hashes; ``inserted`` rows of it were stored."""
        # A linear merge into a reused buffer: re-sorting (and allocating) the whole run's
        # hashes for every batch cost ~0.3 s per batch late in a 10M-event file.
        if self._probe is not None and self._probe[0] is sorted_hashes:
            idx = self._probe[1]
        else:
            idx = np.searchsorted(self.hashes, sorted_hashes)
        self._probe = None
        n, m = len(self.hashes), len(sorted_hashes)
        if len(self._spare) < n + m:
            self._spare = np.empty(max(n + m, len(self._spare) * 3 // 2), dtype=np.uint64)
        out = self._spare[:n + m]
        at = idx + np.arange(m)
        old = np.ones(n + m, dtype=bool)
        old[at] = False
        out[at] = sorted_hashes
        out[old] = self.hashes
        self._spare = self.hashes.base if self.hashes.base is not None else self.hashes
        self.hashes = out
        self.inserted += inserted


def batch_hashes(cur: Any, typed: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Sorted 64-bit hashes of a validated batch's ids, and the within-batch insert hints.

    Needs only the batch (not the store), so it runs while the previous batch is stored.
    Distinct hashes prove distinct ids (no within-batch pass); otherwise only rows with a
    repeated hash join that pass.
    """
    hashes = cur.execute(
        f"SELECT hash(event_id) AS h FROM {typed} WHERE __reason IS NULL").fetchnumpy()["h"]
    hashes = np.sort(np.asarray(hashes, dtype=np.uint64))
    repeated = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
    hints: dict[str, Any] = {"distinct_keys": not len(repeated)}
    if 0 < len(repeated) <= MAX_INLINE_REPEATS:
        values = ", ".join(str(int(h)) for h in repeated)
        hints["repeats_where"] = f"hash(event_id) IN ({values})"
    return hashes, hints


def store_hints(store: Any, typed: str, hashes: np.ndarray, ids_given: bool, seen: RunIds
                ) -> dict[str, Any]:
    """Hints that narrow (or skip) the anti-join of a batch against the stored events.

    While the store holds only this run's events, the anti-join is skipped when none of the
    batch's hashes was stored by the run, and otherwise looks up only the batch rows whose hash
    was (a handful), so its cost no longer grows with the batch or the store. Call inside the
    batch's transaction, after the previous batch committed.
    """
    hints: dict[str, Any] = {}
    stored = store.execute("SELECT count(*) FROM events").fetchone()[0]
    matched = seen.seen(hashes) if stored == seen.inserted else None
    if matched is not None and not len(matched):
        hints["probe_store"] = False
    elif matched is not None and len(matched) <= MAX_INLINE_REPEATS:
        # Every stored id is one of this run's, so only rows whose hash the run has stored
        # can repeat a stored id: the probe looks up those few ids, not the whole batch.
        values = ", ".join(str(int(h)) for h in matched)
        hints["probe_candidates"] = f"hash(event_id) IN ({values})"
        if not ids_given:
            stamps = store.execute(
                f"SELECT DISTINCT CAST(timestamp AS VARCHAR) FROM {typed} "
                f"WHERE __reason IS NULL AND hash(event_id) IN ({values})").fetchall()
            # Derived ids are a function of the timestamp (see validate.event_id_sql).
            hints["probe_where"] = "e.timestamp IN (" + ", ".join(
                f"CAST('{t}' AS TIMESTAMPTZ)" for (t,) in stamps) + ")"
    elif not ids_given and len(hashes):
        lo, hi = store.execute(
            f"SELECT CAST(min(timestamp) AS VARCHAR), CAST(max(timestamp) AS VARCHAR) "
            f"FROM {typed} WHERE __reason IS NULL").fetchone()
        # Derived ids are a function of the timestamp, so a stored event with the same id
        # has a timestamp inside this batch's range.
        hints["probe_where"] = (f"e.timestamp BETWEEN CAST('{lo}' AS TIMESTAMPTZ) "
                                f"AND CAST('{hi}' AS TIMESTAMPTZ)")
    return hints
