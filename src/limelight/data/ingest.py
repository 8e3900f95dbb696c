"""Ingest: read a source in chunks, validate and clean it, quarantine what is bad, store the rest.

Each chunk is one transaction in the store: its accepted rows, its quarantined rows and the
run's running totals are committed together, so a process killed mid-ingest leaves whole
chunks or nothing, and running the same ingest again completes it without duplicates (events
are deduplicated by ``event_id``, quarantined rows by source, line and content).

Every row read is counted exactly once, as accepted (new), duplicate (already stored or
repeated within the source) or rejected (in quarantine with a named reason), so
``read == accepted + duplicates + rejected`` holds for any input.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from limelight.data import readers, schema
from limelight.data.validate import KINDS, TimeBounds, validation_sql
from limelight.errors import IngestError, SchemaError

#: At most this many (line, reason) pairs are kept in a report; the quarantine keeps all.
MAX_REPORTED_REJECTIONS = 10_000

#: Columns that hold user ids, per entity (pseudonymized at ingest).
USER_ID_COLUMNS = {"events": ("user_id",), "users": ("user_id",), "contacts": ("user_id",),
                   "edges": ("src_user_id", "dst_user_id"), "items": ()}


@dataclass
class IngestReport:
    """What one ingest run did. ``read == accepted + duplicates + rejected`` always.

    Attributes
    ----------
    read
        Rows read from the source (empty lines of text files are not rows).
    accepted
        Rows stored (new, or changed for users/contacts/items).
    duplicates
        Valid rows already stored, or repeated within the source.
    rejected
        Rows quarantined; ``reasons`` counts them by reason.
    rejections
        ``(line_no, reason)`` of rejected rows (the first 10,000; the quarantine has all).
    accepted_event_ids
        Ids of the events stored by this run (collected for in-memory sources only).
    """

    run_id: str
    source: str
    entity: str
    format: str
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    rejections: list[tuple[int, str]] = field(default_factory=list)
    accepted_event_ids: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    status: str = "running"
    started_at: str = ""
    finished_at: str | None = None
    seconds: float = 0.0

    @property
    def reconciled(self) -> bool:
        """Whether every row read is accounted for."""
        return self.read == self.accepted + self.duplicates + self.rejected

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (rejections as ``[line, reason]`` pairs)."""
        out = {k: getattr(self, k) for k in (
            "run_id", "source", "entity", "format", "status", "read", "accepted", "duplicates",
            "rejected", "reasons", "ignored_columns", "started_at", "finished_at", "seconds")}
        out["rejections"] = [list(r) for r in self.rejections]
        out["accepted_event_ids"] = list(self.accepted_event_ids)
        out["reconciled"] = self.reconciled
        return out

    def _add(self, other: IngestReport) -> None:
        for name in ("read", "accepted", "duplicates", "rejected"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _settings(settings: Any | None) -> Any:
    if settings is None:
        from limelight.settings import get_settings

        settings = get_settings()
    return settings


def ingest_file(store: Any, path: str | Path, entity: str = "events", *,
                mapping: Mapping[str, str] | None = None, fmt: str | None = None,
                source_name: str | None = None, chunk_rows: int | None = None,
                progress: bool = False, constants: Mapping[str, object] | None = None,
                delimiter: str | None = None, header: bool = True, encoding: str = "utf-8",
                settings: Any | None = None) -> IngestReport:
    """Ingest a CSV/TSV (plain or gzip), JSON Lines or Parquet file into ``store``.

    Parameters
    ----------
    store
        A DuckDB-backed :class:`~limelight.store.base.EventStore`.
    path
        The file. Larger-than-memory files stream in chunks of ``chunk_rows``.
    entity
        ``events``, ``users``, ``contacts``, ``items`` or ``edges``.
    mapping
        Source column -> data-model column, e.g. ``{"CustomerID": "user_id"}``.
    fmt
        ``csv``, ``tsv``, ``jsonl`` or ``parquet``; guessed from the name when None.
    source_name
        Name recorded with quarantined rows (default: the file's path).
    chunk_rows
        Rows per chunk/transaction (default ``settings.ingest.chunk_rows``).
    progress
        Show a progress bar on stderr.
    constants
        Data-model column -> value for every row, e.g. ``{"type": "rating"}``.
    delimiter, header, encoding
        Text options; the delimiter is sniffed when None. Without a header, columns are
        named ``col0``, ``col1``, ...

    Returns
    -------
    IngestReport

    Example
    -------
    >>> ingest_file(store, "ratings.csv", mapping={"userId": "user_id", "movieId": "item_id",
    ...             "rating": "value"}, constants={"type": "rating"})  # doctest: +SKIP
    """
    settings = _settings(settings)
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"no such file: {path}")
    fmt = readers.detect_format(path, fmt)
    rows = chunk_rows or settings.ingest.chunk_rows
    if fmt in ("csv", "tsv"):
        delim = delimiter or ("\t" if fmt == "tsv" else None)
        chunks = readers.iter_csv(path, delimiter=delim, header=header, encoding=encoding,
                                  chunk_rows=rows)
        total = path.stat().st_size
    elif fmt == "jsonl":
        chunks = readers.iter_jsonl(path, encoding=encoding, chunk_rows=rows)
        total = path.stat().st_size
    else:
        from limelight.privacy.pseudonymize import pseudonymizer_from_settings

        # Pseudonymization maps ids in Arrow; otherwise DuckDB reads the file itself.
        if pseudonymizer_from_settings(settings) is None:
            chunks = readers.iter_parquet_ranges(path, chunk_rows=rows)
        else:
            chunks = readers.iter_parquet(path, chunk_rows=rows)
        total = _parquet_rows(path)
    if fmt != "parquet":  # DuckDB reads Parquet itself; text is parsed here, ahead
        chunks = readers.prefetch(chunks)
    return _run(store, chunks, entity, source=source_name or str(path), fmt=fmt,
                mapping=mapping, constants=constants, settings=settings, progress=progress,
                total=total, collect_ids=False, raw_lines=fmt in ("csv", "tsv"))


