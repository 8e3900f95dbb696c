"""Validating ingest chunks into staging tables, ahead of the chunk being stored.

Each chunk is renamed and mapped (:func:`_prepare`), checked for required columns, optionally
pseudonymized, and validated by one SQL pass (:func:`limelight.data.validate.validation_sql`)
into a table of the store's in-memory staging database: typed model columns, the reason of
each bad row, line numbers, and for events the hash of each id, with repeated ids already
settled (:mod:`limelight.data.dedupe`). The rejected rows are fetched with their raw content.
Nothing here reads or writes the store's tables, so :func:`staged_chunks` runs it on a helper
thread for the next chunks while :mod:`limelight.data.ingest` stores the current one.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from limelight.data import readers, schema
from limelight.data.dedupe import RunIds, hash_column, settle_repeats
from limelight.data.validate import KINDS, TimeBounds, _q, validation_sql
from limelight.errors import SchemaError
from limelight.store.duckdb import run_sql

#: Validate the next chunks on a helper thread while the current one is stored (see
#: ``staged_chunks``); False validates and stores one chunk after the other on the caller's
#: thread, with the same results.
VALIDATE_AHEAD = True

#: How many chunks the helper may validate ahead of the chunk being stored. Two let it run on
#: while one slow insert or commit finishes, instead of idling (10M-row Parquet on 2 cores:
#: 11.3 -> 10.4 s, medians of 4 alternating runs); each costs one staged chunk of memory.
STAGED_AHEAD = 2


#: Columns that hold user ids, per entity (pseudonymized at ingest).
USER_ID_COLUMNS = {"events": ("user_id",), "users": ("user_id",), "contacts": ("user_id",),
                   "edges": ("src_user_id", "dst_user_id"), "items": ()}


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
class RunContext:
    """What every chunk of one run shares."""

    store: Any
    entity: str
    run: Any  # the run's IngestReport
    mapping: Mapping[str, str]
    constants: Mapping[str, object]
    bounds: TimeBounds
    pseudo: Any
    collect_ids: bool
    raw_lines: bool
    seen: RunIds | None


@dataclass
class Staged:
    """A chunk validated into a staging table, waiting to be stored (see :func:`_stage`)."""

    part: Any  # the chunk's IngestReport
    progress: int
    ignored: list[str]
    seq: int = 0
    typed: str | None = None
    columns: list[str] = field(default_factory=list)
    ids_given: bool = False
    n_valid: int = 0
    hashes: np.ndarray | None = None
    hints: dict[str, Any] = field(default_factory=dict)
    rejected: list[tuple[int, str, str, Any]] = field(default_factory=list)
    pairs: pa.Table | None = None


def staged_chunks(ctx: RunContext, chunks: Iterator[readers.Chunk]) -> Iterator[Staged]:
    """Chunks validated ahead: up to :data:`STAGED_AHEAD` chunks are validated while the
    caller stores the current one.

    Validation (the SQL pass that types, checks and derives ids) and the insert each keep
    about one core busy, and DuckDB releases the GIL, so a helper thread with its own cursor
    validates the next chunks into staging tables while this thread inserts the current one.
    Validation reads only the chunk, never the store, so each chunk's outcome is the same as
    when the two steps ran one after the other; chunks are still stored (and committed) one
    at a time, in order. A source of one chunk (an API batch, a small file) has nothing to
    overlap and is validated on this thread, leaving DuckDB's threads as they are. Every
    staging table is dropped, whatever happens.
    """
    stage_db = ctx.store.staging()
    rest = iter(chunks)
    head = list(islice(rest, 2))
    try:
        if VALIDATE_AHEAD and len(head) > 1:
            yield from _validated_ahead(ctx, chain(head, rest), stage_db)
        else:
            with ctx.store.side_cursor() as cur:
                for seq, chunk in enumerate(chain(head, rest)):
                    yield _stage(ctx, cur, stage_db, chunk, seq)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:  # stops a read-ahead thread
            close()


def _validated_ahead(ctx: RunContext, chunks: Iterator[readers.Chunk], stage_db: str
                     ) -> Iterator[Staged]:
    """Chunks validated on a helper thread, up to :data:`STAGED_AHEAD` ahead of the one the
    caller stores; the pipeline's two ends are kept busy too.

    - Start: this thread validates the first chunk while the helper starts on the next
      ones, instead of waiting idle for the helper's first result.
    - Middle: the helper's validation keeps a core busy (one Parquet row group is a single
      task), so the insert beside it runs with one DuckDB thread fewer (``lend_thread``).
    - End: once the helper has nothing left to validate, the last inserts get every DuckDB
      thread back. A multi-threaded insert also writes its row groups as it goes, so its
      commit has nothing left to write (1M events: 0.45 s insert + 0.01 s commit on two
      threads against 0.65 s + 0.25 s on one, at the same CPU).
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    pending: list[Future[Staged]] = []
    numbered = enumerate(chunks)
    lent = ExitStack()
    with ctx.store.side_cursor() as cur, ctx.store.side_cursor() as own, lent, \
            ThreadPoolExecutor(1, thread_name_prefix="ingest-validate") as pool:
        lent.enter_context(ctx.store.lend_thread())
        try:
            first = next(numbered, None)
            for seq, chunk in islice(numbered, STAGED_AHEAD):
                pending.append(pool.submit(_stage, ctx, cur, stage_db, chunk, seq))
            if first is not None:
                yield _stage(ctx, own, stage_db, first[1], first[0])
            for seq, chunk in numbered:
                pending.append(pool.submit(_stage, ctx, cur, stage_db, chunk, seq))
                if len(pending) > STAGED_AHEAD:
                    yield pending.pop(0).result()
            while pending:
                staged = pending.pop(0).result()
                if all(fut.done() for fut in pending):
                    lent.close()  # the helper is idle: the remaining inserts get its core
                yield staged
        finally:
            if pending:  # stopped early: let the helper finish, then drop what it staged
                cur.interrupt()
                for fut in pending:
                    with suppress(BaseException):
                        drop_staged(ctx.store, fut.result())


