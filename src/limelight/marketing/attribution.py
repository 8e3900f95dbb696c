"""Which purchases a campaign earned: last-touch attribution within a window.

Touches are messages delivered (``marketing_deliveries.sent_at``) and engagement events that
carry a message id (``email_open``, ``email_click``, ``click``). A purchase is credited:

1. to the message it names (``message_id`` on the purchase event, e.g. from a tracked link
   or a redeemed coupon), when that message's first touch is within the window before it;
2. otherwise to the user's latest touch at or before the purchase, if that touch is no older
   than ``window_days`` (DuckDB ``ASOF JOIN``).

Attribution answers "which message gets the credit"; whether the campaign *caused* sales is the
uplift against the holdout in :mod:`limelight.marketing.reports`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from limelight.marketing.tables import ensure_tables

TOUCH_EVENTS = ("email_open", "email_click", "click")

_TOUCHES = """
    SELECT user_id, campaign_id, message_id, sent_at AS touched_at
    FROM marketing_deliveries WHERE status = 'sent' AND sent_at IS NOT NULL
    UNION ALL
    SELECT e.user_id, coalesce(e.campaign_id, d.campaign_id) AS campaign_id, e.message_id,
           e.timestamp AS touched_at
    FROM events e LEFT JOIN marketing_deliveries d ON d.message_id = e.message_id
    WHERE e.type IN ({types}) AND e.message_id IS NOT NULL
"""


def attribute(store: Any, *, window_days: float = 7.0, campaign_id: str | None = None
              ) -> pd.DataFrame:
    """Attributed purchases: event_id, user_id, item_id, revenue, timestamp, campaign_id,
    message_id, rule ("tagged" or "last_touch"), hours_since_touch."""
    ensure_tables(store)
    types = ", ".join(f"'{t}'" for t in TOUCH_EVENTS)
    window_s = float(window_days) * 86400.0
    query = f"""
    WITH touches AS ({_TOUCHES.format(types=types)}),
    purchases AS (
        SELECT event_id, user_id, item_id, coalesce(value, 0) * coalesce(quantity, 1)
               AS revenue, timestamp, campaign_id AS tag_campaign, message_id AS tag_message
        FROM events WHERE type = 'purchase'
    ),
    first_touch AS (SELECT message_id, min(touched_at) AS touched_at FROM touches
                    GROUP BY message_id),
    tagged AS (
        SELECT p.event_id, p.user_id, p.item_id, p.revenue, p.timestamp,
               coalesce(p.tag_campaign, d.campaign_id) AS campaign_id,
               p.tag_message AS message_id, 'tagged' AS rule,
               date_diff('second', f.touched_at, p.timestamp) / 3600.0 AS hours_since_touch
        FROM purchases p
        JOIN first_touch f ON f.message_id = p.tag_message
        LEFT JOIN marketing_deliveries d ON d.message_id = p.tag_message
        WHERE f.touched_at <= p.timestamp
          AND date_diff('second', f.touched_at, p.timestamp) <= {window_s}
    ),
    last_touch AS (
        SELECT p.event_id, p.user_id, p.item_id, p.revenue, p.timestamp, t.campaign_id,
               t.message_id, 'last_touch' AS rule,
               date_diff('second', t.touched_at, p.timestamp) / 3600.0 AS hours_since_touch
        FROM (SELECT * FROM purchases WHERE event_id NOT IN (SELECT event_id FROM tagged)) p
        ASOF JOIN touches t ON p.user_id = t.user_id AND p.timestamp >= t.touched_at
        WHERE date_diff('second', t.touched_at, p.timestamp) <= {window_s}
    )
    SELECT * FROM tagged UNION ALL SELECT * FROM last_touch
    """
    frame = store.sql(query)
    if campaign_id is not None:
        frame = frame[frame["campaign_id"] == campaign_id]
    return frame.sort_values(["timestamp", "event_id"]).reset_index(drop=True)


def outcomes_after_assignment(store: Any, campaign_id: str, *, window_days: float = 7.0
                              ) -> pd.DataFrame:
    """Per assigned user (treated and holdout alike): variant, status, whether they clicked
    the campaign, and purchases within ``window_days`` after assignment.

    This is the intention-to-treat view the uplift needs: every user counts in the group they
    were assigned to, whether or not the message reached them, so the holdout comparison stays
    unbiased.
    """
    ensure_tables(store)
    window_s = float(window_days) * 86400.0
    query = f"""
    WITH messages AS (
        SELECT user_id, variant, status, message_id, created_at
        FROM marketing_deliveries WHERE campaign_id = ?
    ),
    assigned AS (  -- first assignment per user (recurring campaigns assign once per run)
        SELECT user_id, arg_min(variant, created_at) AS variant,
               arg_min(status, created_at) AS status,
               arg_min(message_id, created_at) AS message_id, min(created_at) AS created_at
        FROM messages GROUP BY user_id
    ),
    buys AS (
        SELECT a.user_id, count(e.event_id) AS purchases,
               coalesce(sum(coalesce(e.value, 0) * coalesce(e.quantity, 1)), 0) AS revenue
        FROM assigned a JOIN events e ON e.user_id = a.user_id AND e.type = 'purchase'
         AND e.timestamp >= a.created_at
         AND date_diff('second', a.created_at, e.timestamp) <= {window_s}
        GROUP BY a.user_id
    ),
    engaged AS (
        SELECT m.user_id,
               bool_or(e.type IN ('email_click', 'click')) AS clicked,
               bool_or(e.type = 'email_open') AS opened
        FROM messages m JOIN events e ON e.message_id = m.message_id
        GROUP BY m.user_id
    )
    SELECT a.user_id, a.variant, a.status, a.message_id,
           coalesce(g.opened, false) AS opened, coalesce(g.clicked, false) AS clicked,
           coalesce(b.purchases, 0) > 0 AS converted, coalesce(b.revenue, 0.0) AS revenue
    FROM assigned a LEFT JOIN buys b USING (user_id) LEFT JOIN engaged g USING (user_id)
    ORDER BY a.user_id
    """
    return store.sql(query, [campaign_id])