def ingest_frame(store: Any, frame: pd.DataFrame | pa.Table, entity: str = "events", *,
                 mapping: Mapping[str, str] | None = None, source_name: str = "frame",
                 constants: Mapping[str, object] | None = None, chunk_rows: int | None = None,
                 settings: Any | None = None) -> IngestReport:
    """Ingest an in-memory pandas DataFrame or Arrow table (row numbers count from 1).

    Example
    -------
    >>> ingest_frame(store, pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"],
    ...     "type": ["view"], "timestamp": ["2024-05-01T10:00:00Z"]}))  # doctest: +SKIP
    """
    settings = _settings(settings)
    rows = chunk_rows or settings.ingest.chunk_rows
    chunks = readers.iter_frame(frame, chunk_rows=rows)
    return _run(store, chunks, entity, source=source_name, fmt="frame", mapping=mapping,
                constants=constants, settings=settings, progress=False, total=None,
                collect_ids=True, raw_lines=False)


def ingest_records(store: Any, records: list[dict[str, Any]], entity: str = "events",
                   source_name: str = "api", *, settings: Any | None = None) -> IngestReport:
    """Ingest a list of dicts (e.g. an API request body); values may be any JSON types.

    Small event batches take a Python fast path (:mod:`limelight.data.records`) with the same
    rules, reasons and quarantine; anything it cannot read exactly comes through here.
    """
    from limelight.data import records as fast

    settings = _settings(settings)
    if fast.fast_path_applies(records, entity, settings):
        report = fast.ingest_event_records(store, records, source_name=source_name,
                                           settings=settings)
        if report is not None:
            return report
    frame = pd.DataFrame.from_records(
        [{k: readers._as_text(v) for k, v in r.items()} if isinstance(r, dict) else {}
         for r in records])
    if frame.empty and records:
        frame = pd.DataFrame(index=range(len(records)))
    table = pa.Table.from_pandas(frame.astype(object).where(frame.notna(), None),
                                 preserve_index=False) if len(frame.columns) else \
        pa.table({"__empty": pa.nulls(len(records), pa.string())})
    return ingest_frame(store, table, entity, source_name=source_name, settings=settings)


