"""Recency, frequency, monetary value: raw values in SQL, quintile scores, rule-based segments.

Definitions (shared with the real-time updater):

- a purchase line's amount is its ``value`` (the item's list price times ``quantity`` when
  ``value`` is missing; ``quantity`` 1 when missing), or ``value * quantity`` when
  ``ProfileConfig.value_is_unit_price`` is True;
- an *order* is a run of consecutive purchase lines of one user with the same order key (the
  session id, else the timestamp): an invoice's lines form one order;
- ``return`` events (and cancellations, which ingest turns into returns) reduce monetary value
  by their absolute amount: ``monetary = gross - returned``;
- ``recency_days`` counts days from the last purchase to ``as_of``.

Quintile scores use the boundaries (20/40/60/80 % quantiles over purchasers) of the build, so a
score means the same thing in the batch build and in real-time updates: ``bin`` = number of
boundaries strictly below the value; F and M score ``1 + bin``, R scores ``5 - bin`` (recent is
good).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from limelight.profile.config import US_PER_DAY, ProfileConfig

#: R score x F score -> segment name, the widely used RFM segment map.
_RFM_MAP: list[tuple[str, str, str]] = [
    ("12", "12", "Hibernating"),
    ("12", "34", "At risk"),
    ("12", "5", "Can't lose them"),
    ("3", "12", "About to sleep"),
    ("3", "3", "Need attention"),
    ("34", "45", "Loyal"),
    ("4", "1", "Promising"),
    ("5", "1", "New"),
    ("45", "23", "Potential loyalists"),
    ("5", "45", "Champions"),
]
NO_PURCHASE = "No purchase yet"
RFM_SEGMENTS: tuple[str, ...] = (*dict.fromkeys(n for _, _, n in _RFM_MAP), NO_PURCHASE)


def _rfm_table() -> np.ndarray:
    table = np.empty((6, 6), dtype=object)
    for r_scores, f_scores, name in _RFM_MAP:
        for r in r_scores:
            for f in f_scores:
                table[int(r), int(f)] = name
    return table


RFM_TABLE = _rfm_table()


def detect_unit_price(con: duckdb.DuckDBPyConnection) -> bool:
    """True when purchase ``value`` looks like a unit price rather than a line amount.

    Compares, over purchases of more than one unit of an item with a list price, how far
    ``value`` is (in log ratio) from the price and from price times quantity.
    """
    row = con.execute("""
        SELECT median(abs(ln(e.value / i.price))), median(abs(ln(e.value / (i.price * e.quantity))))
        FROM ev e JOIN items_in i ON e.item_id = i.item_id
        WHERE e.type = 'purchase' AND e.quantity > 1 AND e.value > 0 AND i.price > 0
    """).fetchone()
    if row is None or row[0] is None or row[1] is None:
        return False
    return bool(row[0] < row[1])


def amount_sql(config: ProfileConfig) -> str:
    """SQL expression of a line's amount over ``ev`` joined with items as ``i``."""
    qty = "coalesce(e.quantity, 1.0)"
    if config.value_is_unit_price:
        return f"coalesce(e.value, i.price) * {qty}"
    return f"coalesce(e.value, i.price * {qty})"


def unit_paid_sql(config: ProfileConfig) -> str:
    if config.value_is_unit_price:
        return "coalesce(e.value, i.price)"
    return ("coalesce(e.value, i.price * coalesce(e.quantity, 1.0))"
            " / nullif(coalesce(e.quantity, 1.0), 0)")


def rfm_raw(con: duckdb.DuckDBPyConnection, config: ProfileConfig, as_of_us: int) -> pd.DataFrame:
    """Per purchasing/returning user: orders, gross, returned, last purchase, discount counts."""
    amount = amount_sql(config)
    disc = (f"(e.campaign_id IS NOT NULL OR (i.price > 0 AND {unit_paid_sql(config)} "
            f"< i.price * (1 - {float(config.discount_threshold)})))")
    df = con.execute(f"""
        WITH p AS (
            SELECT e.user_id, e.type, e.ts, {amount} AS amount, coalesce(e.quantity, 1.0) AS qty,
                   {disc} AS discounted,
                   coalesce(e.session_id, CAST(e.ts AS VARCHAR)) AS okey,
                   lag(coalesce(e.session_id, CAST(e.ts AS VARCHAR))) OVER (
                       PARTITION BY e.user_id, e.type ORDER BY e.ts, e.event_id, e.arrival
                   ) AS prev_okey
            FROM ev e LEFT JOIN items_in i ON e.item_id = i.item_id
            WHERE e.type IN ('purchase', 'return'))
        SELECT user_id,
            sum(CASE WHEN type = 'purchase' AND okey IS DISTINCT FROM prev_okey THEN 1 ELSE 0 END)
                AS n_orders,
            coalesce(sum(amount) FILTER (WHERE type = 'purchase'), 0) AS gross,
            coalesce(sum(abs(amount)) FILTER (WHERE type = 'return'), 0) AS returned,
            coalesce(sum(qty) FILTER (WHERE type = 'purchase'), 0) AS purchase_quantity,
            count(*) FILTER (WHERE type = 'purchase') AS n_purchase_lines,
            count(*) FILTER (WHERE type = 'purchase' AND discounted) AS n_discounted,
            max(ts) FILTER (WHERE type = 'purchase') AS last_purchase_ts
        FROM p GROUP BY user_id
    """).df().set_index("user_id")
    return finish_rfm(df, as_of_us)


