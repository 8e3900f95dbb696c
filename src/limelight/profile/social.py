"""Social-graph features: degree, trust in and out, PageRank influence, friends' interests and
the share of friends in the same segment.

Edges marked ``directed = False`` (or ``friend`` edges without a flag) count both ways; ``follow``
and ``trust`` edges are directed unless marked otherwise. Self-loops are ignored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp


def edge_matrix(edges: pd.DataFrame, users: pd.Index, *, kind: str | None = None
                ) -> sp.csr_matrix:
    """Weighted directed adjacency (rows = source) over ``users``; undirected edges both ways.

    Edges naming users outside ``users`` are left out (the build's user index includes every
    edge endpoint, so nothing is lost there).
    """
    n = len(users)
    if kind is not None:
        edges = edges[edges["kind"] == kind]
    if not len(edges):
        return sp.csr_matrix((n, n))
    src = users.get_indexer(edges["src_user_id"].astype(str))
    dst = users.get_indexer(edges["dst_user_id"].astype(str))
    weight = pd.to_numeric(edges["weight"], errors="coerce").fillna(1.0).to_numpy(np.float64)
    directed = edges["directed"].astype("boolean")
    undirected = ~np.asarray(directed.fillna(~edges["kind"].astype(str).eq("friend")),
                             dtype=bool)
    ok = (src >= 0) & (dst >= 0) & (src != dst)
    rows = np.concatenate([src[ok], dst[ok & undirected]])
    cols = np.concatenate([dst[ok], src[ok & undirected]])
    vals = np.concatenate([weight[ok], weight[ok & undirected]])
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


def pagerank(adjacency: sp.csr_matrix, *, damping: float = 0.85, tol: float = 1e-10,
             max_iter: int = 200) -> np.ndarray:
    """PageRank by power iteration over a weighted adjacency (rows = source); sums to 1.

    Dangling nodes (no out-edges) spread their rank uniformly, as in the original definition.
    """
    n = adjacency.shape[0]
    if n == 0:
        return np.empty(0)
    out_weight = np.asarray(adjacency.sum(axis=1)).ravel()
    dangling = out_weight == 0
    inv = np.where(dangling, 0.0, 1.0 / np.where(dangling, 1.0, out_weight))
    transition_t = (sp.diags(inv) @ adjacency).T.tocsr()
    rank = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        new = damping * (transition_t @ rank + rank[dangling].sum() / n) + (1 - damping) / n
        done = np.abs(new - rank).sum() < tol
        rank = new
        if done:
            break
    return rank / rank.sum()


def social_features(edges: pd.DataFrame, users: pd.Index,
                    interest_shares: np.ndarray | None = None,
                    interest_names: list[str] | None = None) -> pd.DataFrame:
    """Per user (``users`` order): degrees, trust, PageRank and friends' interests.

    Parameters
    ----------
    edges
        Social edges in the data model's columns.
    users
        Index of every profiled user.
    interest_shares
        Array (len(users), n_categories) of each user's interest shares, or None.
    interest_names
        Category names of ``interest_shares``'s columns.

    Returns
    -------
    DataFrame with ``degree`` (distinct neighbours either way), ``in_degree``, ``out_degree``,
    ``in_trust``, ``out_trust`` (summed trust weights), ``pagerank`` (scaled so the mean user
    scores 1), ``friends_top_category`` and ``friends_interest_similarity`` (cosine between a
    user's and their neighbours' mean interest shares).
    """
    adj = edge_matrix(edges, users)
    trust = edge_matrix(edges, users, kind="trust")
    binary = (adj > 0).astype(np.float64)
    neighbours = ((binary + binary.T) > 0).astype(np.float64).tocsr()
    out = pd.DataFrame(index=users)
    out["degree"] = np.diff(neighbours.indptr).astype(np.int64)
    out["out_degree"] = np.diff(binary.tocsr().indptr).astype(np.int64)
    out["in_degree"] = np.diff(binary.tocsc().indptr).astype(np.int64)
    out["out_trust"] = np.asarray(trust.sum(axis=1)).ravel()
    out["in_trust"] = np.asarray(trust.sum(axis=0)).ravel()
    out["pagerank"] = pagerank(adj) * len(users)
    if interest_shares is not None and interest_shares.shape[1] and interest_names:
        deg = out["degree"].to_numpy(np.float64)
        summed = neighbours @ interest_shares
        with np.errstate(invalid="ignore", divide="ignore"):
            friends = summed / np.where(deg > 0, deg, 1.0)[:, None]
            norm = np.linalg.norm(friends, axis=1) * np.linalg.norm(interest_shares, axis=1)
            cosine = np.where(norm > 0, (friends * interest_shares).sum(axis=1) / norm, np.nan)
        has = friends.max(axis=1) > 0
        names = np.asarray(interest_names, dtype=object)
        out["friends_top_category"] = np.where(has, names[friends.argmax(axis=1)], None)
        out["friends_interest_similarity"] = cosine
    return out


def same_segment_share(edges: pd.DataFrame, users: pd.Index, labels: np.ndarray) -> np.ndarray:
    """Share of each user's neighbours in the user's own segment (NaN without neighbours)."""
    adj = edge_matrix(edges, users)
    neighbours = (((adj > 0) + (adj > 0).T) > 0).tocoo()
    same = labels[neighbours.row] == labels[neighbours.col]
    deg = np.bincount(neighbours.row, minlength=len(users)).astype(np.float64)
    hits = np.bincount(neighbours.row, weights=same.astype(np.float64), minlength=len(users))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(deg > 0, hits / deg, np.nan)
