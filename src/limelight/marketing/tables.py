"""The marketing tables in the event store (DuckDB dialect), created on first use.

Every table carries ``user_id`` where it concerns a person, so access requests and erasure can
find it. Timestamps are UTC.
"""

from __future__ import annotations

import weakref
from typing import Any

DDL: dict[str, str] = {
    "marketing_campaigns": (
        "CREATE TABLE IF NOT EXISTS marketing_campaigns (campaign_id VARCHAR PRIMARY KEY, "
        "name VARCHAR, status VARCHAR, spec VARCHAR, created_at TIMESTAMPTZ, "
        "updated_at TIMESTAMPTZ, last_run_at TIMESTAMPTZ, spent DOUBLE DEFAULT 0)"
    ),
    "marketing_deliveries": (
        "CREATE TABLE IF NOT EXISTS marketing_deliveries (message_id VARCHAR PRIMARY KEY, "
        "campaign_id VARCHAR, run_id VARCHAR, user_id VARCHAR, channel VARCHAR, "
        "variant VARCHAR, status VARCHAR, attempts INTEGER, error VARCHAR, payload VARCHAR, "
        "created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, not_before TIMESTAMPTZ, "
        "sent_at TIMESTAMPTZ)"
    ),
    "marketing_delivery_log": (
        "CREATE TABLE IF NOT EXISTS marketing_delivery_log (message_id VARCHAR, "
        "status VARCHAR, logged_at TIMESTAMPTZ, detail VARCHAR)"
    ),
    "marketing_suppressions": (
        "CREATE TABLE IF NOT EXISTS marketing_suppressions (user_id VARCHAR, channel VARCHAR, "
        "reason VARCHAR, added_at TIMESTAMPTZ, PRIMARY KEY (user_id, channel))"
    ),
    "marketing_coupons": (
        "CREATE TABLE IF NOT EXISTS marketing_coupons (code VARCHAR PRIMARY KEY, "
        "offer_id VARCHAR, campaign_id VARCHAR, user_id VARCHAR, kind VARCHAR, value DOUBLE, "
        "max_redemptions INTEGER, redemptions INTEGER, expires_at TIMESTAMPTZ, "
        "created_at TIMESTAMPTZ)"
    ),
    "marketing_redemptions": (
        "CREATE TABLE IF NOT EXISTS marketing_redemptions (code VARCHAR, user_id VARCHAR, "
        "order_id VARCHAR, amount DOUBLE, discount DOUBLE, redeemed_at TIMESTAMPTZ)"
    ),
    "marketing_inapp": (
        "CREATE TABLE IF NOT EXISTS marketing_inapp (message_id VARCHAR PRIMARY KEY, "
        "user_id VARCHAR, campaign_id VARCHAR, title VARCHAR, body VARCHAR, payload VARCHAR, "
        "created_at TIMESTAMPTZ, expires_at TIMESTAMPTZ, read_at TIMESTAMPTZ)"
    ),
}

# Stores already prepared (weak, so a closed store's id can never be mistaken for a new one's).
_READY: weakref.WeakSet[Any] = weakref.WeakSet()


def ensure_tables(store: Any) -> None:
    """Create the marketing tables in ``store`` if they are missing (cheap after the first)."""
    if store in _READY:
        return
    for ddl in DDL.values():
        store.execute(ddl)
    _READY.add(store)
