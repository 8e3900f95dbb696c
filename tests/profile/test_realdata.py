"""Profiles on the public datasets, checked against independent computations from the files.

Online Retail: RFM per customer (cancellations reduce monetary value); FilmTrust: trust-graph
features and PageRank; MovieLens 100K: demographics and decayed genre interests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from limelight.data.sources import ingest_dataset
from limelight.profile.features import ProfileBuilder
from limelight.store.duckdb import DuckDBEventStore

pytestmark = pytest.mark.realdata


def _built(name: str, directory: Path) -> tuple[ProfileBuilder, DuckDBEventStore]:
    store = DuckDBEventStore(":memory:")
    ingest_dataset(store, name, directory)
    return ProfileBuilder().fit(store), store


@pytest.mark.slow
def test_online_retail_rfm(retail_dir: Path) -> None:
    builder, store = _built("online-retail", retail_dir)
    profiles = builder.profiles_
    # The adapter stores unit prices: the build recognises it from the data.
    assert builder.config_.value_is_unit_price is True
    assert len(profiles) == 4372  # every customer

    # Independent recomputation from the stored events with pandas.
    ev = store.read("events", columns=["user_id", "type", "value", "quantity", "timestamp",
                                       "session_id"])
    store.close()
    ev["amount"] = ev["value"] * ev["quantity"].fillna(1.0)
    buys, rets = ev[ev["type"] == "purchase"], ev[ev["type"] == "return"]
    gross = buys.groupby("user_id")["amount"].sum()
    returned = rets.groupby("user_id")["amount"].sum().abs()
    expected = pd.DataFrame({
        "gross": gross, "returned": returned,
        "orders": buys.groupby("user_id")["session_id"].nunique(),
        "last": buys.groupby("user_id")["timestamp"].max(),
    }).reindex(profiles.index).fillna({"gross": 0.0, "returned": 0.0, "orders": 0})
    np.testing.assert_allclose(profiles["gross_revenue"], expected["gross"], rtol=1e-9,
                               atol=1e-6)
    np.testing.assert_allclose(profiles["monetary"], expected["gross"] - expected["returned"],
                               rtol=1e-9, atol=1e-6)
    assert (profiles["frequency"] == expected["orders"].astype(int)).all()
    as_of = ev["timestamp"].max()
    recency = (as_of - expected["last"]).dt.total_seconds() / 86400
    np.testing.assert_allclose(profiles["recency_days"], recency, rtol=1e-9)

    # Cancellations reduce monetary value: customer 12346 bought 74,215 units at 1.04 and
    # cancelled them all.
    c = profiles.loc["12346"]
    assert c["gross_revenue"] == pytest.approx(74215 * 1.04)
    assert c["monetary"] == pytest.approx(0.0, abs=1e-6)
    assert c["frequency"] == 1
    cancelled = profiles["returned_value"] > 0
    assert cancelled.sum() > 1000
    assert (profiles.loc[cancelled, "monetary"] < profiles.loc[cancelled, "gross_revenue"]).all()
    # Quintile scores and RFM segments for every buyer.
    buyers = profiles[profiles["frequency"] > 0]
    assert buyers["r_score"].notna().all() and set(buyers["m_score"]) == {1, 2, 3, 4, 5}
    assert {"Champions", "Hibernating", "At risk"} <= set(buyers["rfm_segment"])
    champions = buyers[buyers["rfm_segment"] == "Champions"]
    assert champions["monetary"].median() > 3 * buyers["monetary"].median()


def test_filmtrust_trust_graph(filmtrust_dir: Path) -> None:
    builder, store = _built("filmtrust", filmtrust_dir)
    store.close()
    profiles = builder.profiles_
    trust = pd.read_csv(filmtrust_dir / "trust.txt", sep=r"\s+", header=None,
                        names=["src", "dst", "w"], dtype={"src": str, "dst": str})
    trust = trust[trust["src"] != trust["dst"]]
    assert profiles["out_trust"].sum() == pytest.approx(trust["w"].sum())
    assert profiles["in_trust"].sum() == pytest.approx(trust["w"].sum())
    out_deg = trust.groupby("src").size().reindex(profiles.index, fill_value=0)
    in_deg = trust.groupby("dst").size().reindex(profiles.index, fill_value=0)
    assert (profiles["out_degree"] == out_deg).all()
    assert (profiles["in_degree"] == in_deg).all()
    pairs = pd.concat([trust[["src", "dst"]],
                       trust[["dst", "src"]].set_axis(["src", "dst"], axis=1)]).drop_duplicates()
    assert (profiles["degree"] == pairs.groupby("src").size().reindex(
        profiles.index, fill_value=0)).all()

    # PageRank against a dense power iteration written out here.
    users = list(profiles.index)
    pos = {u: i for i, u in enumerate(users)}
    n = len(users)
    a = np.zeros((n, n))
    for s, d, w in trust[["src", "dst", "w"]].itertuples(index=False):
        a[pos[s], pos[d]] += w
    out = a.sum(axis=1)
    spread_t = np.where(out[:, None] > 0, a / np.where(out > 0, out, 1)[:, None], 1 / n).T
    r = np.full(n, 1 / n)
    for _ in range(200):
        r = 0.15 / n + 0.85 * spread_t @ r
    np.testing.assert_allclose(profiles["pagerank"].to_numpy() / n, r / r.sum(), rtol=1e-6)
    top = profiles["pagerank"].idxmax()
    assert profiles.loc[top, "in_degree"] >= np.percentile(profiles["in_degree"], 99)


def test_movielens_demographics_and_genre_interests(ml100k_dir: Path) -> None:
    builder, store = _built("ml-100k", ml100k_dir)
    store.close()
    profiles = builder.profiles_
    assert len(profiles) == 943
    users = pd.read_csv(ml100k_dir / "u.user", sep="|", header=None,
                        names=["user_id", "age", "gender", "occupation", "zip"], dtype=str)
    users = users.set_index("user_id")
    assert (profiles["age"] == users["age"].astype(float).reindex(profiles.index)).all()
    assert (profiles["gender"] == users["gender"].reindex(profiles.index)).all()
    assert profiles.loc["1", "age_band"] == "18-24"  # user 1 is 24

    # Decayed, rating-weighted genre affinity recomputed from u.data and u.item.
    ratings = pd.read_csv(ml100k_dir / "u.data", sep="\t", header=None,
                          names=["user", "item", "rating", "ts"], dtype={"user": str})
    genres = pd.read_csv(ml100k_dir / "u.genre", sep="|", header=None, names=["name", "i"])
    names = genres.sort_values("i")["name"].tolist()
    items = pd.read_csv(ml100k_dir / "u.item", sep="|", header=None, encoding="latin-1",
                        names=["item", "title", "date", "video", "url", *names])
    flags = items.set_index("item")[names]
    half_life_s = 30 * 86400
    as_of = ratings["ts"].max()
    for user in ("1", "405", "655"):
        r = ratings[ratings["user"] == user]
        w = r["rating"].to_numpy() * 2.0 ** (-(as_of - r["ts"].to_numpy()) / half_life_s)
        scores = (flags.loc[r["item"]].to_numpy() * w[:, None]).sum(axis=0)
        share = pd.Series(scores / scores.sum(), index=names)
        for genre in ("Drama", "Comedy", "Action", "Sci-Fi"):
            assert profiles.loc[user, f"interest:{genre}"] == pytest.approx(share[genre],
                                                                              rel=1e-9)
        top = share[share > 0].sort_values(ascending=False).index[:3].tolist()
        assert profiles.loc[user, "top_categories"] == top
    assert profiles["interest:Drama"].mean() > profiles["interest:Western"].mean()
