"""Storage by role: EventStore (durable data), ArtifactStore (versioned models).

A backend is chosen by URL: ``duckdb:///path/to/file.duckdb``, ``duckdb://:memory:`` or
``memory://``. Use :func:`open_store`.
"""

from __future__ import annotations

from limelight.store.base import EventStore


def open_store(url: str) -> EventStore:
    """Open the event store named by ``url`` (``duckdb:///path`` or ``memory://``)."""
    from limelight.errors import StoreError

    if url.startswith("duckdb://"):
        from limelight.store.duckdb import DuckDBEventStore

        path = url.removeprefix("duckdb://")
        path = path.removeprefix("/") if path.startswith("/./") or path == "/:memory:" else path
        return DuckDBEventStore(path or ":memory:")
    if url.startswith("memory://"):
        from limelight.store.memory import MemoryEventStore

        return MemoryEventStore()
    raise StoreError(
        f"unsupported store URL {url!r}: use duckdb:///path/to/file.duckdb or memory://"
    )


__all__ = ["EventStore", "open_store"]
