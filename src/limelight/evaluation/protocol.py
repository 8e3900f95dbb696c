"""Evaluation protocols: how a fitted model is scored against held-out data.

- :func:`evaluate_ranking` -- full ranking over the whole catalogue with the user's known items
  left out (the default and the honest one); ``sampled_negatives=N`` adds the common but
  optimistic "rank the test items among N random negatives" variant, whose metrics are
  labelled ``sampled_...`` so the two can never be confused.
- :func:`evaluate_rating` -- RMSE / MAE of predicted ratings on held-out ratings.

The named protocols of the leaderboard (:data:`PROTOCOLS`):

- ``ranking``: per user, the last 20% of items by (timestamp, item) are the test
  (:class:`~limelight.evaluation.split.TemporalHoldout`); validation for tuning is cut the
  same way (last 10%) from training.
- ``rating``: explicit ratings on held-out folds (ML-100K's official u1..u5, else random
  per-user 20% holdouts); validation is a random 10% of each user's training ratings,
  cut the way the test folds are.
- ``cold-start``: 20% of users held out of training
  (:class:`~limelight.evaluation.split.HeldOutUsers`); each gets recommendations from their
  first 5 items only (fold-in), scored on the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from limelight.evaluation import metrics as M
from limelight.evaluation.split import HeldOutUsers, RandomHoldout, Splitter, TemporalHoldout

if TYPE_CHECKING:
    from limelight.data.dataset import Dataset
    from limelight.models.base import Recommender


def _relevant(test: Dataset) -> sp.csr_matrix:
    """Positive test interactions (a negative event such as not_interested is not relevant)."""
    rel = sp.csr_matrix(test.interactions > 0, dtype=np.float32)
    rel.eliminate_zeros()
    return rel


def _scores(model: Recommender, users: np.ndarray, history: sp.csr_matrix | None) -> np.ndarray:
    items = np.arange(model.n_items_)
    rows = history[users] if history is not None else None
    return np.array(model.score(users, items, user_items=rows), dtype=np.float64)


def evaluate_ranking(model: Recommender, train: Dataset, test: Dataset, *, k: int = 10,
                     extra_k: tuple[int, ...] = (20,), history: Dataset | None = None,
                     sampled_negatives: int | None = None,
                     item_features: np.ndarray | sp.spmatrix | None = None,
                     batch_size: int = 256, random_state: int = 0, extras: bool = True,
                     max_users: int | None = None) -> dict[str, float]:
    """Top-``k`` metrics of ``model`` on ``test`` by full ranking over the catalogue.

    Parameters
    ----------
    model
        A fitted recommender (fitted on ``train``).
    train
        Its training data; each user's training items are excluded from the ranking.
    test
        Held-out interactions (same vocabularies); users with a positive test item are scored.
    k
        The cut-off of every metric; ``extra_k`` adds recall at further cut-offs.
    history
        For users absent from training (cold start): their known items, passed to the model
        as ``user_items`` and excluded from the ranking instead of the training rows.
    sampled_negatives
        When set, also rank each user's test items among this many random unseen items and
        report those metrics as ``sampled_<metric>`` (optimistic; full ranking stays primary).
    item_features
        Item feature rows (n_items, d) for intra-list diversity; defaults to
        ``train.item_features``.
    batch_size
        Users scored at once.
    random_state
        Seed of the sampled negatives.
    extras
        Also compute AUC and the beyond-accuracy measures (tuning turns them off for speed).
    max_users
        Score a random sample of this many test users (seeded) instead of all of them, to bound
        the work on large catalogues; ``users`` in the result says how many were scored.

    Returns
    -------
    dict
        ``precision@k``, ``recall@k``, ``recall@{extra}``, ``f1@k``, ``ndcg@k``, ``map@k``,
        ``mrr@k``, ``hit_rate@k``, ``auc``, ``coverage@k``, ``novelty@k``, ``gini@k``,
        ``popularity@k``, ``diversity@k`` (when features exist), ``users``; plus
        ``sampled_*`` entries when asked.
    """
    relevant = _relevant(test)
    known = (history.interactions if history is not None else train.interactions).tocsr()
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    depth = max((k, *extra_k))
    rng = np.random.default_rng(random_state)
    if max_users is not None and len(users) > max_users:
        users = np.sort(rng.choice(users, size=max_users, replace=False))
    recs, hit_rows, aucs, sampled_hits = [], [], [], []
    for start in range(0, len(users), batch_size):
        batch = users[start:start + batch_size]
        scores = _scores(model, batch, known if history is not None else None)
        rel_rows, known_rows = relevant[batch], known[batch]
        if extras:
            aucs.append(M.auc(scores, rel_rows, excluded=known_rows))
        masked = scores.copy()
        coo = known_rows.tocoo()
        masked[coo.row, coo.col] = -np.inf
        top, _ = _top(masked, depth)
        recs.append(top)
        hit_rows.append(M.hits_matrix(top, rel_rows))
        if sampled_negatives:
            sampled_hits.append(_sampled_hits(masked, rel_rows, sampled_negatives, k, rng))
    n_rel = np.diff(relevant.indptr)[users]
    out = _ranking_summary(_stack(hit_rows, depth), n_rel, k, extra_k)
    out["users"] = len(users)
    if not extras:
        return out
    top_k = _stack(recs, depth)[:, :k]
    popularity = M.item_popularity(train.interactions)
    feats = item_features if item_features is not None else train.item_features
    out.update({
        "auc": float(np.nanmean(np.concatenate(aucs))) if aucs else float("nan"),
        f"coverage@{k}": M.catalogue_coverage(top_k, train.n_items),
        f"novelty@{k}": M.novelty(top_k, popularity, train.n_users),
        f"gini@{k}": M.gini(M.exposure(top_k, train.n_items)),
        f"popularity@{k}": M.average_popularity(top_k, popularity),
    })
    if feats is not None and feats.shape[0] == train.n_items and feats.shape[1] > 0:
        out[f"diversity@{k}"] = M.intra_list_diversity(top_k, feats)
    if sampled_negatives:
        sampled = _ranking_summary(_stack(sampled_hits, k), n_rel, k, ())
        out.update({f"sampled_{name}": v for name, v in sampled.items()})
        out["sampled_negatives"] = int(sampled_negatives)
    return out


def _top(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    from limelight.models.base import top_n

    return top_n(scores, n)


def _stack(parts: list[np.ndarray], width: int) -> np.ndarray:
    return np.vstack(parts) if parts else np.zeros((0, width), dtype=np.int64)


def _ranking_summary(hits: np.ndarray, n_rel: np.ndarray, k: int, extra_k: tuple[int, ...]
                     ) -> dict[str, float]:
    if not len(hits):
        return {}
    out = {
        f"precision@{k}": M.precision_at_k(hits, k).mean(),
        f"recall@{k}": M.recall_at_k(hits, n_rel, k).mean(),
        f"f1@{k}": M.f1_at_k(hits, n_rel, k).mean(),
        f"ndcg@{k}": M.ndcg_at_k(hits, n_rel, k).mean(),
        f"map@{k}": M.average_precision_at_k(hits, n_rel, k).mean(),
        f"mrr@{k}": M.reciprocal_rank_at_k(hits, k).mean(),
        f"hit_rate@{k}": M.hit_rate_at_k(hits, k).mean(),
    }
    for extra in extra_k:
        if extra != k and extra <= hits.shape[1]:
            out[f"recall@{extra}"] = M.recall_at_k(hits, n_rel, extra).mean()
    return {name: float(v) for name, v in out.items()}


def _sampled_hits(masked: np.ndarray, relevant: sp.csr_matrix, n_neg: int, k: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Hits@k when each user's test items compete with ``n_neg`` random unseen items only."""
    out = np.zeros((masked.shape[0], k), dtype=bool)
    for r in range(masked.shape[0]):
        pos = relevant.indices[relevant.indptr[r]:relevant.indptr[r + 1]]
        pool = np.flatnonzero(np.isfinite(masked[r]))
        pool = np.setdiff1d(pool, pos, assume_unique=False)
        neg = rng.choice(pool, size=min(n_neg, len(pool)), replace=False)
        cand = np.concatenate([pos, neg])
        order = cand[np.argsort(-masked[r, cand], kind="stable")][:k]
        out[r, :len(order)] = np.isin(order, pos)
    return out