def drop_staged(store: Any, staged: Staged) -> None:
    if staged.typed is not None:
        store.execute(f"DROP TABLE IF EXISTS {staged.typed}")
        staged.typed = None


def _stage(ctx: RunContext, cur: Any, stage_db: str, chunk: readers.Chunk, seq: int
           ) -> Staged:
    """Validate chunk number ``seq`` (0, 1, ... in source order) into a staging table, on
    ``cur``, a cursor of the calling thread's own.

    Everything here depends on the chunk alone: the typed rows, their id hashes, the rejected
    rows with their raw content. What depends on the store happens in
    :func:`limelight.data.ingest._store_chunk`.
    """
    from limelight.data.ingest import IngestReport

    run, entity = ctx.run, ctx.entity
    part = IngestReport(run_id=run.run_id, source=run.source, entity=entity, format=run.format)
    table, ignored = _prepare(chunk.table, entity, ctx.mapping, ctx.constants)
    if chunk.n_read > len(chunk.malformed) or not chunk.malformed:
        _check_columns(table, entity)
    staged = Staged(part=part, progress=chunk.progress, ignored=ignored, seq=seq)
    if ctx.pseudo is not None:
        table, staged.pairs = _pseudonymize(table, entity, ctx.pseudo)
    part.read = chunk.n_read
    tag = uuid.uuid4().hex[:8]
    view = f"__ingest_src_{tag}"
    n_rows = table.num_rows
    if chunk.parquet is not None:
        n_rows = chunk.parquet.n_rows
        run_sql(cur, f"CREATE OR REPLACE TEMP VIEW {view} AS " + chunk.parquet.relation(
            _renaming_select(chunk.table.column_names, table.column_names, ctx.constants)))
    else:
        cur.register(view, table)
    try:
        if n_rows:
            sql, staged.columns = validation_sql(entity, table.schema, view, bounds=ctx.bounds)
            staged.typed = f"{stage_db}.__ingest_typed_{tag}"
            if ctx.seen is not None:
                sql = hash_column(sql)
            run_sql(cur, f"CREATE TABLE {staged.typed} AS {sql}")
            staged.ids_given = "event_id" in table.column_names
            if ctx.seen is not None:
                staged.hashes, staged.hints = settle_repeats(cur, staged.typed)
                staged.n_valid = len(staged.hashes)
            else:
                staged.n_valid = int(run_sql(cur, f"SELECT count(*) FROM {staged.typed} "
                                               f"WHERE __reason IS NULL").fetchone()[0])
            if staged.n_valid < n_rows:  # a clean chunk skips the join with its source
                staged.rejected = _rejected_rows(cur, staged.typed, view, table, entity,
                                                 chunk, ctx.raw_lines, ctx.pseudo is not None)
        if ctx.seen is not None:  # every chunk is offered, an empty one too
            ctx.seen.offer(seq, staged.hashes)
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


def _renaming_select(source: list[str], prepared: list[str],
                     constants: Mapping[str, object]) -> str:
    """SQL select list doing what :func:`_prepare` does to an Arrow table (by position)."""
    out = []
    for i, name in enumerate(prepared):
        if name in constants:
            value = constants[name]
            literal = "NULL" if value is None else "'" + str(value).replace("'", "''") + "'"
            out.append(f"CAST({literal} AS VARCHAR) AS {_q(name)}")
        else:
            out.append(f"{_q(source[i])} AS {_q(name)}")
    return ", ".join(out)


def _rejected_rows(cur: Any, typed: str, view: str, table: pa.Table, entity: str,
                   chunk: readers.Chunk, raw_lines: bool, pseudonymized: bool
                   ) -> list[tuple[int, str, str, Any]]:
    """(line, reason, raw, user_id) of the chunk's rows that failed validation."""
    uid = USER_ID_COLUMNS[entity][0] if USER_ID_COLUMNS[entity] else None
    uid_sql = f't."{uid}"' if uid and uid in table.column_names else "NULL"
    source_cols = [c for c in table.column_names if c not in (readers.LINE, readers.RAW)]
    pack = ", ".join(f"{_q(c)} := s.{_q(c)}" for c in source_cols)
    raw_sql = "NULL" if raw_lines or not pack else f"CAST(to_json(struct_pack({pack})) AS VARCHAR)"
    if readers.RAW in table.column_names and not pseudonymized:
        raw_sql = f"s.{readers.RAW}"
    rows = run_sql(cur, f"SELECT t.__line, t.__reason, {raw_sql}, {uid_sql} FROM {typed} t "
                     f"JOIN {view} s ON s.__line = t.__line WHERE t.__reason IS NOT NULL "
                     f"ORDER BY t.__line").fetchall()
    if raw_lines and rows and chunk.raw_of is not None:
        raws = chunk.raw_of([r[0] for r in rows])
        rows = [(r[0], r[1], raw, r[3]) for r, raw in zip(rows, raws, strict=True)]
    return [tuple(r) for r in rows]


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
