"""In-memory event store for tests and throw-away sessions: DuckDB on ``:memory:``.

The same engine as the default store, so tests exercise the real SQL (dedupe, upserts,
transactions) rather than a look-alike.
"""

from __future__ import annotations

from limelight.store.duckdb import DuckDBEventStore


class MemoryEventStore(DuckDBEventStore):
    """An :class:`~limelight.store.base.EventStore` that lives in memory and vanishes on close.

    Example
    -------
    >>> import pyarrow as pa
    >>> store = MemoryEventStore()
    >>> store.write("items", pa.table({"item_id": ["i1", "i1"]}))
    1
    """

    def __init__(self) -> None:
        super().__init__(":memory:")

    def __repr__(self) -> str:
        return "MemoryEventStore()"
