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
from contextlib import closing, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from limelight.data import readers, schema
from limelight.data.dedupe import RunIds, hash_column, settle_repeats, settle_stored
from limelight.data.validate import KINDS, TimeBounds, validation_sql
from limelight.errors import IngestError, SchemaError, StoreError

#: At most this many (line, reason) pairs are kept in a report; the quarantine keeps all.
MAX_REPORTED_REJECTIONS = 10_000

#: Validate the next chunk on a helper thread while the current one is stored (see
#: ``_staged_chunks``); False validates and stores one chunk after the other on the caller's
#: thread, with the same results.
VALIDATE_AHEAD = True

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


@dataclass
class _Context:
    """What every chunk of one run shares."""

    store: Any
    entity: str
    run: IngestReport
    mapping: Mapping[str, str]
    constants: Mapping[str, object]
    bounds: TimeBounds
    pseudo: Any
    collect_ids: bool
    raw_lines: bool
    seen: RunIds | None


@dataclass
class _Staged:
    """A chunk validated into a staging table, waiting to be stored (see :func:`_stage`)."""

    part: IngestReport
    progress: int
    ignored: list[str]
    typed: str | None = None
    columns: list[str] = field(default_factory=list)
    ids_given: bool = False
    n_valid: int = 0
    hashes: np.ndarray | None = None
    hints: dict[str, Any] = field(default_factory=dict)
    rejected: list[tuple[int, str, str, Any]] = field(default_factory=list)
    pairs: pa.Table | None = None


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
    report = IngestReport(run_id=uuid.uuid4().hex, source=source, entity=entity, format=fmt,
                          started_at=_now())
    ctx = _Context(store, entity, report, mapping, dict(constants or {}),
                   TimeBounds(settings.ingest.min_timestamp, settings.ingest.max_future_seconds),
                   pseudo, collect_ids, raw_lines and pseudo is None,
                   RunIds() if entity == "events" else None)
    started = datetime.now(UTC)
    bar = _progress_bar(progress, total, fmt)
    store.record_run(_run_row(report))
    try:
        with closing(_staged_chunks(ctx, chunks)) as staged_chunks:
            for staged in staged_chunks:
                part = _store_chunk(ctx, staged)
                report._add(part)
                if len(report.rejections) < MAX_REPORTED_REJECTIONS:
                    room = MAX_REPORTED_REJECTIONS - len(report.rejections)
                    report.rejections.extend(part.rejections[:room])
                report.accepted_event_ids.extend(part.accepted_event_ids)
                if bar is not None:
                    bar.update(staged.progress - bar.n)
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


