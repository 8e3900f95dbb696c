"""Activity features in DuckDB SQL: counts by type, sessions, active days, time histograms,
inter-event times, funnel rates and the behaviour sequence.

Every count here is defined so that it can also be kept in O(1) per event by
:class:`~limelight.profile.realtime.ProfileUpdater` from a user's events in time order:
a session or an active day is counted when it *starts* (the event's session id differs from
the previous event's, or no session id and a gap over ``session_gap_minutes``; the UTC date
changes). Ties in time are ordered by ``event_id`` then arrival.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from limelight.profile.config import COUNTED_TYPES, DAYPARTS, US_PER_DAY, US_PER_HOUR, ProfileConfig

#: Column names of the hour-of-day (UTC) and day-of-week (Monday = 0) histograms (shares).
HOUR_COLUMNS = [f"hour_{h:02d}" for h in range(24)]
DOW_COLUMNS = [f"dow_{d}" for d in range(7)]
#: Mean direction of activity on the 24-hour clock (hour h sits at angle 2π(h + 0.5)/24): a
#: night owl's 23:00 and 01:00 are neighbours here, unlike in any split of the day into parts.
HOUR_COS = np.cos(2 * np.pi * (np.arange(24) + 0.5) / 24)
HOUR_SIN = np.sin(2 * np.pi * (np.arange(24) + 0.5) / 24)


def prepare_events(con: duckdb.DuckDBPyConnection, as_of_us: int | None) -> int:
    """Create temp table ``ev`` (events up to ``as_of``, with ``ts`` in µs, ordered per user by
    time) and return ``as_of`` in µs (the latest event when not given).

    One window pass also numbers each user's events (``pos`` of ``n``) and item events
    (``item_pos`` of ``n_item``), so the behaviour sequence needs no second sort.
    """
    latest, missing_ids = con.execute(
        "SELECT max(epoch_us(timestamp)), count(*) - count(event_id) FROM events_in").fetchone()
    if as_of_us is None:
        as_of_us = latest or 0
    # Arrival order breaks ties only where event ids are missing; numbering rows costs a
    # single-threaded pass, so it is skipped when every event has an id.
    arrival = "row_number() OVER ()" if missing_ids else "0"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE ev AS
        SELECT *, lag(ts) OVER w AS prev_ts, lag(session_id) OVER w AS prev_session,
               row_number() OVER w AS pos, count(*) OVER u AS n,
               count(item_id) OVER w AS item_pos, count(item_id) OVER u AS n_item
        FROM (SELECT user_id, item_id, lower(trim(type)) AS type, value, quantity,
                     epoch_us(timestamp) AS ts, session_id, campaign_id,
                     coalesce(event_id, '') AS event_id, {arrival} AS arrival
              FROM events_in WHERE user_id IS NOT NULL AND timestamp IS NOT NULL)
        WHERE ts <= {int(as_of_us)}
        WINDOW w AS (PARTITION BY user_id ORDER BY ts, event_id, arrival
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
               u AS (PARTITION BY user_id ORDER BY ts, event_id, arrival
                     ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    """)
    return int(as_of_us)


def activity_features(con: duckdb.DuckDBPyConnection, config: ProfileConfig,
                      as_of_us: int) -> pd.DataFrame:
    """Per user: counts, sessions, active days, histograms (shares), gaps, funnel rates."""
    type_counts = ",\n".join(
        f"count(*) FILTER (WHERE type = '{t}') AS n_{t}" for t in COUNTED_TYPES)
    hours = ",\n".join(
        f"count(*) FILTER (WHERE ts // {US_PER_HOUR} % 24 = {h}) AS hour_{h:02d}"
        for h in range(24))
    # 1970-01-01 was a Thursday: (days + 3) % 7 numbers Monday 0 .. Sunday 6.
    dows = ",\n".join(
        f"count(*) FILTER (WHERE (ts // {US_PER_DAY} + 3) % 7 = {d}) AS dow_{d}"
        for d in range(7))
    gap = config.session_gap_us
    df = con.execute(f"""
        SELECT user_id, count(*) AS n_events, min(ts) AS first_ts, max(ts) AS last_ts,
            {type_counts},
            sum(CASE WHEN prev_ts IS NULL OR session_id IS DISTINCT FROM prev_session
                      OR (session_id IS NULL AND ts - prev_ts > {gap}) THEN 1 ELSE 0 END)
                AS n_sessions,
            sum(CASE WHEN prev_ts IS NULL OR ts // {US_PER_DAY} <> prev_ts // {US_PER_DAY}
                THEN 1 ELSE 0 END) AS n_active_days,
            sum(((ts - prev_ts) / {US_PER_HOUR}.0) ^ 2) AS gap_sq_sum,
            count(DISTINCT item_id) AS n_items,
            {hours},
            {dows}
        FROM ev GROUP BY user_id
    """).df().set_index("user_id")
    return finish_activity(df, as_of_us)


