"""The embedded default event store: one DuckDB file (or ``:memory:``).

Design notes
------------
* Schema changes are versioned migrations (:data:`MIGRATIONS`, applied in order, recorded in
  ``schema_version``), so a store written by an older Limelight opens in a newer one.
* Events live in table ``event_log``, keyed by a 128-bit ``event_key`` (the digest behind each
  event id, see :mod:`limelight.data.event_keys`); the view ``events`` shows them with their
  public ``event_id``, and every read goes through it. Events carry no primary-key index: an
  ART index over tens of millions of keys costs more memory and insert time than an
  anti-join against the stored ``event_key`` column, which is how duplicates are skipped.
  Attributes that few events have share one JSON column (:mod:`limelight.store.event_layout`),
  since DuckDB pays for every column of every row; the view shows them as columns.
  Users, contacts, items and edges are small and keyed, so they use ``INSERT ... ON
  CONFLICT``.
* Thread safety: DuckDB connections must not be shared between threads, so each thread gets its
  own cursor on the one database; writers are serialised by a re-entrant lock, and every write
  is one transaction (a killed process leaves whole batches or nothing).
* Everything about a user is keyed by ``user_id`` (events, users, contacts, both ends of edges,
  quarantined rows) so :meth:`DuckDBEventStore.user_rows` and
  :meth:`DuckDBEventStore.delete_user` reach all of it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from limelight.data import event_keys, schema
from limelight.errors import SchemaError, StoreError
from limelight.store import event_layout

#: Tables a user's data lives in, with the columns that hold the user id.
USER_COLUMNS: dict[str, tuple[str, ...]] = {
    "events": ("user_id",),
    "users": ("user_id",),
    "contacts": ("user_id",),
    "edges": ("src_user_id", "dst_user_id"),
    "quarantine": ("user_id",),
}

#: The table that stores events (``events`` is the view over it that every read uses).
EVENT_TABLE = "event_log"

#: Tables every store has besides the entities.
SYSTEM_TABLES = ("quarantine", "ingest_runs")

#: Entities whose rows are replaced when their key arrives again (others are kept as stored).
UPSERT_ENTITIES = {"users", "contacts", "items"}

#: The in-memory database beside the store that holds staging tables (see ``staging()``).
STAGING_DATABASE = "limelight_staging"


def duck_type(dtype: pa.DataType) -> str:
    """The DuckDB column type for an Arrow type of the data model."""
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "VARCHAR"
    if pa.types.is_float64(dtype):
        return "DOUBLE"
    if pa.types.is_int32(dtype):
        return "INTEGER"
    if pa.types.is_int64(dtype):
        return "BIGINT"
    if pa.types.is_boolean(dtype):
        return "BOOLEAN"
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMPTZ" if dtype.tz else "TIMESTAMP"
    if pa.types.is_list(dtype) and pa.types.is_string(dtype.value_type):
        return "VARCHAR[]"
    raise SchemaError(f"no DuckDB type for Arrow type {dtype}")


def _column_ddl(field: pa.Field, compression: str | None = None) -> str:
    return (f'"{field.name}" {duck_type(field.type)}'
            + (f" USING COMPRESSION {compression}" if compression else "")
            + ("" if field.nullable else " NOT NULL"))


def _entity_ddl(entity: str, *, table: str | None = None,
                compression: dict[str, str] | None = None) -> str:
    compression = compression or {}
    cols = [_column_ddl(f, compression.get(f.name)) for f in schema.ENTITIES[entity]]
    if entity != "events":  # events are deduplicated by anti-join, see the module notes
        cols.append("PRIMARY KEY (" + ", ".join(schema.KEYS[entity]) + ")")
    return f"CREATE TABLE IF NOT EXISTS {table or entity} (" + ", ".join(cols) + ")"


#: Event columns stored without compression. Derived event ids are md5 hex digests: DuckDB's
#: string compression cannot shrink them much but analysing them took ~0.5 CPU-s per million
#: inserted rows, a third of the insert.
EVENT_COMPRESSION = {"event_id": "uncompressed"}


def _rebuild_events() -> list[str]:
    """Statements that copy ``events`` into a table with :data:`EVENT_COMPRESSION`."""
    cols = ", ".join(f'"{c}"' for c in schema.ENTITIES["events"].names)
    return [_entity_ddl("events", table="events__rebuild", compression=EVENT_COMPRESSION),
            f"INSERT INTO events__rebuild ({cols}) SELECT {cols} FROM events",
            "DROP TABLE events",
            "ALTER TABLE events__rebuild RENAME TO events"]


def _event_log() -> list[str]:
    """Statements that move ``events`` into :data:`EVENT_TABLE` with 16-byte keys, and make
    ``events`` the view that shows each event's public id (see :mod:`limelight.data.event_keys`).

    A stored id maps to its key by the same rule as an id given at ingest, so derived ids
    (canonical digests) keep no text and re-ingesting their content still finds them.
    """
    fields = schema.ENTITIES["events"]
    rest = [n for n in fields.names if n != "event_id"]
    cols = [_column_ddl(f.with_nullable(True) if f.name == "event_id" else f) for f in fields]
    rest_sql = ", ".join(f'"{n}"' for n in rest)
    shown = ", ".join(f'"{n}"' if n != "event_id" else
                      f"{event_keys.public_id_sql()} AS event_id" for n in fields.names)
    return [f"CREATE TABLE {EVENT_TABLE} ({event_keys.KEY} {event_keys.KEY_TYPE} NOT NULL, "
            f"{', '.join(cols)})",
            f"INSERT INTO {EVENT_TABLE} ({event_keys.KEY}, event_id, {rest_sql}) SELECT "
            f"{event_keys.given_key_sql('event_id')}, "
            f"{event_keys.stored_text_sql('event_id')}, {rest_sql} FROM events",
            "DROP TABLE events",
            f"CREATE VIEW events AS SELECT {shown} FROM {EVENT_TABLE}"]


def _pack_sparse_event_columns() -> list[str]:
    """Statements that rebuild ``event_log`` with the sparse attributes in one ``details``
    column (see :mod:`limelight.store.event_layout`), and the ``events`` view over it."""
    dense = event_layout.dense_fields()
    names = [event_keys.KEY, *(f.name for f in dense)]
    stored, exprs = event_layout.stored_select([*names, *event_layout.SPARSE])
    return [f"CREATE TABLE {EVENT_TABLE}__packed ({event_keys.KEY} {event_keys.KEY_TYPE} "
            f"NOT NULL, {', '.join(_column_ddl(f) for f in dense)}, "
            f"{event_layout.DETAILS} VARCHAR)",
            f"INSERT INTO {EVENT_TABLE}__packed ({', '.join(stored)}) "
            f"SELECT {', '.join(exprs)} FROM {EVENT_TABLE}",
            "DROP VIEW events",
            f"DROP TABLE {EVENT_TABLE}",
            f"ALTER TABLE {EVENT_TABLE}__packed RENAME TO {EVENT_TABLE}",
            f"CREATE VIEW events AS SELECT {event_layout.shown_columns_sql()} "
            f"FROM {EVENT_TABLE}"]


#: Ordered schema migrations: (version, statements). Append only; never edit a released one.
#: (No secondary index on events.user_id: ART upkeep made bulk inserts ~10x slower, and per-user
#: lookups for access and erasure are a fast columnar scan.)
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [*(_entity_ddl(e) for e in schema.ENTITIES),
         "CREATE SEQUENCE IF NOT EXISTS quarantine_id_seq START 1",
         """CREATE TABLE IF NOT EXISTS quarantine (
                id BIGINT DEFAULT nextval('quarantine_id_seq'),
                source VARCHAR, line_no BIGINT, raw VARCHAR, reason VARCHAR NOT NULL,
                entity VARCHAR, user_id VARCHAR, run_id VARCHAR,
                quarantined_at TIMESTAMPTZ DEFAULT current_timestamp)""",
         """CREATE TABLE IF NOT EXISTS ingest_runs (
                run_id VARCHAR PRIMARY KEY, source VARCHAR, entity VARCHAR, format VARCHAR,
                status VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
                "read" BIGINT, accepted BIGINT, duplicates BIGINT, rejected BIGINT,
                reasons VARCHAR)"""],
    ),
    (2, _rebuild_events()),  # event_id without compression (a one-time copy of the events)
    (3, _event_log()),  # events keyed by 16 bytes in event_log; ``events`` becomes a view
    (4, _pack_sparse_event_columns()),  # rarely given event attributes in one column
]


def run_sql(cursor: Any, sql: str, params: Sequence[object] | dict[str, object] | None = None
            ) -> duckdb.DuckDBPyConnection:
    """``cursor.execute(sql[, params])`` with DuckDB's errors raised as :class:`StoreError`:
    what :meth:`DuckDBEventStore.execute` runs under the store's lock, and what work on a
    cursor of its own (see :meth:`DuckDBEventStore.side_cursor`) runs outside it. A store
    itself may be passed (its ``execute`` raises StoreError already)."""
    try:
        return cursor.execute(sql) if params is None else cursor.execute(sql, params)
    except duckdb.Error as exc:
        raise StoreError(f"SQL failed: {exc}") from exc


def _check_entity(entity: str, *, system: bool = False) -> None:
    known = set(schema.ENTITIES) | (set(SYSTEM_TABLES) if system else set())
    if entity not in known:
        raise SchemaError(f"unknown entity {entity!r}; expected one of {sorted(known)}")


class DuckDBEventStore:
    """Event store on a DuckDB database file (see :class:`limelight.store.base.EventStore`).

    Parameters
    ----------
    path
        Database file (created when absent) or ``":memory:"``.

    Example
    -------
    >>> import pyarrow as pa
    >>> store = DuckDBEventStore(":memory:")
    >>> store.write("users", pa.table({"user_id": ["u1"]}))
    1
    >>> store.count("users")
    1
    """

    def __init__(self, path: str = ":memory:") -> None:
        self.path = str(path)
        try:
            self._conn = duckdb.connect(self.path)
        except duckdb.Error as exc:
            raise StoreError(f"cannot open DuckDB store at {self.path!r}: {exc}") from exc
        self._conn.execute("SET TimeZone = 'UTC'")
        self._lock = threading.RLock()
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._closed = False
        self._staging: str | None = None
        self._lent_threads = 0  # open lend_thread() blocks
        self._threads_before: int | None = None
        self._migrate()

    # -- connection plumbing -------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's DuckDB cursor on the store (created on first use).

        An unread result of this thread's previous statement is discarded.
        """
        if self._closed:
            raise StoreError("the store is closed")
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._conn.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cur
            with self._lock:
                self._cursors.append(cur)
        # DuckDB refuses new work while an earlier result is unread; finish it (a caller that
        # wanted its rows has fetched them before making the next call).
        cur.complete()
        return cur

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One atomic unit of writes: commit on success, roll back on any error.

        Nested use joins the outer transaction. Yields this thread's cursor.
        """
        cur = self.cursor()
        with self._lock:
            depth = getattr(self._local, "depth", 0)
            self._local.depth = depth + 1
            if depth == 0:
                cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                if depth == 0:
                    cur.execute("ROLLBACK")
                raise
            else:
                if depth == 0:
                    cur.execute("COMMIT")
            finally:
                self._local.depth = depth

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the store's write lock: no other thread writes until the block ends.

        For a check followed by a write that must not be overtaken (e.g. ingest's duplicate
        check before a batch's transaction). Re-entrant; :meth:`transaction` may be nested.
        """
        with self._lock:
            yield

    def execute(self, sql: str, params: Sequence[object] | dict[str, object] | None = None
                ) -> duckdb.DuckDBPyConnection:
        """Run any SQL statement (other modules create and write their own tables this way).

        Returns the cursor, so ``.fetchall()``, ``.df()`` or ``.to_arrow_table()`` can follow.
        Statements run under the store's write lock.
        """
        cur = self.cursor()
        with self._lock:
            return run_sql(cur, sql, params)

    def staging(self) -> str:
        """Name of an in-memory database beside the store, for staging tables between threads.

        Temporary tables belong to one connection; tables in this database are visible to every
        cursor of the store, so one thread can validate a batch into it while another stores
        the previous batch. It lives in memory and vanishes with the process, so a killed
        ingest leaves nothing half-done there. DuckDB lets a transaction write to one database
        only: write staging tables outside transactions that write the store (reading them
        inside is fine).
        """
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            if self._staging is None:
                self._conn.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {STAGING_DATABASE}")
                self._staging = STAGING_DATABASE
        return self._staging

    @contextmanager
    def side_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A private cursor for a helper thread, closed on exit.

        Its statements do not take the store's write lock, so it may only read the store and
        write :meth:`staging` tables (or its own temporary views). DuckDB runs its queries while
        another thread holds a store transaction (it releases the GIL), which is how ingest
        validates the next batch while the current one is inserted.
        """
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            cur = self._conn.cursor()
        try:
            cur.execute("SET TimeZone = 'UTC'")
            yield cur
        finally:
            with suppress(duckdb.Error):
                cur.close()

    @contextmanager
    def lend_thread(self) -> Iterator[None]:
        """One DuckDB worker thread fewer than configured (at least one) while the block runs.

        For a helper thread whose query runs on its own core (e.g. validating one Parquet row
        group, a single task): the pool's threads and the helper together then match the
        cores. On 2 cores, a 10M-event Parquet ingest used ~1.5 CPU-s less (of ~20) and ran
        ~0.4 s faster (median of 5) than with one thread more, when the oversubscribed
        threads took turns. The setting is DuckDB-wide; nested or concurrent blocks share the
        one lent thread and the last to end restores the setting.
        """
        with self._lock:
            if self._lent_threads == 0:
                before = int(self._conn.execute("SELECT current_setting('threads')").fetchone()[0])
                self._conn.execute(f"SET threads = {max(1, before - 1)}")
                self._threads_before = before
            self._lent_threads += 1
        try:
            yield
        finally:
            with self._lock:
                self._lent_threads -= 1
                if self._lent_threads == 0 and not self._closed:
                    with suppress(duckdb.Error):
                        self._conn.execute(f"SET threads = {self._threads_before}")

    def register(self, name: str, data: pa.Table | pd.DataFrame) -> None:
        """Expose an Arrow table or DataFrame as a view ``name`` on this thread's cursor."""
        self.cursor().register(name, data)

    def unregister(self, name: str) -> None:
        """Drop a view made by :meth:`register` (quietly, as cleanup after errors)."""
        with suppress(duckdb.Error):
            self.cursor().unregister(name)

    def _migrate(self) -> None:
        cur = self._conn
        cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                    "applied_at TIMESTAMPTZ DEFAULT current_timestamp)")
        done = {row[0] for row in cur.execute("SELECT version FROM schema_version").fetchall()}
        for version, statements in MIGRATIONS:
            if version in done:
                continue
            cur.execute("BEGIN TRANSACTION")
            try:
                for statement in statements:
                    cur.execute(statement)
                cur.execute("INSERT INTO schema_version (version) VALUES (?)", [version])
                cur.execute("COMMIT")
            except duckdb.Error as exc:
                cur.execute("ROLLBACK")
                raise StoreError(f"schema migration {version} failed: {exc}") from exc

    @property
    def schema_version(self) -> int:
        """The newest applied migration."""
        return int(self._conn.execute("SELECT max(version) FROM schema_version").fetchone()[0])

    # -- writes --------------------------------------------------------------------------
    def insert_from(self, entity: str, relation: str, columns: Sequence[str], *,
                    order_by: str = "__line", returning: bool = False,
                    distinct_keys: bool = False, probe_where: str | None = None,
                    probe_store: bool = True) -> tuple[int, list[str]]:
        """Insert rows of ``entity`` from SQL ``relation`` (a view or table on this cursor).

        ``relation`` must already have the entity's column names and types for ``columns``
        (for events: ``event_key`` and, for ids given as text, ``event_id`` as
        :mod:`limelight.data.event_keys` stores them). Rows are deduplicated within the batch
        (the first by column ``order_by`` wins; for upserts the last) and against the store by
        key. Returns (rows inserted or updated, inserted event ids when ``returning``). Call
        inside :meth:`transaction` to make it atomic with other writes.

        Events only: ``distinct_keys=True`` promises the batch repeats no ``event_key`` (skips
        the within-batch pass); ``probe_where`` narrows which stored events can share a key
        (a predicate on alias ``e``, e.g. a timestamp range when ids derive from content), so
        zone maps skip the rest of the table; ``probe_store=False`` promises no stored event
        shares a key with the batch (skips the anti-join against the table, whose cost grows
        with the store).
        """
        _check_entity(entity)
        if entity == "events":
            keys: tuple[str, ...] = (event_keys.KEY,)
            cols = [event_keys.KEY, *(c for c in schema.EVENTS.names if c in set(columns))]
        else:
            keys = schema.KEYS[entity]
            cols = [c for c in schema.ENTITIES[entity].names if c in set(columns)]
        missing = [k for k in keys if k not in columns]
        if missing:
            raise SchemaError(f"{entity} rows need key column(s) {missing}")
        col_sql = ", ".join(f'"{c}"' for c in cols)
        order = order_by
        direction = "DESC" if entity in UPSERT_ENTITIES else "ASC"
        first = (f"QUALIFY row_number() OVER (PARTITION BY {', '.join(keys)} "
                 f"ORDER BY {order} {direction}) = 1")
        if entity == "events":
            key = event_keys.KEY
            # Repeats within the batch: only keys seen more than once need a winner (a hash
            # aggregate is cheaper than a window over the whole batch).
            # The losers (repeats but the first) are named by equality alone, so the filter
            # is a plain hash anti-join against a few rows; a ``<>`` inside the correlated
            # subquery made DuckDB group the whole batch by (key, line) instead.
            repeats = "" if distinct_keys else (
                f"WITH __repeats AS (SELECT {key}, min({order}) AS __keep FROM "
                f"{relation} GROUP BY {key} HAVING count(*) > 1), "
                f"__losers AS (SELECT s.{key}, s.{order} AS __pos FROM {relation} s "
                f"JOIN __repeats r ON s.{key} = r.{key} WHERE s.{order} <> r.__keep) ")
            not_repeat = "true" if distinct_keys else (
                f"NOT EXISTS (SELECT 1 FROM __losers l WHERE l.{key} = src.{key} "
                f"AND l.__pos = src.{order})")
            stored = probe_store and self.execute(
                f"SELECT count(*) FROM {EVENT_TABLE}").fetchone()[0]
            narrow = f" AND ({probe_where})" if probe_where else ""
            known = ("" if not stored else
                     f" AND {key} NOT IN (SELECT e.{key} FROM {EVENT_TABLE} e WHERE e.{key} IN "
                     f"(SELECT {key} FROM {relation}){narrow})")
            targets, exprs = event_layout.stored_select(cols, alias="src.")
            sql = (f"INSERT INTO {EVENT_TABLE} ({', '.join(targets)}) {repeats}SELECT "
                   f"{', '.join(exprs)} FROM {relation} src WHERE {not_repeat}{known}")
        else:
            updates = [c for c in cols if c not in keys]
            if entity in UPSERT_ENTITIES and updates:
                action = "DO UPDATE SET " + ", ".join(f'"{c}" = excluded."{c}"' for c in updates)
            else:
                action = "DO NOTHING"
            same = " AND ".join(f't."{c}" IS NOT DISTINCT FROM src."{c}"' for c in cols)
            unchanged = (f"WHERE NOT EXISTS (SELECT 1 FROM {entity} t WHERE {same})"
                         if entity in UPSERT_ENTITIES else "")
            sql = (f"INSERT INTO {entity} ({col_sql}) SELECT {col_sql} FROM {relation} src "
                   f"{unchanged} {first} ON CONFLICT ({', '.join(keys)}) {action}")
        if returning and entity == "events":
            text = "event_id" if "event_id" in cols else "NULL"
            sql += f" RETURNING {event_keys.public_id_sql(text=text)}"
            rows = self.execute(sql).fetchall()
            return len(rows), [r[0] for r in rows]
        result = self.execute(sql).fetchone()
        return int(result[0]) if result else 0, []

    def write(self, entity: str, table: pa.Table | pd.DataFrame) -> int:
        """Insert rows of ``entity`` new by key; upsert users, contacts and items.

        ``table`` holds data-model columns (others are ignored; missing ones are NULL). Events
        without an ``event_id`` get :func:`limelight.data.schema.derive_event_id`; every event
        is stored under its key (:mod:`limelight.data.event_keys`). The batch is
        one transaction. Returns the number of rows inserted (or updated, for upserts).
        """
        _check_entity(entity)
        if isinstance(table, pd.DataFrame):
            table = pa.Table.from_pandas(table, preserve_index=False)
        if table.num_rows == 0:
            return 0
        fields = schema.ENTITIES[entity]
        present = [f for f in fields if f.name in table.column_names]
        exprs = [f'CAST("{f.name}" AS {duck_type(f.type)}) AS "{f.name}"' for f in present]
        columns = [f.name for f in present]
        if entity == "events":
            exprs = [e for f, e in zip(present, exprs, strict=True) if f.name != "event_id"]
            given = "event_id" in table.column_names  # rows without one get a derived key
            exprs += event_keys.stored_columns_sql(
                'CAST("user_id" AS VARCHAR)',
                'CAST("item_id" AS VARCHAR)' if "item_id" in table.column_names else "NULL",
                'CAST("type" AS VARCHAR)', 'CAST("timestamp" AS TIMESTAMPTZ)',
                given='CAST("event_id" AS VARCHAR)' if given else None)
            columns = [*(c for c in columns if c != "event_id"), event_keys.KEY,
                       *(["event_id"] if given else [])]
        view = f"__write_{threading.get_ident()}"
        with self.transaction():
            self.register(view + "_in", table)
            try:
                self.execute(f"CREATE OR REPLACE TEMP TABLE {view} AS SELECT "
                             + ", ".join(exprs) + f", row_number() OVER () AS __pos "
                             f"FROM {view}_in")
                inserted, _ = self.insert_from(entity, view, columns, order_by="__pos")
                self.execute(f"DROP TABLE {view}")
            finally:
                self.unregister(view + "_in")
        return inserted

    def quarantine(self, rows: pa.Table | pd.DataFrame) -> int:
        """Keep rejected rows (source, line_no, raw, reason, entity, user_id, run_id).

        A row already quarantined from the same source, line and raw content is not added
        again, so re-ingesting a file does not grow the quarantine. Returns rows added.
        """
        if isinstance(rows, pd.DataFrame):
            rows = pa.Table.from_pandas(rows, preserve_index=False)
        if rows.num_rows == 0:
            return 0
        cols = ["source", "line_no", "raw", "reason", "entity", "user_id", "run_id"]
        types = {"line_no": "BIGINT"}
        exprs = [
            f'CAST("{c}" AS {types.get(c, "VARCHAR")}) AS "{c}"' if c in rows.column_names
            else f'CAST(NULL AS {types.get(c, "VARCHAR")}) AS "{c}"' for c in cols
        ]
        view = f"__quarantine_{threading.get_ident()}"
        with self.transaction():
            self.register(view, rows)
            try:
                return self.quarantine_from(f"(SELECT {', '.join(exprs)} FROM {view})")
            finally:
                self.unregister(view)

    def quarantine_from(self, relation: str) -> int:
        """Insert rejected rows from SQL ``relation`` with the quarantine columns; see above."""
        sql = (f"INSERT INTO quarantine (source, line_no, raw, reason, entity, user_id, run_id) "
               f"SELECT source, line_no, raw, reason, entity, user_id, run_id FROM {relation} r "
               f"WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.source IS NOT DISTINCT "
               f"FROM r.source AND q.line_no IS NOT DISTINCT FROM r.line_no AND q.entity IS NOT "
               f"DISTINCT FROM r.entity AND q.raw IS NOT DISTINCT FROM r.raw)")
        result = self.execute(sql).fetchone()
        return int(result[0]) if result else 0

    def record_run(self, report: dict[str, object]) -> None:
        """Store (or update, by ``run_id``) one ingest run's report."""
        cols = ["run_id", "source", "entity", "format", "status", "started_at", "finished_at",
                "read", "accepted", "duplicates", "rejected", "reasons"]
        values = [report.get(c) for c in cols]
        values[-1] = json.dumps(report.get("reasons") or {}, sort_keys=True)
        placeholders = ", ".join("?" for _ in cols)
        quoted = ", ".join(f'"{c}"' for c in cols)
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in cols[1:])
        self.execute(f"INSERT INTO ingest_runs ({quoted}) VALUES ({placeholders}) "
                     f"ON CONFLICT (run_id) DO UPDATE SET {updates}", values)

    # -- reads ---------------------------------------------------------------------------
    def existing_keys(self, entity: str, keys: pa.Table) -> pa.Table:
        """The subset of ``keys`` (key columns of ``entity``) already stored."""
        _check_entity(entity)
        key_cols = schema.KEYS[entity]
        view = f"__keys_{threading.get_ident()}"
        cond = " AND ".join(f"k.{c} = t.{c}" for c in key_cols)
        if entity == "events":  # by key: the view would spell out every stored id first
            entity, cond = EVENT_TABLE, (f"t.{event_keys.KEY} = "
                                         f"{event_keys.given_key_sql('k.event_id')}")
        with self._lock:
            self.register(view, keys.select(list(key_cols)))
            try:
                return self.cursor().sql(
                    f"SELECT k.* FROM {view} k WHERE EXISTS "
                    f"(SELECT 1 FROM {entity} t WHERE {cond})").to_arrow_table()
            finally:
                self.unregister(view)

    def read(self, entity: str, *, columns: Sequence[str] | None = None,
             where: str | None = None) -> pd.DataFrame:
        """Rows of ``entity`` (or ``quarantine`` / ``ingest_runs``) as a DataFrame."""
        _check_entity(entity, system=True)
        return self.sql(self._select(entity, columns, where))

    def read_arrow(self, entity: str, *, columns: Sequence[str] | None = None,
                   where: str | None = None) -> pa.Table:
        """Rows of ``entity`` as an Arrow table (the fast path for training)."""
        _check_entity(entity, system=True)
        with self._lock:
            try:
                return self.cursor().sql(self._select(entity, columns, where)).to_arrow_table()
            except duckdb.Error as exc:
                raise StoreError(f"cannot read {entity}: {exc}") from exc

    @staticmethod
    def _select(entity: str, columns: Sequence[str] | None, where: str | None) -> str:
        cols = ", ".join(f'"{c}"' for c in columns) if columns else "*"
        return f"SELECT {cols} FROM {entity}" + (f" WHERE {where}" if where else "")

    def read_events_by_id(self, event_ids: Sequence[str],
                          columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The stored events with these public ids (a point lookup by key, in no order)."""
        cols = event_layout.shown_columns_sql(columns)
        keys = [str(event_keys.key_of(str(i))) for i in event_ids]
        return self.sql(f"SELECT {cols} FROM {EVENT_TABLE} "
                        f"WHERE list_contains({event_keys.KEYS_PARAM}, {event_keys.KEY})", [keys])

    def count(self, entity: str) -> int:
        """Number of rows of ``entity``."""
        _check_entity(entity, system=True)
        return int(self.execute(f"SELECT count(*) FROM {entity}").fetchone()[0])

    def sql(self, query: str, params: Iterable[object] | None = None) -> pd.DataFrame:
        """Run a SQL query over the store's tables and return a DataFrame."""
        with self._lock:
            cur = self.cursor()
            try:
                if params is None:
                    return cur.sql(query).df()
                return cur.execute(query, list(params)).df()
            except duckdb.Error as exc:
                raise StoreError(f"query failed: {exc}") from exc

    # -- per-user access and erasure -----------------------------------------------------
    def user_rows(self, user_id: str) -> dict[str, pd.DataFrame]:
        """Everything stored about one user, by table (for access requests and erasure)."""
        out = {}
        for table, cols in USER_COLUMNS.items():
            cond = " OR ".join(f"{c} = ?" for c in cols)
            out[table] = self.sql(f"SELECT * FROM {table} WHERE {cond}", [user_id] * len(cols))
        return out

    def delete_user(self, user_id: str) -> dict[str, int]:
        """Delete everything stored about one user in one transaction; rows deleted per table."""
        deleted: dict[str, int] = {}
        with self.transaction():
            for table, cols in USER_COLUMNS.items():
                cond = " OR ".join(f"{c} = ?" for c in cols)
                stored = EVENT_TABLE if table == "events" else table  # a view is not deleted from
                row = self.execute(f"DELETE FROM {stored} WHERE {cond}",
                                   [user_id] * len(cols)).fetchone()
                deleted[table] = int(row[0]) if row else 0
        return deleted

    def close(self) -> None:
        """Close every cursor and the database."""
        with self._lock:
            if self._closed:
                return
            for cur in self._cursors:
                with suppress(duckdb.Error):
                    cur.close()
            self._conn.close()
            self._closed = True

    def __enter__(self) -> DuckDBEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DuckDBEventStore({self.path!r})"