def _parquet_rows(path: Path) -> int | None:
    try:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    except Exception:
        return None


def _prepare(table: pa.Table, entity: str, mapping: Mapping[str, str],
             constants: Mapping[str, object]) -> tuple[pa.Table, list[str]]:
    """Rename mapped columns, add constants; returns the table and ignored source columns."""
    names = []
    for name in table.column_names:
        target = mapping.get(name, name)
        names.append(target)
    dupes = [n for n, c in Counter(names).items() if c > 1]
    if dupes:
        raise SchemaError(f"the mapping gives several columns the name(s) {dupes}")
    table = table.rename_columns(names)
    for col, value in constants.items():
        arr = pa.array([None if value is None else str(value)] * table.num_rows, pa.string())
        if col in table.column_names:
            table = table.set_column(table.column_names.index(col), col, arr)
        else:
            table = table.append_column(col, arr)
    known = set(KINDS[entity])
    keeps_extra = entity in ("users", "items")
    # Unknown columns stay in the chunk (quarantined rows keep them in ``raw``); validation
    # reads only model columns, and folds the rest into ``extra`` for users and items.
    ignored = [c for c in table.column_names
               if c not in known and c not in (readers.LINE, readers.RAW) and not keeps_extra]
    return table, ignored


def _check_columns(table: pa.Table, entity: str) -> None:
    missing = [c for c in schema.REQUIRED[entity] if c not in table.column_names]
    if missing:
        present = [c for c in table.column_names if c not in (readers.LINE, readers.RAW)]
        raise SchemaError(
            f"{entity} input lacks column(s) {', '.join(missing)} (it has {', '.join(present)}); "
            f"map one (--map SOURCE={missing[0]}) or set it (--const {missing[0]}=VALUE)")


def _run(store: Any, chunks: Iterator[readers.Chunk], entity: str, *, source: str, fmt: str,
         mapping: Mapping[str, str] | None, constants: Mapping[str, object] | None,
         settings: Any, progress: bool, total: int | None, collect_ids: bool,
         raw_lines: bool) -> IngestReport:
    if entity not in schema.ENTITIES:
        raise SchemaError(f"unknown entity {entity!r}; use one of {sorted(schema.ENTITIES)}")
    from limelight.privacy.pseudonymize import pseudonymizer_from_settings

    mapping = dict(mapping or {})
    unknown_targets = sorted(set(mapping.values()) - set(KINDS[entity]))
    if unknown_targets and entity not in ("users", "items"):
        raise SchemaError(f"mapping targets {unknown_targets} are not {entity} columns; "
                          f"known: {sorted(KINDS[entity])}")
    pseudo = pseudonymizer_from_settings(settings)
    bounds = TimeBounds(settings.ingest.min_timestamp, settings.ingest.max_future_seconds)
    report = IngestReport(run_id=uuid.uuid4().hex, source=source, entity=entity, format=fmt,
                          started_at=_now())
    started = datetime.now(UTC)
    bar = _progress_bar(progress, total, fmt)
    store.record_run(_run_row(report))
    seen = _RunIds() if entity == "events" else None
    try:
        for chunk in chunks:
            part = _ingest_chunk(store, chunk, entity, report, mapping, constants or {},
                                 bounds, pseudo, collect_ids, raw_lines and pseudo is None,
                                 seen)
            report._add(part)
            if len(report.rejections) < MAX_REPORTED_REJECTIONS:
                room = MAX_REPORTED_REJECTIONS - len(report.rejections)
                report.rejections.extend(part.rejections[:room])
            report.accepted_event_ids.extend(part.accepted_event_ids)
            if bar is not None:
                bar.update(chunk.progress - bar.n)
                bar.set_postfix(rows=report.read, rejected=report.rejected, refresh=False)
        report.status = "done"
    except BaseException:
        report.status = "failed"
        raise
    finally:
        if bar is not None:
            bar.close()
        report.finished_at = _now()
        report.seconds = round((datetime.now(UTC) - started).total_seconds(), 3)
        try:
            store.record_run(_run_row(report))
        except Exception:
            if report.status == "done":
                raise
    return report


