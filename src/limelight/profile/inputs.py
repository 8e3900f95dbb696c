"""Gather the data a profile build reads (events, users, items, edges) from any source.

A source may be an :class:`~limelight.store.base.EventStore`, a DuckDB connection holding
tables in the data model, a sample ``World`` (anything with ``events``/``users``/``items``/
``edges`` frames) or a plain ``dict`` of pandas/Arrow frames. Everything lands in a private
in-memory DuckDB connection so the feature SQL is written once; Arrow tables are registered
without a copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from limelight.data.schema import ENTITIES
from limelight.errors import SchemaError

PROFILE_ENTITIES = ("events", "users", "items", "edges")


@dataclass
class ProfileInputs:
    """The four inputs, as Arrow tables in the data model's columns (absent columns filled)."""

    events: pa.Table
    users: pa.Table
    items: pa.Table
    edges: pa.Table

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB connection with ``events_in``/``users_in``/``items_in``/
        ``edges_in`` registered."""
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        for name in PROFILE_ENTITIES:
            con.register(f"{name}_in", getattr(self, name))
        return con


def load_inputs(source: Any) -> ProfileInputs:
    """Read events, users, items and edges from ``source`` (see module docstring).

    Raises
    ------
    SchemaError
        When events lack ``user_id``, ``type`` or ``timestamp``.
    """
    frames: dict[str, Any] = {}
    if isinstance(source, ProfileInputs):
        return source
    if isinstance(source, Mapping):
        frames = dict(source)
    elif isinstance(source, duckdb.DuckDBPyConnection):
        tables = {r[0] for r in source.execute("SELECT table_name FROM information_schema.tables")
                  .fetchall()}
        frames = {n: source.execute(f"SELECT * FROM {n}").to_arrow_table()
                  for n in PROFILE_ENTITIES if n in tables}
    elif hasattr(source, "read_arrow"):
        frames = {n: _read_store(source, n) for n in PROFILE_ENTITIES}
    elif all(hasattr(source, n) for n in ("events", "users", "items")):
        frames = {n: getattr(source, n, None) for n in PROFILE_ENTITIES}
    else:
        raise SchemaError(
            f"cannot read profile inputs from {type(source).__name__}: pass an EventStore, a "
            "DuckDB connection, a World or a dict of frames")
    return ProfileInputs(**{n: conform(frames.get(n), n) for n in PROFILE_ENTITIES})


def _read_store(store: Any, entity: str) -> pa.Table | None:
    try:
        return store.read_arrow(entity)
    except Exception:  # an entity the store has never seen is simply empty here
        return None


def conform(frame: Any, entity: str) -> pa.Table:
    """``frame`` (pandas, Arrow or None) as an Arrow table with every column of ``entity``.

    Columns the data model lacks are dropped; absent ones are filled with nulls of the model's
    type. Event timestamps may be tz-aware or naive (read as UTC).
    """
    schema = ENTITIES[entity]
    if frame is None:
        return schema.empty_table()
    if isinstance(frame, pd.DataFrame):
        frame = frame.reset_index(drop=True) if frame.index.name is None else frame.reset_index()
        table = pa.Table.from_pandas(frame, preserve_index=False)
    elif isinstance(frame, pa.Table):
        table = frame
    else:
        raise SchemaError(f"{entity}: expected a DataFrame or Arrow table, got "
                          f"{type(frame).__name__}")
    from limelight.data.schema import REQUIRED

    missing = [c for c in REQUIRED[entity] if c not in table.column_names]
    if missing:
        raise SchemaError(f"{entity} need columns {missing}; got {table.column_names}")
    columns = []
    for fld in schema:
        if fld.name in table.column_names:
            col = table.column(fld.name)
            if fld.name == "timestamp" or fld.type == pa.timestamp("us", tz="UTC"):
                col = _as_utc(col)
            elif not col.type.equals(fld.type):
                col = _cast(col, fld.type)
            columns.append(col)
        else:
            columns.append(pa.nulls(table.num_rows, fld.type))
    return pa.Table.from_arrays(columns, schema=pa.schema([f.with_nullable(True) for f in schema]))


def _cast(col: pa.ChunkedArray, typ: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_string(typ) and pa.types.is_large_string(col.type):
        return col.cast(typ)
    try:
        return col.cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if pa.types.is_string(typ):  # e.g. integer ids
            return pa.chunked_array([pa.array(col.to_pandas().astype(str), pa.string())])
        raise


def _as_utc(col: pa.ChunkedArray) -> pa.ChunkedArray:
    typ = col.type
    if pa.types.is_timestamp(typ):
        if typ.tz is None:
            col = col.cast(pa.timestamp(typ.unit)).cast(pa.timestamp("us"))
            return pa.chunked_array([c.cast(pa.int64()).view(pa.timestamp("us", tz="UTC"))
                                     for c in col.chunks], pa.timestamp("us", tz="UTC"))
        return col.cast(pa.timestamp("us", tz="UTC"))
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        # Plain numbers are unix seconds (as in MovieLens files).
        series = pd.to_datetime(col.to_pandas(), unit="s", utc=True)
        return pa.chunked_array([pa.array(series, pa.timestamp("us", tz="UTC"))])
    series = pd.to_datetime(col.to_pandas(), utc=True, format="mixed")
    return pa.chunked_array([pa.array(series, pa.timestamp("us", tz="UTC"))])
