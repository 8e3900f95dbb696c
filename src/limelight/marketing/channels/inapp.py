"""In-app messages: stored in ``marketing_inapp`` and fetched by the app from the API
(``GET /users/{user_id}/messages``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from limelight.marketing.channels.base import Message, SendResult
from limelight.marketing.tables import ensure_tables


class InAppChannel:
    """Deliver by writing to the inbox table; the insert is keyed by message id, so a repeated
    send is a no-op (exactly-once in effect)."""

    name = "inapp"
    receiver_deduplicates = True

    def __init__(self, store: Any, ttl_days: float = 30.0) -> None:
        self.store = store
        self.ttl_days = ttl_days
        ensure_tables(store)

    def send(self, message: Message) -> SendResult:
        now = datetime.now(UTC)
        self.store.execute(
            "INSERT INTO marketing_inapp VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL) "
            "ON CONFLICT (message_id) DO NOTHING",
            [message.message_id, message.user_id, message.campaign_id, message.subject,
             message.text, json.dumps(message.payload, default=str), now,
             now + timedelta(days=self.ttl_days)])
        return SendResult(True, provider_id=message.message_id)


def inbox(store: Any, user_id: str, *, unread_only: bool = False, limit: int = 50,
          now: datetime | None = None) -> list[dict[str, Any]]:
    """A user's current in-app messages, newest first."""
    ensure_tables(store)
    now = now or datetime.now(UTC)
    cond = " AND read_at IS NULL" if unread_only else ""
    frame: pd.DataFrame = store.sql(
        "SELECT message_id, campaign_id, title, body, payload, created_at, read_at "
        f"FROM marketing_inapp WHERE user_id = ? AND expires_at > ?{cond} "
        "ORDER BY created_at DESC LIMIT ?", [user_id, now, int(limit)])
    out = []
    for row in frame.to_dict(orient="records"):
        row["payload"] = json.loads(row["payload"]) if row["payload"] else {}
        row["created_at"] = pd.Timestamp(row["created_at"]).isoformat()
        row["read_at"] = None if pd.isna(row["read_at"]) else pd.Timestamp(
            row["read_at"]).isoformat()
        out.append(row)
    return out


def mark_read(store: Any, user_id: str, message_id: str) -> bool:
    """Mark one message read; False when the user has no such message."""
    ensure_tables(store)
    row = store.execute("UPDATE marketing_inapp SET read_at = ? WHERE user_id = ? AND "
                        "message_id = ? RETURNING message_id",
                        [datetime.now(UTC), user_id, message_id]).fetchone()
    return row is not None