def _staged_chunks(ctx: _Context, chunks: Iterator[readers.Chunk]) -> Iterator[_Staged]:
    """Chunks validated one ahead: chunk N+1 is validated while the caller stores chunk N.

    Validation (the SQL pass that types, checks and derives ids) and the insert each keep
    about one core busy, and DuckDB releases the GIL, so a helper thread with its own cursor
    validates the next chunk into a staging table while this thread inserts the current one.
    Validation reads only the chunk, never the store, so each chunk's outcome is the same as
    when the two steps ran one after the other; chunks are still stored (and committed) one
    at a time, in order. Every staging table is dropped, whatever happens.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    stage_db = ctx.store.staging()
    if not VALIDATE_AHEAD:
        with ctx.store.side_cursor() as cur:
            try:
                for chunk in chunks:
                    yield _stage(ctx, cur, stage_db, chunk)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        return
    pending: list[Future[_Staged]] = []
    with ctx.store.side_cursor() as cur, \
            ThreadPoolExecutor(1, thread_name_prefix="ingest-validate") as pool:
        try:
            for chunk in chunks:
                pending.append(pool.submit(_stage, ctx, cur, stage_db, chunk))
                if len(pending) > 1:
                    yield _take(ctx, pending)
            while pending:
                yield _take(ctx, pending)
        finally:
            if pending:  # stopped early: let the helper finish, then drop what it staged
                cur.interrupt()
                for fut in pending:
                    with suppress(BaseException):
                        _drop_staged(ctx.store, fut.result())
            close = getattr(chunks, "close", None)
            if close is not None:  # stops a read-ahead thread
                close()


def _take(ctx: _Context, pending: list[Any]) -> _Staged:
    staged = pending[0].result()
    pending.pop(0)
    for col in staged.ignored:
        if col not in ctx.run.ignored_columns:
            ctx.run.ignored_columns.append(col)
    return staged


def _drop_staged(store: Any, staged: _Staged) -> None:
    if staged.typed is not None:
        store.execute(f"DROP TABLE IF EXISTS {staged.typed}")
        staged.typed = None


def _sql(cur: Any, sql: str) -> Any:
    try:
        return cur.execute(sql)
    except duckdb.Error as exc:
        raise StoreError(f"SQL failed: {exc}") from exc


def _stage(ctx: _Context, cur: Any, stage_db: str, chunk: readers.Chunk) -> _Staged:
    """Validate one chunk into a staging table; runs on the helper thread's cursor.

    Everything here depends on the chunk alone: the typed rows, their id hashes, the rejected
    rows with their raw content. What depends on the store happens in :func:`_store_chunk`.
    """
    run, entity = ctx.run, ctx.entity
    part = IngestReport(run_id=run.run_id, source=run.source, entity=entity, format=run.format)
    table, ignored = _prepare(chunk.table, entity, ctx.mapping, ctx.constants)
    if chunk.n_read > len(chunk.malformed) or not chunk.malformed:
        _check_columns(table, entity)
    staged = _Staged(part=part, progress=chunk.progress, ignored=ignored)
    if ctx.pseudo is not None:
        table, staged.pairs = _pseudonymize(table, entity, ctx.pseudo)
    part.read = chunk.n_read
    tag = uuid.uuid4().hex[:8]
    view = f"__ingest_src_{tag}"
    n_rows = table.num_rows
    if chunk.parquet is not None:
        n_rows = chunk.parquet.n_rows
        _sql(cur, f"CREATE OR REPLACE TEMP VIEW {view} AS " + chunk.parquet.relation(
            _renaming_select(chunk.table.column_names, table.column_names, ctx.constants)))
    else:
        cur.register(view, table)
    try:
        if n_rows:
            sql, staged.columns = validation_sql(entity, table.schema, view, bounds=ctx.bounds)
            staged.typed = f"{stage_db}.__ingest_typed_{tag}"
            if ctx.seen is not None:
                sql = hash_column(sql)
            _sql(cur, f"CREATE TABLE {staged.typed} AS {sql}")
            staged.ids_given = "event_id" in table.column_names
            if ctx.seen is not None:
                staged.hashes, staged.hints = settle_repeats(cur, staged.typed)
                staged.n_valid = len(staged.hashes)
            else:
                staged.n_valid = int(_sql(cur, f"SELECT count(*) FROM {staged.typed} "
                                               f"WHERE __reason IS NULL").fetchone()[0])
            staged.rejected = _rejected_rows(cur, staged.typed, view, table, entity, chunk,
                                             ctx.raw_lines, ctx.pseudo is not None)
        withheld = "[withheld: pseudonymization is on]"
        staged.rejected += [(line, reason, raw if ctx.pseudo is None else withheld, None)
                            for line, reason, raw in chunk.malformed]
    except BaseException:
        with suppress(Exception):
            if staged.typed is not None:
                cur.execute(f"DROP TABLE IF EXISTS {staged.typed}")
        raise
    finally:
        if chunk.parquet is not None:
            with suppress(duckdb.Error):
                cur.execute(f"DROP VIEW IF EXISTS {view}")
        else:
            with suppress(duckdb.Error):
                cur.unregister(view)
    return staged


def _store_chunk(ctx: _Context, staged: _Staged) -> IngestReport:
    """Store one staged chunk in one transaction: its new rows, quarantine, run totals."""
    store, entity, run, part = ctx.store, ctx.entity, ctx.run, staged.part
    try:
        # The write lock is held from the duplicate check to the commit, so no other writer
        # can store one of this chunk's ids in between.
        with store.exclusive():
            if staged.typed is not None and staged.hashes is not None and ctx.seen is not None:
                # Before the transaction: it deletes from the staging table (another database).
                staged.hints.update(settle_stored(store, staged.typed, staged.hashes,
                                                  staged.ids_given, ctx.seen))
            with store.transaction():
                if staged.typed is not None:
                    inserted, ids = store.insert_from(
                        entity, f"(SELECT * FROM {staged.typed} WHERE __reason IS NULL)",
                        staged.columns, order_by="__line",
                        returning=ctx.collect_ids and entity == "events", **staged.hints)
                    part.accepted = inserted
                    part.duplicates = staged.n_valid - inserted
                    part.accepted_event_ids = ids
                _quarantine(store, staged.rejected, run, entity)
                if staged.pairs is not None and staged.pairs.num_rows and entity != "contacts":
                    store.write("contacts", staged.pairs)  # the one link back to the raw id
                part.rejected = len(staged.rejected)
                part.reasons = dict(Counter(r[1] for r in staged.rejected))
                part.rejections = [(r[0], r[1])
                                   for r in staged.rejected[:MAX_REPORTED_REJECTIONS]]
                snapshot = IngestReport(**{**run.__dict__, "reasons": dict(run.reasons)})
                snapshot._add(part)
                store.record_run(_run_row(snapshot))
        if staged.hashes is not None and ctx.seen is not None:
            # committed: later batches may skip these ids' probe
            ctx.seen.add(staged.hashes, part.accepted)
    finally:
        _drop_staged(store, staged)  # outside the transaction: it writes another database
    return part


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


def _rejected_rows(cur: Any, typed: str, view: str, table: pa.Table, entity: str,
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
    rows = _sql(cur, f"SELECT t.__line, t.__reason, {raw_sql}, {uid_sql} FROM {typed} t "
                     f"JOIN {view} s ON s.__line = t.__line WHERE t.__reason IS NOT NULL "
                     f"ORDER BY t.__line").fetchall()
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
