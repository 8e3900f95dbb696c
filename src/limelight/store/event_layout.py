"""How events are laid out in the store's ``event_log`` table, and shown by the ``events`` view.

The data model's event columns are not all stored as columns. Attributes that most events
lack (:data:`SPARSE`: purchase quantity, campaign channel, campaign and message ids, review
text) share one JSON-object text column, ``details``, which is NULL for an event that has none
of them. DuckDB pays for every column of every stored row, NULL or not: each absent column
cost ~0.05 CPU-s per million inserted events, and replacing six of them by one made a
10M-event Parquet ingest ~17% faster (3 alternating pairs). Attributes that many events carry
(value, session, device, geo) stay columns; reading a packed one costs more (a JSON lookup
per event that has details).

Every read goes through the view ``events`` (:func:`shown_columns_sql`), which shows each
attribute as its typed column again, and every write goes through :func:`stored_select`, so
no other module needs to know the layout. JSON keeps doubles exact: DuckDB writes the
shortest text that reads back as the same double.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pyarrow as pa

from limelight.data import event_keys, schema

#: Event attributes stored inside ``details`` (in this order) instead of as columns. Stores
#: are laid out by schema migration 4: changing this set needs a migration of its own.
SPARSE: tuple[str, ...] = ("quantity", "channel", "campaign_id", "message_id", "review_text")
#: The column that holds the sparse attributes of an event (JSON object text, or NULL).
DETAILS = "details"

_DOUBLE = {f.name for f in schema.EVENTS if pa.types.is_floating(f.type)}


def _q(name: str) -> str:
    return f'"{name}"'


def dense_fields() -> list[pa.Field]:
    """The data-model event fields stored as columns (``event_id`` nullable: canonical ids
    are their key alone, see :mod:`limelight.data.event_keys`)."""
    return [f.with_nullable(True) if f.name == "event_id" else f
            for f in schema.EVENTS if f.name not in SPARSE]


def details_sql(present: Sequence[str], alias: str = "") -> str:
    """SQL for the ``details`` of rows that have the sparse columns ``present`` (NULL where
    every one of them is NULL)."""
    cols = [c for c in SPARSE if c in present]
    if not cols:
        return "NULL"
    ref = [f"{alias}{_q(c)}" for c in cols]
    none = " AND ".join(f"{r} IS NULL" for r in ref)
    pairs = ", ".join(f"'{c}', {r}" for c, r in zip(cols, ref, strict=True))
    return f"CASE WHEN {none} THEN NULL ELSE json_object({pairs}) END"


def details_text(row: Mapping[str, object]) -> str | None:
    """The ``details`` of one event given as Python values (the records path's twin of
    :func:`details_sql`; NULL attributes are left out, which reads back the same). Doubles
    are written as their shortest exact text, as DuckDB writes them."""
    given = {c: row[c] for c in SPARSE if row.get(c) is not None}
    if not given:
        return None
    return json.dumps(given, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def split(columns: Sequence[str]) -> tuple[list[str], bool]:
    """Of event columns ``columns``: those stored as columns of their own, and whether any
    of the others (packed into ``details``) is among them."""
    return [c for c in columns if c not in SPARSE], any(c in SPARSE for c in columns)


def stored_select(columns: Sequence[str], alias: str = "") -> tuple[list[str], list[str]]:
    """For a relation with data-model event columns ``columns`` (``event_key`` among them):
    the ``event_log`` columns to insert, and the select expressions that fill them."""
    dense, packed = split(columns)
    names = [_q(c) for c in dense]
    exprs = [f"{alias}{_q(c)}" for c in dense]
    if packed:
        names.append(DETAILS)
        exprs.append(details_sql(columns, alias))
    return names, exprs


def shown_column_sql(name: str) -> str:
    """SQL (over ``event_log``) for one data-model event column, as the ``events`` view
    shows it."""
    if name == "event_id":
        return f"{event_keys.public_id_sql()} AS event_id"
    if name in SPARSE:
        text = f"({DETAILS} ->> '$.{name}')"
        value = f"CAST({text} AS DOUBLE)" if name in _DOUBLE else text
        return f"{value} AS {_q(name)}"
    return _q(name)


def shown_columns_sql(columns: Sequence[str] | None = None) -> str:
    """The select list of the ``events`` view (or of ``columns`` of it) over ``event_log``."""
    return ", ".join(shown_column_sql(c) for c in (columns or schema.EVENTS.names))