def _progress_bar(progress: bool, total: int | None, fmt: str) -> Any:
    if not progress:
        return None
    from tqdm import tqdm

    unit = "row" if fmt == "parquet" else "B"
    return tqdm(total=total, unit=unit, unit_scale=True, file=sys.stderr, desc="ingest",
                dynamic_ncols=True)


def _run_row(report: IngestReport) -> dict[str, object]:
    row = report.to_dict()
    row.pop("rejections")
    row.pop("accepted_event_ids")
    return row


def _ingest_chunk(store: Any, chunk: readers.Chunk, entity: str, run: IngestReport,
                  mapping: Mapping[str, str], constants: Mapping[str, object],
                  bounds: TimeBounds, pseudo: Any, collect_ids: bool,
                  raw_lines: bool, seen: _RunIds | None = None) -> IngestReport:
    part = IngestReport(run_id=run.run_id, source=run.source, entity=entity, format=run.format)
    table, ignored = _prepare(chunk.table, entity, mapping, constants)
    for col in ignored:
        if col not in run.ignored_columns:
            run.ignored_columns.append(col)
    if chunk.n_read > len(chunk.malformed) or not chunk.malformed:
        _check_columns(table, entity)
    pairs = None
    if pseudo is not None:
        table, pairs = _pseudonymize(table, entity, pseudo)
    part.read = chunk.n_read
    batch_hashes = None
    view = f"__ingest_src_{uuid.uuid4().hex[:8]}"
    typed = f"__ingest_typed_{uuid.uuid4().hex[:8]}"
    n_rows = table.num_rows
    if chunk.parquet is not None:
        n_rows = chunk.parquet.n_rows
        store.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS " + chunk.parquet.relation(
            _renaming_select(chunk.table.column_names, table.column_names, constants)))
    else:
        store.register(view, table)
    try:
        with store.transaction():
            if n_rows:
                sql, columns = validation_sql(entity, table.schema, view, bounds=bounds)
                store.execute(f"CREATE OR REPLACE TEMP TABLE {typed} AS {sql}")
                ids_given = "event_id" in table.column_names
                if entity == "events" and seen is not None:
                    valid, hints, batch_hashes = _event_hints(store, typed, ids_given, seen)
                else:
                    valid, hints = _valid_summary(store, typed, entity, ids_given)
                rejected = _rejected_rows(store, typed, view, table, entity, chunk, raw_lines,
                                          pseudo is not None)
                inserted, ids = store.insert_from(
                    entity, f"(SELECT * FROM {typed} WHERE __reason IS NULL)", columns,
                    order_by="__line", returning=collect_ids and entity == "events", **hints)
                part.accepted = inserted
                part.duplicates = valid - inserted
                part.accepted_event_ids = ids
                store.execute(f"DROP TABLE {typed}")
            else:
                rejected = []
            withheld = "[withheld: pseudonymization is on]"
            rejected += [(line, reason, raw if pseudo is None else withheld, None)
                         for line, reason, raw in chunk.malformed]
            _quarantine(store, rejected, run, entity)
            if pairs is not None and pairs.num_rows and entity != "contacts":
                store.write("contacts", pairs)  # the one link back to the raw id
            part.rejected = len(rejected)
            part.reasons = dict(Counter(r[1] for r in rejected))
            part.rejections = [(r[0], r[1]) for r in rejected[:MAX_REPORTED_REJECTIONS]]
            snapshot = IngestReport(**{**run.__dict__, "reasons": dict(run.reasons)})
            snapshot._add(part)
            store.record_run(_run_row(snapshot))
        if batch_hashes is not None:  # committed: later batches may skip these ids' probe
            seen.add(batch_hashes, part.accepted)
    finally:
        if chunk.parquet is not None:
            store.execute(f"DROP VIEW IF EXISTS {view}")
        else:
            store.unregister(view)
    return part


