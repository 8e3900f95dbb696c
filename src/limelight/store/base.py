"""Store interfaces by role (Protocols). Implementations: duckdb.py (default), memory.py (tests)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import pandas as pd
import pyarrow as pa


@runtime_checkable
class EventStore(Protocol):
    """Durable users, contacts, items, events, edges, quarantine and ingest runs.

    Entities are named as in :data:`limelight.data.schema.ENTITIES`. Writes are atomic per call:
    either every row of a batch is stored or none is.
    """

    def write(self, entity: str, table: pa.Table) -> int:
        """Insert rows of ``entity`` that are new by its key; return how many were inserted.

        Users, contacts and items with a known key are updated (upsert); events and edges
        with a known key are left as they are (idempotent re-ingest).
        """
        ...

    def existing_keys(self, entity: str, keys: pa.Table) -> pa.Table:
        """The subset of ``keys`` (key columns of ``entity``) already stored."""
        ...

    def read(self, entity: str, *, columns: Sequence[str] | None = None,
             where: str | None = None) -> pd.DataFrame:
        """Rows of ``entity`` as a DataFrame (``where`` is a SQL predicate on its columns)."""
        ...

    def read_arrow(self, entity: str, *, columns: Sequence[str] | None = None) -> pa.Table:
        """Rows of ``entity`` as an Arrow table (fast path for training)."""
        ...

    def read_events_by_id(self, event_ids: Sequence[str],
                          columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The stored events with these public ids (a point lookup, in no order)."""
        ...

    def count(self, entity: str) -> int: ...

    def quarantine(self, rows: pa.Table) -> int:
        """Keep rejected rows (source, line_no, raw, reason, entity, user_id, run_id)."""
        ...

    def record_run(self, report: dict[str, object]) -> None:
        """Store one ingest run's report."""
        ...

    def user_rows(self, user_id: str) -> dict[str, pd.DataFrame]:
        """Everything stored about one user, by table (for access requests and erasure)."""
        ...

    def delete_user(self, user_id: str) -> dict[str, int]:
        """Delete everything stored about one user; rows deleted per table."""
        ...

    def sql(self, query: str, params: Iterable[object] | None = None) -> pd.DataFrame:
        """Run a read-only SQL query over the store's tables (DuckDB dialect)."""
        ...

    def close(self) -> None: ...