def evaluate_rating(model: Recommender, train: Dataset, test: Dataset, *, batch_size: int = 512,
                    clip: bool = True) -> dict[str, float]:
    """RMSE and MAE of ``model.score`` on ``test``'s explicit ratings.

    Predictions are clipped to the range of the training ratings (``clip=True``), as rating
    libraries do, since a rating outside the scale is never right.
    """
    truth = test.ratings.tocoo()
    if not truth.nnz:
        from limelight.errors import SchemaError

        raise SchemaError("the test set holds no explicit ratings (events of type 'rating')")
    rows, cols, values = truth.row.astype(np.int64), truth.col.astype(np.int64), truth.data
    order = np.argsort(rows, kind="stable")
    rows, cols, values = rows[order], cols[order], values[order]
    users = np.unique(rows)
    predicted = np.empty(len(rows), dtype=np.float64)
    items = np.arange(model.n_items_)
    predict = getattr(model, "predict", None)  # rating models predict (user, item) pairs
    if callable(predict):
        predicted[:] = np.asarray(predict(rows, cols), dtype=np.float64)
        users = users[:0]
    for start in range(0, len(users), batch_size):
        batch = users[start:start + batch_size]
        dense = np.asarray(model.score(batch, items), dtype=np.float64)
        lo, hi = np.searchsorted(rows, [batch[0], batch[-1] + 1])
        local = np.searchsorted(batch, rows[lo:hi])
        predicted[lo:hi] = dense[local, cols[lo:hi]]
    if clip:
        train_values = train.ratings.data
        if len(train_values):
            predicted = np.clip(predicted, train_values.min(), train_values.max())
    return {"rmse": M.rmse(predicted, values), "mae": M.mae(predicted, values),
            "ratings": len(values)}


