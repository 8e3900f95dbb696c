"""Factorization machine with user, item and context features (Rendle 2010) in torch.

One example is a sparse vector over several fields -- the user id, the user's features
(demographics, segment, region ...), the item id, the item's features (categories, tags, price
band ...) and the context (time of day, channel). The score is

    y(x) = w0 + sum_f w_f x_f + sum_{f<g} <v_f, v_g> x_f x_g .

Splitting the fields into a user side U (user id, user features, context) and an item side I
gives ``y = const(U) + const(I) + <sum_U x v, sum_I x v>``, so ranking the whole catalogue for
a user is one matrix product, and a user or item never seen in training is scored from its
features alone (cold start). ``user_id_dropout`` and ``item_id_dropout`` hide ids in
training so that the feature embeddings learn to stand on their own.

Losses: ``"bpr"`` (pairwise, one sampled negative per positive), ``"warp"`` (WARP-style:
the hardest of ``n_negatives`` sampled negatives, weighted by log of the estimated rank) and
``"logistic"`` (binary cross-entropy against sampled negatives, i.e. a CTR model whose
sigmoid output is a click probability) and ``"softmax"`` (full cross-entropy over the
catalogue: the multinomial likelihood of the item given user and context, which ranks best on
small and mid-sized catalogues and is what cold-start ranking profits from most).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from limelight.models.base import Recommender, masked_top
from limelight.models.fm_features import TIME_OF_DAY, FeatureEncoding, context_values
from limelight.models.fm_validation import (
    held_out_users,
    ndcg_at_10,
    temporal_holdout,
    truth_matrix,
)
from limelight.models.torch_utils import (
    deterministic,
    require_torch,
    resolve_device,
    seed_everything,
    state_from_bytes,
    state_to_bytes,
    train_epochs,
)

if TYPE_CHECKING:
    from limelight.data.dataset import Dataset

__all__ = ["LOSSES", "TIME_OF_DAY", "FactorizationMachine", "context_values"]

LOSSES = ("bpr", "warp", "logistic", "softmax")
VALIDATIONS = ("events", "users")


class FactorizationMachine(Recommender, FeatureEncoding):
    """Factorization machine over user, item and context fields.

    Parameters
    ----------
    n_factors
        Dimension of the feature embeddings.
    loss
        ``"bpr"``, ``"warp"``, ``"logistic"`` or ``"softmax"``.
    n_negatives
        Sampled negatives per positive for ``"warp"`` and ``"logistic"``.
    n_epochs, batch_size, learning_rate, regularization
        Adam training: passes over the positives, positives per batch, step size, L2 weight on
        the embeddings used in each batch.
    use_ids
        Give every user and item its own id feature (switch off for a pure feature model).
    user_id_dropout, item_id_dropout
        Probability of hiding the user id (the item id) of a training example, so that the
        feature embeddings learn to stand alone: what cold-start scoring relies on. 1.0 makes
        users (items) pure feature vectors.
    context_fields
        Context fields to use among ``("time_of_day", "channel")``; fields the log does not
        carry are skipped. Context is hidden on half of the examples so scoring without a
        context is calibrated too.
    early_stopping, validation_fraction, patience
        Hold out part of the training events, evaluate NDCG@10 on them after each epoch, stop
        after ``patience`` epochs without progress and keep the best epoch's weights.
    validation
        What is held out: ``"events"`` -- the latest ``validation_fraction`` of each user's
        events (warm users, the next items); ``"users"`` -- all events of a random
        ``validation_fraction`` of the users, who are then scored from their features alone
        (the cold-start use: pick the epoch that serves *new* users best).
    random_state, device, verbose
        Seed; ``"auto"`` picks CUDA when available; progress bar over epochs.

    Example
    -------
    >>> fm = FactorizationMachine(loss="warp").fit(dataset)              # doctest: +SKIP
    >>> fm.recommend_cold(new_user_feature_rows, n=10)                    # doctest: +SKIP
    """

    supports_fold_in: ClassVar[bool] = False

    def __init__(self, n_factors: int = 32, loss: str = "bpr", n_negatives: int = 10,
                 n_epochs: int = 30, batch_size: int = 1024, learning_rate: float = 5e-3,
                 regularization: float = 1e-5, use_ids: bool = True,
                 user_id_dropout: float = 0.2, item_id_dropout: float = 0.2,
                 context_fields: Sequence[str] = ("time_of_day", "channel"),
                 early_stopping: bool = True, validation_fraction: float = 0.1,
                 patience: int = 3, validation: str = "events",
                 random_state: int | None = 0, device: str = "auto",
                 verbose: bool = False) -> None:
        self.n_factors = n_factors
        self.loss = loss
        self.n_negatives = n_negatives
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.use_ids = use_ids
        self.user_id_dropout = user_id_dropout
        self.item_id_dropout = item_id_dropout
        self.context_fields = context_fields
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.validation = validation
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # -- training ---------------------------------------------------------------------------
    def _fit(self, dataset: Dataset) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.validation not in VALIDATIONS:
            raise ValueError(f"validation must be one of {VALIDATIONS}, got "
                             f"{self.validation!r}")
        torch = require_torch()
        device = resolve_device(self.device)
        self._layout(dataset)
        generator = seed_everything(self.random_state, device)
        users_all = np.arange(self.n_users_)
        items_all = np.arange(self.n_items_)
        self.user_idx_, self.user_val_ = self._user_rows(dataset.user_features, users_all)
        self.item_idx_, self.item_val_ = self._item_rows(dataset.item_features, items_all)
        users, items, weights, contexts = self._positives(dataset)
        fraction = self.validation_fraction if self.early_stopping else 0.0
        if self.validation == "users":
            train, valid = held_out_users(users, fraction, self.random_state)
        else:
            train, valid = temporal_holdout(users, fraction)
        if self.use_ids:
            # An id embedding that training never updates would only add noise: users and
            # items without interactions, validation users (they stand for new users), and
            # every user when users are pure feature vectors are scored by features only.
            idless = np.diff(self.user_items_.indptr) == 0
            if self.user_id_dropout >= 1.0:
                idless[:] = True
            if self.validation == "users":
                idless[np.unique(users[valid])] = True
            self.user_val_[idless, 0] = 0.0
            self.item_val_[np.diff(self.user_items_.tocsc().indptr) == 0, 0] = 0.0
        with deterministic(device):
            self.net_ = _build_net(self.n_features_, self.n_factors).to(device)
            if self.loss == "softmax" and self.use_ids:
                self._start_at_popularity(torch, items[train], weights[train])
            ctx_idx, ctx_val = self._context_rows(contexts)
            self.history_ = self._train(torch, users, items, weights, ctx_idx, ctx_val, train,
                                        valid, generator, device)
        self.net_.eval()
        self._log_context = None
        self._cache_items()

    def _start_at_popularity(self, torch: Any, items: np.ndarray, weights: np.ndarray) -> None:
        """Item-id biases start at log item frequency: the softmax optimum without features.

        Training then learns how users and features move away from popularity instead of
        spending its first epochs on popularity itself, and the model is never worse than
        popularity early on (what cold-start users are scored against).
        """
        counts = np.bincount(items, weights=weights, minlength=self.n_items_)
        bias = np.log1p(counts)
        bias -= bias.mean()
        weight = self.net_.linear.weight
        with torch.no_grad():
            weight[self.item_id_offset_:self.item_id_offset_ + self.n_items_, 0] = \
                torch.as_tensor(bias, dtype=weight.dtype, device=weight.device)

    def _positives(self, dataset: Dataset
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[str]]]:
        """Positive (user, item, weight, context) examples in log order (user, then time).

        Weights are the event weights (normalised to mean 1), so a weak signal such as a view
        counts less than a purchase; events of weight <= 0 are not positives.
        """
        if len(dataset.log):
            log = dataset.log
            weight = (log["weight"].to_numpy(np.float64) if "weight" in log
                      else np.ones(len(log)))
            keep = weight > 0
            contexts = [c for c, k in zip(self._log_context, keep, strict=True) if k]
            users = log["user_idx"].to_numpy(np.int64)[keep]
            items = log["item_idx"].to_numpy(np.int64)[keep]
            weight = weight[keep]
        else:
            coo = dataset.interactions.tocoo()
            keep = coo.data > 0
            users, items = coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64)
            weight, contexts = coo.data[keep].astype(np.float64), [[] for _ in users]
        weight = (weight / weight.mean()).astype(np.float32) if len(weight) else weight
        return users, items, weight.astype(np.float32), contexts

    def _train(self, torch: Any, users: np.ndarray, items: np.ndarray, weights: np.ndarray,
               ctx_idx: np.ndarray,
               ctx_val: np.ndarray, train: np.ndarray, valid: np.ndarray, generator: Any,
               device: Any) -> list[dict[str, float]]:
        net = self.net_
        optimizer = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
        tensors = {name: torch.from_numpy(arr).to(device) for name, arr in {
            "ui": self.user_idx_, "uv": self.user_val_, "ii": self.item_idx_,
            "iv": self.item_val_, "ci": ctx_idx, "cv": ctx_val,
            "users": users, "items": items, "weights": weights}.items()}
        valid_truth = truth_matrix(users[valid], items[valid], self.n_users_, self.n_items_)
        train_rows = truth_matrix(users[train], items[train], self.n_users_, self.n_items_)
        train_t = torch.from_numpy(train)

        def batch_losses() -> Iterator[Any]:
            order = train_t[torch.randperm(len(train_t), generator=generator)]
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size].to(device)
                yield self._batch_loss(torch, tensors, batch, generator, device)

        def validate() -> float:
            self._cache_items()
            return ndcg_at_10(self, valid_truth, train_rows)

        return train_epochs(net, optimizer, batch_losses, n_epochs=self.n_epochs,
                            validate=validate if valid_truth.nnz else None,
                            patience=self.patience, verbose=self.verbose, desc="FM")

    def _side(self, torch: Any, idx: Any, val: Any, rate: float, generator: Any) -> Any:
        if self.use_ids and rate > 0:
            keep = (torch.rand(idx.shape[0], generator=generator) >= rate)
            val = val.clone()
            val[:, 0] = val[:, 0] * keep.to(val.device, val.dtype)
        return idx, val

    def _batch_loss(self, torch: Any, t: dict[str, Any], batch: Any, generator: Any,
                    device: Any) -> Any:
        functional = torch.nn.functional
        users, items, weights = t["users"][batch], t["items"][batch], t["weights"][batch]
        size = len(batch)
        total = weights.sum().clamp(min=1e-6)
        ui, uv = self._side(torch, t["ui"][users], t["uv"][users], self.user_id_dropout,
                            generator)
        ci, cv = t["ci"][batch], t["cv"][batch]
        hide = (torch.rand(size, generator=generator) < 0.5).to(device)
        cv = cv * (~hide)[:, None]
        u_lin, u_vec, u_within = self.net_.side(torch.cat([ui, ci], 1), torch.cat([uv, cv], 1))
        if self.loss == "softmax":
            i_lin, i_vec, i_within = self.net_.side(t["ii"], t["iv"])   # the whole catalogue
            logits = u_vec @ i_vec.T + (i_lin + i_within)[None, :]
            reg = u_vec.pow(2).sum(-1).mean() + i_vec.pow(2).sum(-1).mean()
            loss = (functional.cross_entropy(logits, items, reduction="none") * weights).sum()
            return loss / total + self.regularization * reg
        n_neg = 1 if self.loss == "bpr" else self.n_negatives
        negatives = torch.randint(0, self.n_items_, (size, n_neg), generator=generator).to(
            device)
        all_items = torch.cat([items[:, None], negatives], 1).reshape(-1)
        ii, iv = self._side(torch, t["ii"][all_items], t["iv"][all_items],
                            self.item_id_dropout, generator)
        i_lin, i_vec, i_within = self.net_.side(ii, iv)
        i_vec = i_vec.view(size, n_neg + 1, -1)
        item_const = (i_lin + i_within).view(size, n_neg + 1)
        scores = (self.net_.bias + u_lin + u_within)[:, None] + item_const + (
            i_vec * u_vec[:, None, :]).sum(-1)
        pos, neg = scores[:, :1], scores[:, 1:]
        # a sampled "negative" that is the positive itself teaches nothing: leave it out
        real = (negatives != items[:, None]).float()
        n_real = real.sum(1).clamp(min=1.0)
        if self.loss == "bpr":
            per_example = -(functional.logsigmoid(pos - neg) * real).sum(1) / n_real
        elif self.loss == "logistic":
            per_example = (functional.softplus(-pos[:, 0])
                           + (functional.softplus(neg) * real).sum(1) / n_real)
        else:
            violators = ((neg > pos - 1.0).float() * real).sum(1)
            rank_estimate = violators * (self.n_items_ - 1) / n_real
            hardest = neg.masked_fill(real == 0, float("-inf")).max(dim=1).values
            per_example = torch.log1p(rank_estimate) * functional.relu(
                1.0 - pos[:, 0] + hardest.clamp(min=-1e4))
        loss = (per_example * weights).sum() / total
        reg = u_vec.pow(2).sum(-1).mean() + i_vec.pow(2).sum(-1).mean()
        return loss + self.regularization * reg

    # -- scoring ----------------------------------------------------------------------------
    def _cache_items(self) -> None:
        """Item-side vectors and constants of the known catalogue, kept on the model."""
        vec, const = self._item_side_arrays(self.item_idx_, self.item_val_)
        self.item_vec_, self.item_const_ = vec, const

    def _item_side_arrays(self, idx: np.ndarray, val: np.ndarray) -> tuple[np.ndarray,
                                                                             np.ndarray]:
        torch = require_torch()
        device = next(self.net_.parameters()).device
        with torch.no_grad():
            lin, vec, within = self.net_.side(torch.from_numpy(idx).to(device),
                                              torch.from_numpy(val).to(device))
        return vec.float().cpu().numpy(), (lin + within).float().cpu().numpy()

    def _user_side_arrays(self, idx: np.ndarray, val: np.ndarray,
                          context: Sequence[Sequence[str]] | None) -> tuple[np.ndarray,
                                                                            np.ndarray]:
        torch = require_torch()
        if context is not None:
            ci, cv = self._context_rows(context)
            idx, val = np.concatenate([idx, ci], 1), np.concatenate([val, cv], 1)
        device = next(self.net_.parameters()).device
        with torch.no_grad():
            lin, vec, within = self.net_.side(torch.from_numpy(idx).to(device),
                                              torch.from_numpy(val).to(device))
            const = self.net_.bias + lin + within
        return vec.float().cpu().numpy(), const.float().cpu().numpy()

    def _score_users(self, user_idx: np.ndarray, user_items: sp.csr_matrix,
                     context: Sequence[Sequence[str]] | None = None) -> np.ndarray:
        if len(user_idx) and (user_idx.min() < 0 or user_idx.max() >= self.n_users_):
            from limelight.errors import UnknownIdError

            raise UnknownIdError("user index (use recommend_cold for new users)",
                                 user_idx[(user_idx < 0) | (user_idx >= self.n_users_)][:10])
        u_vec, u_const = self._user_side_arrays(self.user_idx_[user_idx],
                                                self.user_val_[user_idx], context)
        return u_vec @ self.item_vec_.T + u_const[:, None] + self.item_const_[None, :]

    def recommend_with_context(self, user_ids: np.ndarray | int,
                               context: Mapping[str, str] | Sequence[Mapping[str, str]],
                               n: int = 10, *, exclude_seen: bool = True,
                               candidates: np.ndarray | None = None
                               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` for known users in a context, e.g. ``{"time_of_day": "evening",
        "channel": "email"}`` (one mapping for all users or one per user)."""
        self.check_fitted()
        users = np.atleast_1d(np.asarray(user_ids, dtype=np.int64))
        tokens = self._context_tokens(context, len(users))
        scores = self._score_users(users, self.user_items_[users], tokens).astype(np.float32)
        return masked_top(scores, n, candidates,
                           self.user_items_[users] if exclude_seen else None)

    # -- cold start -------------------------------------------------------------------------
    def score_cold(self, user_feature_rows: Any, item_feature_rows: Any = None, *,
                   context: Mapping[str, str] | Sequence[Mapping[str, str]] | None = None
                   ) -> np.ndarray:
        """Scores of users known only by features for items (known, or new by features).

        Parameters
        ----------
        user_feature_rows
            CSR/dense (u, n_user_features) over the training columns, or a list of feature
            names / ``{name: value}`` mappings per user (see :meth:`feature_rows`).
        item_feature_rows
            None for the training catalogue (ids and features), else rows of new items in the
            same forms, shape (m, n_item_features).
        context
            Optional context, one mapping for all users or one per user.

        Returns
        -------
        numpy.ndarray
            Shape (u, n_items) or (u, m) float32.
        """
        self.check_fitted()
        users = self._as_rows(user_feature_rows, "user")
        u_vec, u_const = self._user_side_arrays(*self._user_rows(users, None),
                                                self._context_tokens(context, users.shape[0]))
        if item_feature_rows is None:
            i_vec, i_const = self.item_vec_, self.item_const_
        else:
            i_vec, i_const = self._item_side_arrays(
                *self._item_rows(self._as_rows(item_feature_rows, "item"), None))
        return (u_vec @ i_vec.T + u_const[:, None] + i_const[None, :]).astype(np.float32)

    def recommend_cold(self, user_feature_rows: Any, n: int = 10, *,
                       candidates: np.ndarray | None = None,
                       context: Mapping[str, str] | Sequence[Mapping[str, str]] | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` catalogue items for users absent from training, from their features.

        Returns (item indices int64, scores float32), both shape (u, n).
        """
        scores = self.score_cold(user_feature_rows, context=context)
        return masked_top(scores, n, candidates, None)

    def item_vectors(self) -> np.ndarray:
        self.check_fitted()
        return self.item_vec_

    # -- persistence ------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_log_context", None)
        if "net_" in state:
            state["net_"] = state_to_bytes(state["net_"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        payload = state.get("net_")
        self.__dict__.update(state)
        if isinstance(payload, bytes):
            self.net_ = state_from_bytes(_build_net(self.n_features_, self.n_factors), payload,
                                         resolve_device(self.device)).eval()


def _build_net(n_features: int, n_factors: int) -> Any:
    torch = require_torch()
    nn = torch.nn

    class FMNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(()))
            self.linear = nn.Embedding(n_features, 1, padding_idx=0)
            self.factors = nn.Embedding(n_features, n_factors, padding_idx=0)
            nn.init.zeros_(self.linear.weight)
            nn.init.normal_(self.factors.weight, std=0.01)
            with torch.no_grad():
                self.factors.weight[0].zero_()

        def side(self, idx: Any, val: Any) -> tuple[Any, Any, Any]:
            """One side's linear term (B,), summed vector (B, d) and its within-side pairs."""
            vectors = self.factors(idx) * val[..., None]            # (B, K, d)
            summed = vectors.sum(1)
            within = 0.5 * (summed.pow(2).sum(-1) - vectors.pow(2).sum((1, 2)))
            linear = (self.linear(idx)[..., 0] * val).sum(1)
            return linear, summed, within

    return FMNet()
