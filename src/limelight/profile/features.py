"""Build user profiles: one row per user with every feature family.

Families (columns): RFM, activity, time of day / week, funnel, interests, behaviour sequence,
social, geo and demographics, embeddings. Event features run as DuckDB SQL over the events;
graph features as scipy sparse algebra. See ``docs/profiles.md`` for every column.

Example
-------
>>> from limelight.profile import build_profiles
>>> profiles = build_profiles(store)                     # doctest: +SKIP
>>> profiles.loc["u1", ["recency_days", "frequency", "monetary", "rfm_segment"]]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from limelight.profile.activity import (
    DOW_COLUMNS,
    HOUR_COLUMNS,
    activity_features,
    prepare_events,
    sequence_features,
)
from limelight.profile.config import COUNTED_TYPES, DAYPARTS, ProfileConfig
from limelight.profile.geo import (
    demographic_features,
    embedding_features,
    event_regions,
    location_clusters,
)
from limelight.profile.inputs import load_inputs
from limelight.profile.interests import (
    INTEREST_PREFIX,
    interest_columns,
    interest_features,
    interest_scores,
    top_labels,
)
from limelight.profile.rfm import detect_unit_price, rfm_boundaries, rfm_raw, rfm_scores
from limelight.profile.social import social_features

#: Columns of the RFM family.
RFM_COLUMNS = ["recency_days", "frequency", "monetary", "gross_revenue", "returned_value",
               "return_rate", "avg_basket_value", "avg_basket_size", "discount_share",
               "r_score", "f_score", "m_score", "rfm_score", "rfm_segment"]
#: Columns of the activity family (counts, sessions, gaps, funnel; histograms apart).
ACTIVITY_COLUMNS = (["n_events", *[f"n_{t}" for t in COUNTED_TYPES], "n_sessions",
                     "n_active_days", "n_items", "first_seen", "last_seen", "tenure_days",
                     "days_since_last_event", "events_per_session", "mean_gap_hours",
                     "std_gap_hours", "impression_to_click", "view_to_click", "click_to_cart",
                     "cart_to_purchase", "view_to_purchase"])
TIME_COLUMNS = [*HOUR_COLUMNS, *DOW_COLUMNS, *(f"share_{p}" for p in DAYPARTS), "share_weekend",
                "hour_cos", "hour_sin"]
SEQUENCE_COLUMNS = ["last_items", "last_types"]
SOCIAL_COLUMNS = ["degree", "out_degree", "in_degree", "out_trust", "in_trust", "pagerank",
                  "friends_top_category", "friends_interest_similarity"]
GEO_COLUMNS = ["age", "age_band", "gender", "country", "region", "city", "lat", "lon",
               "geo_cluster", "days_since_signup", "consent_personalization", "consent_email",
               "consent_push", "consent_sms"]
#: Count columns that are 0 (not missing) for users without events.
ZERO_COLUMNS = ["n_events", *[f"n_{t}" for t in COUNTED_TYPES], "n_sessions", "n_active_days",
                "n_items", "frequency", "monetary", "gross_revenue", "returned_value",
                "interest_strength", *TIME_COLUMNS]


class ProfileBuilder:
    """Computes profiles and keeps what real-time updates need (``as_of``, RFM boundaries,
    interest columns, item labels).

    Parameters
    ----------
    config
        Profile settings; defaults to :class:`ProfileConfig()`.

    Attributes
    ----------
    profiles_ : pandas.DataFrame
        One row per user (index ``user_id``, sorted), columns by family (see module docs).
    as_of_us_ : int
        Reference time of recency and decay, µs since the epoch (UTC).
    rfm_boundaries_ : dict[str, list[float]]
        Quintile boundaries of recency_days, frequency and monetary.
    interest_columns_ : list[str]
        Categories with a dense ``interest:<name>`` column, in column order.
    items_ : pandas.DataFrame
        Items (item_id index) with ``categories``, ``tags`` and ``price``.
    """

    def __init__(self, config: ProfileConfig | None = None) -> None:
        self.config = config

    def fit(self, source: Any, *, as_of: Any = None, embeddings: Any = None) -> ProfileBuilder:
        """Compute every profile from ``source`` (an EventStore, DuckDB connection, World or
        dict of frames); ``as_of`` (timestamp) defaults to the latest event; ``embeddings`` is a
        DataFrame of user vectors (index user_id) or ``(fitted_model, users_vocab)``."""
        cfg = self.config or ProfileConfig()
        inputs = load_inputs(source)
        con = inputs.connect()
        try:
            as_of_us = prepare_events(con, _to_us(as_of))
            if cfg.value_is_unit_price is None:
                cfg = replace(cfg, value_is_unit_price=detect_unit_price(con))
            activity = activity_features(con, cfg, as_of_us)
            rfm = rfm_raw(con, cfg, as_of_us)
            sequence = sequence_features(con, cfg)
            cat_scores = interest_scores(con, cfg, as_of_us, "categories")
            interest_scores(con, cfg, as_of_us, "tags", fetch=False)
            top_cats = top_labels(con, "categories", cfg.n_top_interests)
            top_tags = top_labels(con, "tags", cfg.n_top_interests)
            columns = interest_columns(con, cfg)
            regions = event_regions(con)
        finally:
            con.close()
        users = inputs.users.to_pandas()
        edges = inputs.edges.to_pandas()
        index = _user_index(users, edges, activity.index)
        interests = interest_features(cat_scores, top_cats, top_tags, columns)

        profiles = pd.DataFrame(index=index)
        profiles = profiles.join(rfm).join(activity).join(interests).join(sequence)
        for col in ZERO_COLUMNS:
            if col in profiles:
                profiles[col] = profiles[col].fillna(0)
                if col.startswith("n_") or col == "frequency":
                    profiles[col] = profiles[col].astype(np.int64)
        for col in ("last_items", "last_types", "top_categories", "top_tags"):
            profiles[col] = [v if isinstance(v, list) else [] for v in profiles[col]]
        for col in [c for c in profiles if c.startswith(INTEREST_PREFIX)]:
            profiles[col] = profiles[col].fillna(0.0)
        boundaries = rfm_boundaries(profiles)
        profiles = profiles.join(rfm_scores(profiles, boundaries))

        demo = demographic_features(users, index, as_of_us)
        fallback = regions.reindex(index)
        demo["region"] = demo["region"].where(demo["region"].notna(), fallback.to_numpy())
        demo["region"] = demo["region"].astype(object).where(demo["region"].notna(), None)
        demo["geo_cluster"] = pd.array(
            location_clusters(demo["lat"].to_numpy(), demo["lon"].to_numpy(), cfg),
            dtype="Int64")
        demo.loc[demo["geo_cluster"] < 0, "geo_cluster"] = pd.NA
        profiles = profiles.join(demo)

        shares = profiles[[INTEREST_PREFIX + c for c in columns]].to_numpy(np.float64)
        profiles = profiles.join(social_features(edges, index, shares, columns))
        if embeddings is not None:
            profiles = profiles.join(embedding_features(embeddings, index))

        profiles = profiles[_ordered_columns(profiles)].copy()
        profiles.index.name = "user_id"
        profiles.attrs["as_of"] = pd.Timestamp(as_of_us, unit="us", tz="UTC").isoformat()
        self.profiles_ = profiles
        self.as_of_us_ = as_of_us
        self.rfm_boundaries_ = boundaries
        self.interest_columns_ = columns
        self.items_ = _item_labels(inputs.items.to_pandas())
        self.config_ = cfg
        return self


def build_profiles(source: Any, config: ProfileConfig | None = None, *, as_of: Any = None,
                   embeddings: Any = None) -> pd.DataFrame:
    """Profiles of every user in ``source``: a DataFrame indexed by ``user_id``.

    Parameters
    ----------
    source
        An EventStore, a DuckDB connection with data-model tables, a sample World, or a dict
        ``{"events": ..., "users": ..., "items": ..., "edges": ...}`` of pandas/Arrow frames.
    config
        :class:`ProfileConfig` (half-life, session gap, sequence length ...).
    as_of
        Reference time for recency and decay (default: the latest event).
    embeddings
        Optional user vectors: a DataFrame indexed by user id, or ``(model, users_vocab)``.

    Returns
    -------
    pandas.DataFrame, shape (n_users, n_features); see ``docs/profiles.md`` for the columns.
    """
    return ProfileBuilder(config).fit(source, as_of=as_of, embeddings=embeddings).profiles_


def _to_us(as_of: Any) -> int | None:
    if as_of is None:
        return None
    if isinstance(as_of, int | np.integer):
        return int(as_of)
    ts = pd.Timestamp(as_of)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1000)


def _user_index(users: pd.DataFrame, edges: pd.DataFrame, active: pd.Index) -> pd.Index:
    ids = [users["user_id"].dropna().astype(str), pd.Series(active.astype(str)),
           edges["src_user_id"].dropna().astype(str), edges["dst_user_id"].dropna().astype(str)]
    return pd.Index(np.sort(pd.unique(pd.concat(ids, ignore_index=True)).astype(object)),
                    name="user_id", dtype=object)


def _item_labels(items: pd.DataFrame) -> pd.DataFrame:
    items = items.drop_duplicates("item_id", keep="last").set_index("item_id")
    out = pd.DataFrame(index=items.index.astype(str))
    for col in ("categories", "tags"):
        out[col] = [sorted({str(x).strip() for x in v if x is not None and str(x).strip()})
                    if v is not None and not isinstance(v, float) else []
                    for v in items[col].to_numpy()]
    out["price"] = pd.to_numeric(items["price"], errors="coerce").to_numpy(np.float64)
    return out


def _ordered_columns(profiles: pd.DataFrame) -> list[str]:
    interest = ["interest_strength", "top_categories", "top_tags",
                *[c for c in profiles if c.startswith(INTEREST_PREFIX)]]
    emb = [c for c in profiles if c.startswith("emb_")]
    order = [*RFM_COLUMNS, *ACTIVITY_COLUMNS, *TIME_COLUMNS, *interest, *SEQUENCE_COLUMNS,
             *SOCIAL_COLUMNS, *GEO_COLUMNS, *emb]
    return [c for c in order if c in profiles]