def _renaming_select(source: list[str], prepared: list[str],
                     constants: Mapping[str, object]) -> str:
    """SQL select list doing what :func:`_prepare` does to an Arrow table (by position)."""
    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    out = []
    for i, name in enumerate(prepared):
        if name in constants:
            value = constants[name]
            literal = "NULL" if value is None else "'" + str(value).replace("'", "''") + "'"
            out.append(f"CAST({literal} AS VARCHAR) AS {q(name)}")
        else:
            out.append(f"{q(source[i])} AS {q(name)}")
    return ", ".join(out)


class _RunIds:
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


#: Above this many repeated hashes in one batch, the repeat pass scans the whole batch.
_MAX_INLINE_REPEATS = 5_000


def _event_hints(store: Any, typed: str, ids_given: bool, seen: _RunIds
                 ) -> tuple[int, dict[str, Any], np.ndarray]:
    """Valid rows, insert hints and sorted id hashes of an event batch.

    One pass fetches the 64-bit hash of every valid row's id. Distinct hashes prove distinct
    ids (no within-batch pass); otherwise only rows with a repeated hash join that pass. While
    the store holds only this run's events, the anti-join against the store is skipped when
    none of their hashes occurs in the batch, and otherwise looks up only the batch rows
    whose hash does (a handful), so its cost no longer grows with the batch or the store.
    """
    hashes = store.execute(
        f"SELECT hash(event_id) AS h FROM {typed} WHERE __reason IS NULL").fetchnumpy()["h"]
    hashes = np.sort(np.asarray(hashes, dtype=np.uint64))
    repeated = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
    hints: dict[str, Any] = {"distinct_keys": not len(repeated)}
    if 0 < len(repeated) <= _MAX_INLINE_REPEATS:
        values = ", ".join(str(int(h)) for h in repeated)
        hints["repeats_where"] = f"hash(event_id) IN ({values})"
    stored = store.execute("SELECT count(*) FROM events").fetchone()[0]
    matched = seen.seen(hashes) if stored == seen.inserted else None
    if matched is not None and not len(matched):
        hints["probe_store"] = False
    elif matched is not None and len(matched) <= _MAX_INLINE_REPEATS:
        # Every stored id is one of this run's, so only rows whose hash the run has stored
        # can repeat a stored id: the probe looks up those few ids, not the whole batch.
        values = ", ".join(str(int(h)) for h in matched)
        hints["probe_candidates"] = f"hash(event_id) IN ({values})"
        if not ids_given:
            stamps = store.execute(
                f"SELECT DISTINCT CAST(timestamp AS VARCHAR) FROM {typed} "
                f"WHERE __reason IS NULL AND hash(event_id) IN ({values})").fetchall()
            # Derived ids are a function of the timestamp (see _valid_summary).
            hints["probe_where"] = "e.timestamp IN (" + ", ".join(
                f"CAST('{t}' AS TIMESTAMPTZ)" for (t,) in stamps) + ")"
    elif not ids_given and len(hashes):
        lo, hi = store.execute(
            f"SELECT CAST(min(timestamp) AS VARCHAR), CAST(max(timestamp) AS VARCHAR) "
            f"FROM {typed} WHERE __reason IS NULL").fetchone()
        # Derived ids are a function of the timestamp (see _valid_summary).
        hints["probe_where"] = (f"e.timestamp BETWEEN CAST('{lo}' AS TIMESTAMPTZ) "
                                f"AND CAST('{hi}' AS TIMESTAMPTZ)")
    return len(hashes), hints, hashes