def finish_activity(df: pd.DataFrame, as_of_us: int) -> pd.DataFrame:
    """Derived activity columns from raw aggregates (shared by the batch and real-time paths)."""
    n = df["n_events"].to_numpy(np.float64)
    out = pd.DataFrame(index=df.index)
    out["n_events"] = df["n_events"].astype(np.int64)
    for t in COUNTED_TYPES:
        out[f"n_{t}"] = df[f"n_{t}"].astype(np.int64)
    out["n_sessions"] = df["n_sessions"].astype(np.int64)
    out["n_active_days"] = df["n_active_days"].astype(np.int64)
    out["n_items"] = df["n_items"].astype(np.int64)
    first = df["first_ts"].to_numpy(np.float64)
    last = df["last_ts"].to_numpy(np.float64)
    out["first_seen"] = pd.to_datetime(df["first_ts"].astype(np.int64), unit="us", utc=True)
    out["last_seen"] = pd.to_datetime(df["last_ts"].astype(np.int64), unit="us", utc=True)
    out["tenure_days"] = (as_of_us - first) / US_PER_DAY
    out["days_since_last_event"] = (as_of_us - last) / US_PER_DAY
    out["events_per_session"] = n / np.maximum(df["n_sessions"].to_numpy(np.float64), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        n_gaps = n - 1.0
        mean_gap = np.where(n_gaps > 0, (last - first) / US_PER_HOUR / n_gaps, np.nan)
        var_gap = np.where(n_gaps > 0,
                           df["gap_sq_sum"].fillna(0).to_numpy(np.float64) / n_gaps - mean_gap**2,
                           np.nan)
    out["mean_gap_hours"] = mean_gap
    out["std_gap_hours"] = np.sqrt(np.maximum(var_gap, 0.0))
    hours = df[HOUR_COLUMNS].to_numpy(np.float64) / n[:, None]
    out[HOUR_COLUMNS] = hours
    out[DOW_COLUMNS] = df[DOW_COLUMNS].to_numpy(np.float64) / n[:, None]
    for part, (lo, hi) in DAYPARTS.items():
        out[f"share_{part}"] = hours[:, lo:hi].sum(axis=1)
    out["share_weekend"] = out["dow_5"] + out["dow_6"]
    out["hour_cos"] = hours @ HOUR_COS
    out["hour_sin"] = hours @ HOUR_SIN
    out = out.join(funnel_rates(out))
    return out


def funnel_rates(counts: pd.DataFrame) -> pd.DataFrame:
    """View -> click -> cart -> purchase conversion rates (NaN when the step never happened)."""

    def ratio(num: str, den: str) -> np.ndarray:
        d = counts[den].to_numpy(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(d > 0, counts[num].to_numpy(np.float64) / d, np.nan)

    return pd.DataFrame({
        "impression_to_click": ratio("n_click", "n_impression"),
        "view_to_click": ratio("n_click", "n_view"),
        "click_to_cart": ratio("n_add_to_cart", "n_click"),
        "cart_to_purchase": ratio("n_purchase", "n_add_to_cart"),
        "view_to_purchase": ratio("n_purchase", "n_view"),
    }, index=counts.index)


def sequence_features(con: duckdb.DuckDBPyConnection, config: ProfileConfig) -> pd.DataFrame:
    """The last ``sequence_length`` items and event types of each user, oldest first."""
    n = int(config.sequence_length)
    items = con.execute(f"""
        SELECT user_id, list(item_id ORDER BY item_pos) AS last_items FROM ev
        WHERE item_id IS NOT NULL AND item_pos > n_item - {n} GROUP BY user_id
    """).df().set_index("user_id")
    types = con.execute(f"""
        SELECT user_id, list(type ORDER BY pos) AS last_types FROM ev
        WHERE pos > n - {n} GROUP BY user_id
    """).df().set_index("user_id")
    out = types.join(items, how="left")
    out["last_items"] = [_as_list(v) for v in out["last_items"]]
    out["last_types"] = [_as_list(v) for v in out["last_types"]]
    return out


def _as_list(v: object) -> list:
    if type(v) is list:
        return v
    return list(v) if isinstance(v, np.ndarray | tuple) else []
