"""Summary statistics of what a store holds (``limelight stats``)."""

from __future__ import annotations

from typing import Any

from limelight.data import schema


def store_stats(store: Any, *, top: int = 10) -> dict[str, Any]:
    """Counts, event time range, events per type, sparsity and the most active items.

    Returns
    -------
    dict
        ``counts`` (rows per table), ``first_event`` / ``last_event`` (ISO, UTC),
        ``events_per_type``, ``active_users`` / ``active_items`` (with item events),
        ``interactions`` (distinct user-item pairs), ``density`` and ``sparsity`` of the
        user x item matrix, ``top_items`` (item_id, title, events, users), ``quarantine_by_reason``
        and ``ingest_runs``.
    """
    counts = {e: store.count(e) for e in (*schema.ENTITIES, "quarantine", "ingest_runs")}
    span = store.sql("SELECT strftime(min(timestamp), '%Y-%m-%dT%H:%M:%SZ') AS first, "
                     "strftime(max(timestamp), '%Y-%m-%dT%H:%M:%SZ') AS last FROM events")
    per_type = store.sql("SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY n DESC")
    shape = store.sql(
        "SELECT count(DISTINCT user_id) AS users, count(DISTINCT item_id) AS items, "
        "count(DISTINCT (user_id, item_id)) AS pairs FROM events WHERE item_id IS NOT NULL")
    users, items, pairs = (int(shape.iloc[0][c]) for c in ("users", "items", "pairs"))
    density = pairs / (users * items) if users and items else 0.0
    top_items = store.sql(
        f"SELECT e.item_id, any_value(i.title) AS title, count(*) AS events, "
        f"count(DISTINCT e.user_id) AS users FROM events e LEFT JOIN items i USING (item_id) "
        f"WHERE e.item_id IS NOT NULL GROUP BY e.item_id ORDER BY events DESC, e.item_id "
        f"LIMIT {int(top)}")
    reasons = store.sql("SELECT reason, count(*) AS n FROM quarantine GROUP BY reason "
                        "ORDER BY n DESC")
    return {
        "counts": counts,
        "first_event": span.iloc[0]["first"] if counts["events"] else None,
        "last_event": span.iloc[0]["last"] if counts["events"] else None,
        "events_per_type": {r.type: int(r.n) for r in per_type.itertuples()},
        "active_users": users,
        "active_items": items,
        "interactions": pairs,
        "density": density,
        "sparsity": 1.0 - density if users and items else None,
        "top_items": [
            {"item_id": r.item_id, "title": None if r.title is None or r.title != r.title
             else r.title, "events": int(r.events), "users": int(r.users)}
            for r in top_items.itertuples()
        ],
        "quarantine_by_reason": {r.reason: int(r.n) for r in reasons.itertuples()},
        "ingest_runs": counts["ingest_runs"],
    }