# -- named protocols -----------------------------------------------------------------------

@dataclass(frozen=True)
class ProtocolSpec:
    """A named evaluation protocol: how to split, validate and score."""

    name: str
    kind: str  # "ranking" or "rating"
    test_splitter: Any
    validation_splitter: Splitter
    primary_metric: str
    higher_is_better: bool = True
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


PROTOCOLS: dict[str, ProtocolSpec] = {
    "ranking": ProtocolSpec(
        "ranking", "ranking", TemporalHoldout(0.2), TemporalHoldout(0.1), "ndcg@10",
        description="per-user temporal 80/20, full ranking, training items excluded"),
    "rating": ProtocolSpec(
        # validation is cut the way the test is (at random), so tuning sees the same task
        "rating", "rating", RandomHoldout(0.2), RandomHoldout(0.1), "rmse",
        higher_is_better=False,
        description="held-out explicit ratings (ML-100K: official folds u1..u5), RMSE/MAE"),
    "cold-start": ProtocolSpec(
        "cold-start", "ranking", HeldOutUsers(0.2, given=5), TemporalHoldout(0.1), "ndcg@10",
        description="20% of users held out of training; first 5 items given, rest scored"),
}


def get_protocol(name: str) -> ProtocolSpec:
    """The protocol called ``name``; a one-line error lists the known ones."""
    from limelight.errors import ConfigError

    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(f"unknown protocol {name!r}; choose one of {sorted(PROTOCOLS)}"
                          ) from None
