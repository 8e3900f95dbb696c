"""Time-decayed interests over item categories (genres) and tags.

An event on an item adds ``weight(type) * 2 ** (-(as_of - t) / half_life)`` to every category
and tag of the item (a rating weighs its value times the ``rating`` weight). Dense columns
``interest:<category>`` hold each user's *share* of positive category affinity for the most
common categories; ``top_categories`` and ``top_tags`` name the strongest ones.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from limelight.profile.config import ProfileConfig

INTEREST_PREFIX = "interest:"


def weight_sql(config: ProfileConfig, alias: str = "e") -> str:
    """SQL CASE giving each event's interest weight from ``config.event_weights``."""
    cases = " ".join(
        f"WHEN '{t.replace(chr(39), '')}' THEN {float(w)!r}"
        for t, w in config.event_weights.items())
    rating_w = float(config.event_weights.get("rating", 0.0))
    return (f"(CASE WHEN {alias}.type = 'rating' THEN {rating_w!r} * coalesce({alias}.value, 0) "
            f"ELSE (CASE {alias}.type {cases} ELSE 0.0 END) END)")


def item_labels(con: duckdb.DuckDBPyConnection, column: str) -> None:
    """Temp table ``item_<column>`` (item_id, label) of distinct non-empty labels per item."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE item_{column} AS
        SELECT DISTINCT item_id, label FROM (
            SELECT item_id, trim(unnest({column})) AS label FROM items_in
            WHERE {column} IS NOT NULL)
        WHERE label IS NOT NULL AND label <> ''
    """)


def interest_scores(con: duckdb.DuckDBPyConnection, config: ProfileConfig, as_of_us: int,
                    column: str, *, fetch: bool = True) -> pd.DataFrame | None:
    """Temp table ``scores_<column>`` (user_id, label, score) of decayed affinity over
    ``column`` labels, returned as a long frame when ``fetch``."""
    item_labels(con, column)
    decay = f"pow(2.0, -({int(as_of_us)} - e.ts) / {config.half_life_us!r})"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE scores_{column} AS
        SELECT e.user_id, l.label, sum({weight_sql(config)} * {decay}) AS score
        FROM ev e JOIN item_{column} l ON e.item_id = l.item_id
        GROUP BY e.user_id, l.label
    """)
    return con.execute(f"SELECT * FROM scores_{column}").df() if fetch else None


def top_labels(con: duckdb.DuckDBPyConnection, column: str, n: int) -> pd.Series:
    """Per user the ``n`` labels of highest positive score, as lists (index user_id).

    Ranking uses shares rounded to 9 decimals so that labels of the same items (equal scores up
    to summation order) tie exactly and fall back to name order, in batch and real time alike.
    """
    df = con.execute(f"""
        SELECT user_id, list(label ORDER BY r) AS top FROM (
            SELECT user_id, label, row_number() OVER (
                PARTITION BY user_id ORDER BY round(score / total, 9) DESC, label) AS r
            FROM (SELECT *, sum(score) OVER (PARTITION BY user_id) AS total
                  FROM scores_{column} WHERE score > 0))
        WHERE r <= {int(n)} GROUP BY user_id
    """).df()
    return pd.Series([v if type(v) is list else list(v) for v in df["top"]],
                     index=df["user_id"], dtype=object)


def interest_columns(con: duckdb.DuckDBPyConnection, config: ProfileConfig) -> list[str]:
    """The ``n_interest_columns`` categories carried by most items (ties by name)."""
    rows = con.execute(f"""
        SELECT label FROM item_categories GROUP BY label
        ORDER BY count(*) DESC, label LIMIT {int(config.n_interest_columns)}
    """).fetchall()
    return [r[0] for r in rows]


def interest_features(cat_scores: pd.DataFrame, top_categories: pd.Series,
                      top_tags: pd.Series, columns: list[str]) -> pd.DataFrame:
    """Dense category shares, ``interest_strength``, ``top_categories`` and ``top_tags``."""
    users = pd.Index(pd.unique(pd.concat([cat_scores["user_id"],
                                          pd.Series(top_tags.index, dtype=object)])),
                     name="user_id")
    out = pd.DataFrame(index=users)
    pos = cat_scores["score"].clip(lower=0.0)
    rows = users.get_indexer(cat_scores["user_id"])
    total = np.bincount(rows, weights=pos.to_numpy(), minlength=len(users))
    out["interest_strength"] = total
    dense = np.zeros((len(users), len(columns)))
    col_index = {c: j for j, c in enumerate(columns)}
    j = cat_scores["label"].map(col_index)
    keep = j.notna().to_numpy()
    if keep.any():
        np.add.at(dense, (rows[keep], j[keep].to_numpy(np.int64)), pos[keep].to_numpy())
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(total[:, None] > 0, dense / total[:, None], 0.0)
    for c, jj in col_index.items():
        out[INTEREST_PREFIX + c] = shares[:, jj]
    out["top_categories"] = top_categories.reindex(users).to_numpy()
    out["top_tags"] = top_tags.reindex(users).to_numpy()
    return out
