"""Demographics as given, geography (region, location clusters) and model embeddings."""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd

from limelight.profile.config import US_PER_DAY, ProfileConfig

AGE_BANDS = (0, 18, 25, 35, 45, 55, 65, 200)
AGE_LABELS = ("<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")


def demographic_features(users: pd.DataFrame, index: pd.Index, as_of_us: int) -> pd.DataFrame:
    """Age (and its band), gender, country, region, city, coordinates, days since signup and
    consent flags, aligned with ``index`` (missing users get nulls)."""
    users = users.drop_duplicates("user_id", keep="last").set_index("user_id")
    users.index = users.index.astype(str)
    users = users.reindex(index)
    out = pd.DataFrame(index=index)
    age = pd.to_numeric(users["age"], errors="coerce")
    out["age"] = age.to_numpy(np.float64)
    out["age_band"] = pd.cut(age, bins=list(AGE_BANDS), labels=list(AGE_LABELS),
                             right=False).astype(object).where(age.notna(), None).to_numpy()
    for col in ("gender", "country", "region", "city"):
        out[col] = users[col].astype(object).where(users[col].notna(), None).to_numpy()
    out["lat"] = pd.to_numeric(users["lat"], errors="coerce").to_numpy(np.float64)
    out["lon"] = pd.to_numeric(users["lon"], errors="coerce").to_numpy(np.float64)
    signup = pd.to_datetime(users["signup_time"], utc=True)
    signup_us = signup.astype("datetime64[us, UTC]").astype("int64").to_numpy(np.float64)
    out["days_since_signup"] = np.where(signup.notna().to_numpy(),
                                        (as_of_us - signup_us) / US_PER_DAY, np.nan)
    for col in ("consent_personalization", "consent_email", "consent_push", "consent_sms"):
        out[col] = users[col].astype("boolean").to_numpy()
    return out


def event_regions(con: duckdb.DuckDBPyConnection) -> pd.Series:
    """Each user's most frequent event ``geo`` (ties by name): the region when users lack one."""
    df = con.execute("""
        SELECT user_id, arg_max(geo, n) AS geo FROM (
            SELECT user_id, geo, count(*) AS n FROM events_in WHERE geo IS NOT NULL
            GROUP BY user_id, geo ORDER BY user_id, n DESC, geo DESC)
        GROUP BY user_id
    """).df()
    return df.set_index("user_id")["geo"]


def location_clusters(lat: np.ndarray, lon: np.ndarray, config: ProfileConfig) -> np.ndarray:
    """K-means cluster (0..k-1) of each user's coordinates on the unit sphere; -1 where missing.

    Clustering 3-D unit vectors instead of raw degrees keeps the date line and the poles from
    splitting nearby users.
    """
    labels = np.full(len(lat), -1, dtype=np.int64)
    ok = np.isfinite(lat) & np.isfinite(lon)
    k = min(int(config.geo_clusters), int(ok.sum()))
    if k < 2:
        return labels
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    phi, lam = np.radians(lat[ok]), np.radians(lon[ok])
    xyz = np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
    # One thread: on 3-D points OpenMP start-up dominates (and spins badly on busy machines).
    with threadpool_limits(limits=1):
        model = KMeans(n_clusters=k, n_init=3, random_state=config.random_state)
        labels[ok] = model.fit_predict(xyz)
    return labels


def embedding_features(embeddings: Any, index: pd.Index) -> pd.DataFrame:
    """``emb_0..emb_{d-1}`` columns aligned with ``index`` from a DataFrame indexed by user id,
    or from a fitted model plus its user vocabulary given as ``(model, users_vocab)``."""
    if isinstance(embeddings, tuple):
        model, vocab = embeddings
        factors = None
        for name in ("user_factors_", "user_factors", "user_embeddings_"):
            factors = getattr(model, name, None)
            if factors is not None:
                break
        if factors is None:
            from limelight.errors import NotFittedError

            raise NotFittedError(f"{type(model).__name__} has no user factors to embed profiles")
        factors = np.asarray(factors.to_numpy() if hasattr(factors, "to_numpy") else factors)
        embeddings = pd.DataFrame(factors, index=pd.Index(vocab.ids, name="user_id"))
    frame = pd.DataFrame(embeddings).copy()
    frame.index = frame.index.astype(str)
    frame.columns = [f"emb_{j}" for j in range(frame.shape[1])]
    return frame.reindex(index)