def _valid_summary(store: Any, typed: str, entity: str, ids_given: bool
                   ) -> tuple[int, dict[str, Any]]:
    """Number of valid rows, and hints that let the store skip work for event batches."""
    if entity != "events":
        row = store.execute(f"SELECT count(*) FROM {typed} WHERE __reason IS NULL").fetchone()
        return int(row[0]), {}
    n, distinct, lo, hi = store.execute(
        f"SELECT count(*), count(DISTINCT event_id), CAST(min(timestamp) AS VARCHAR), "
        f"CAST(max(timestamp) AS VARCHAR) FROM {typed} WHERE __reason IS NULL").fetchone()
    hints: dict[str, Any] = {"distinct_keys": n == distinct}
    if not ids_given and lo is not None:
        # Derived ids are a function of the timestamp, so a stored event with the same id
        # has a timestamp inside this batch's range.
        hints["probe_where"] = (f"e.timestamp BETWEEN CAST('{lo}' AS TIMESTAMPTZ) "
                                f"AND CAST('{hi}' AS TIMESTAMPTZ)")
    return int(n), hints


def _rejected_rows(store: Any, typed: str, view: str, table: pa.Table, entity: str,
                   chunk: readers.Chunk, raw_lines: bool, pseudonymized: bool
                   ) -> list[tuple[int, str, str, Any]]:
    """(line, reason, raw, user_id) of the chunk's rows that failed validation."""
    uid = USER_ID_COLUMNS[entity][0] if USER_ID_COLUMNS[entity] else None
    uid_sql = f't."{uid}"' if uid and uid in table.column_names else "NULL"
    source_cols = [c for c in table.column_names if c not in (readers.LINE, readers.RAW)]
    pack = ", ".join('"' + c.replace('"', '""') + '" := s."' + c.replace('"', '""') + '"'
                     for c in source_cols)
    raw_sql = "NULL" if raw_lines or not pack else f"CAST(to_json(struct_pack({pack})) AS VARCHAR)"
    if readers.RAW in table.column_names and not pseudonymized:
        raw_sql = f"s.{readers.RAW}"
    rows = store.execute(
        f"SELECT t.__line, t.__reason, {raw_sql}, {uid_sql} FROM {typed} t "
        f"JOIN {view} s ON s.__line = t.__line WHERE t.__reason IS NOT NULL ORDER BY t.__line"
    ).fetchall()
    if raw_lines and rows and chunk.raw_of is not None:
        raws = chunk.raw_of([r[0] for r in rows])
        rows = [(r[0], r[1], raw, r[3]) for r, raw in zip(rows, raws, strict=True)]
    return [tuple(r) for r in rows]


def _quarantine(store: Any, rejected: list[tuple[int, str, str, Any]], run: IngestReport,
                entity: str) -> None:
    if not rejected:
        return
    table = pa.table({
        "source": pa.array([run.source] * len(rejected), pa.string()),
        "line_no": pa.array([r[0] for r in rejected], pa.int64()),
        "raw": pa.array([r[2] for r in rejected], pa.string()),
        "reason": pa.array([r[1] for r in rejected], pa.string()),
        "entity": pa.array([entity] * len(rejected), pa.string()),
        "user_id": pa.array([r[3] for r in rejected], pa.string()),
        "run_id": pa.array([run.run_id] * len(rejected), pa.string()),
    })
    store.quarantine(table)


def _pseudonymize(table: pa.Table, entity: str, pseudo: Any) -> tuple[pa.Table, pa.Table]:
    pairs = []
    for col in USER_ID_COLUMNS[entity]:
        if col not in table.column_names:
            continue
        mapped, found = pseudo.map_array(table.column(col))
        if entity == "contacts" and col == "user_id" and "external_id" not in table.column_names:
            raw = pc.utf8_trim_whitespace(table.column(col).cast(pa.string()))
            table = table.append_column("external_id", raw)
        table = table.set_column(table.column_names.index(col), col, mapped)
        pairs.append(found)
    if not pairs:
        return table, pa.table({"user_id": pa.array([], pa.string()),
                                "external_id": pa.array([], pa.string())})
    return table, pa.concat_tables(pairs)


def report_json(report: IngestReport) -> str:
    """The report as indented JSON."""
    return json.dumps(report.to_dict(), indent=2, default=str)