def finish_rfm(df: pd.DataFrame, as_of_us: int) -> pd.DataFrame:
    """Recency/frequency/monetary and basket columns from raw aggregates."""
    out = pd.DataFrame(index=df.index)
    orders = df["n_orders"].to_numpy(np.float64)
    gross = df["gross"].fillna(0).to_numpy(np.float64)
    returned = df["returned"].fillna(0).to_numpy(np.float64)
    last = df["last_purchase_ts"].to_numpy(np.float64)
    out["recency_days"] = (as_of_us - last) / US_PER_DAY
    out["frequency"] = df["n_orders"].astype(np.int64)
    out["monetary"] = gross - returned
    out["gross_revenue"] = gross
    out["returned_value"] = returned
    with np.errstate(invalid="ignore", divide="ignore"):
        out["return_rate"] = np.where(gross > 0, returned / gross, np.nan)
        out["avg_basket_value"] = np.where(orders > 0, gross / orders, np.nan)
        out["avg_basket_size"] = np.where(
            orders > 0, df["purchase_quantity"].to_numpy(np.float64) / orders, np.nan)
    lines = df["n_purchase_lines"].to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["discount_share"] = np.where(
            lines > 0, df["n_discounted"].to_numpy(np.float64) / lines, np.nan)
    return out


def rfm_boundaries(profiles: pd.DataFrame) -> dict[str, list[float]]:
    """Quintile boundaries (20/40/60/80 %) of recency, frequency and monetary over purchasers."""
    buyers = profiles[profiles["frequency"] > 0]
    qs = [0.2, 0.4, 0.6, 0.8]
    if not len(buyers):
        return {k: [0.0] * 4 for k in ("recency_days", "frequency", "monetary")}
    return {k: [float(x) for x in np.quantile(buyers[k].to_numpy(np.float64), qs)]
            for k in ("recency_days", "frequency", "monetary")}


def rfm_scores(profiles: pd.DataFrame, boundaries: dict[str, list[float]]) -> pd.DataFrame:
    """``r_score``, ``f_score``, ``m_score`` (1..5, missing for non-buyers), ``rfm_score``
    (e.g. "545") and the rule-based ``rfm_segment``."""
    buyer = profiles["frequency"].to_numpy() > 0
    bins = {k: np.searchsorted(np.asarray(b), profiles[k].to_numpy(np.float64), side="left")
            for k, b in boundaries.items()}
    r = 5 - bins["recency_days"]
    f = 1 + bins["frequency"]
    m = 1 + bins["monetary"]
    out = pd.DataFrame(index=profiles.index)
    for name, s in (("r_score", r), ("f_score", f), ("m_score", m)):
        out[name] = pd.arrays.IntegerArray(s.astype(np.int64), mask=~buyer)
    out["rfm_score"] = np.where(buyer, [f"{a}{b}{c}" for a, b, c in zip(r, f, m, strict=True)],
                                None)
    out["rfm_segment"] = np.where(buyer, RFM_TABLE[np.clip(r, 1, 5), np.clip(f, 1, 5)],
                                  NO_PURCHASE)
    return out


def rfm_segment_of(r: int | None, f: int | None) -> str:
    """Rule-based segment of one (R, F) score pair (None = no purchase)."""
    if r is None or f is None:
        return NO_PURCHASE
    return str(RFM_TABLE[r, f])


def score_one(value: float, bounds: list[float]) -> int:
    """Number of ``bounds`` strictly below ``value`` (0..4): the quintile bin."""
    return int(np.searchsorted(bounds, value, side="left"))
