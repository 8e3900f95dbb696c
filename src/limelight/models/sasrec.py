"""Self-attention sequential recommender (SASRec, Kang & McAuley 2018) in torch.

A causal transformer reads a user's items in time order and predicts the next one. Unlike
matrix models it answers from the *current* sequence, so a new event changes the next answer
at once, without retraining: :meth:`SASRec.recommend_from_sequence` and
:meth:`SASRec.score_sequences` are what a serving pipeline calls.

Choices, and why:

* full softmax cross-entropy over the catalogue by default (Klenitskiy & Vasilev, RecSys 2023,
  show it beats the original binary loss by a wide margin); a sampled softmax is the option for
  catalogues too large for a full softmax;
* ``target_window`` > 1 trains every position to predict the next *k* items, not only the next
  one; this fits protocols whose test set is a user's next several interactions;
* pre-norm blocks over *right*-padded rows (as RecBole does): with a causal mask a real
  position never sees padding, so the fused attention kernel (``is_causal``) runs without an
  explicit mask, and batches of similar length are trimmed to their longest row -- on a CPU
  this is several times faster than padding every row to ``max_len``;
* long histories are cut into several windows of ``max_len`` so no training event is wasted;
* an empty history is scored by training popularity: the network has nothing to read.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from limelight.models.base import Recommender, top_n
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

_SCORE_BATCH = 256


class SASRec(Recommender):
    """Causal self-attention over the item sequence.

    Parameters
    ----------
    n_factors
        Width of item embeddings and of the transformer.
    n_layers, n_heads
        Transformer blocks and attention heads per block.
    max_len
        Longest sequence read; older items are cut off (training uses every window).
    dropout
        Dropout on embeddings, attention and feed-forward layers.
    n_epochs, batch_size, learning_rate, regularization
        Adam(W) training: epochs over all windows, windows per batch, step size, weight decay.
    loss
        ``"ce"`` (full softmax) or ``"sampled"`` (softmax over the positive and
        ``n_negatives`` uniformly sampled items shared by the batch).
    n_negatives
        Negatives per batch for ``loss="sampled"``.
    target_window
        Each position learns to predict the next ``target_window`` items.
    early_stopping
        Hold out each user's last item, evaluate NDCG@10 on it every epoch and keep the best
        epoch's weights (training then never sees those last items).
    patience
        Epochs without improvement before early stopping ends training.
    random_state
        Seed of weights, shuffling, dropout and negative sampling.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
    verbose
        Show a progress bar over epochs.

    Example
    -------
    >>> model = SASRec(n_epochs=5).fit(dataset)                      # doctest: +SKIP
    >>> items, scores = model.recommend_from_sequence([[3, 17, 42]], n=10)  # doctest: +SKIP
    """

    supports_fold_in: ClassVar[bool] = True

    def __init__(self, n_factors: int = 64, n_layers: int = 2, n_heads: int = 2,
                 max_len: int = 200, dropout: float = 0.2, n_epochs: int = 100,
                 batch_size: int = 128, learning_rate: float = 1e-3,
                 regularization: float = 0.0, loss: str = "ce", n_negatives: int = 256,
                 target_window: int = 1, early_stopping: bool = False, patience: int = 5,
                 random_state: int | None = 0, device: str = "auto",
                 verbose: bool = False) -> None:
        self.n_factors = n_factors
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.max_len = max_len
        self.dropout = dropout
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.loss = loss
        self.n_negatives = n_negatives
        self.target_window = target_window
        self.early_stopping = early_stopping
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # -- training ---------------------------------------------------------------------------
    def _fit(self, dataset: Dataset) -> None:
        if self.loss not in ("ce", "sampled"):
            raise ValueError(f"loss must be 'ce' or 'sampled', got {self.loss!r}")
        if self.n_factors % self.n_heads:
            raise ValueError("n_factors must be a multiple of n_heads")
        torch = require_torch()
        device = resolve_device(self.device)
        self.sequences_ = [np.asarray(s, dtype=np.int64) for s in dataset.sequences()]
        counts = np.bincount(np.concatenate([np.empty(0, np.int64), *self.sequences_]),
                             minlength=self.n_items_).astype(np.float32)
        self.item_popularity_ = counts / max(float(counts.max()), 1.0)
        generator = seed_everything(self.random_state, device)
        with deterministic(device):
            self.net_ = _build_net(self.n_items_, self.n_factors, self.n_layers, self.n_heads,
                                   self.max_len, self.dropout).to(device)
            train_seqs, valid = self.sequences_, None
            if self.early_stopping:
                train_seqs, valid = _hold_out_last(self.sequences_)
            inputs, targets, lengths = _windows(train_seqs, self.max_len, self.target_window)
            self.history_ = self._train(torch, inputs, targets, lengths, valid, generator,
                                        device)
        self.net_.eval()

    def _train(self, torch: Any, inputs: np.ndarray, targets: np.ndarray, lengths: np.ndarray,
               valid: tuple[list[np.ndarray], np.ndarray] | None, generator: Any,
               device: Any) -> list[dict[str, float]]:
        net = self.net_
        optimizer = torch.optim.AdamW(net.parameters(), lr=self.learning_rate,
                                      weight_decay=self.regularization)
        x_all = torch.from_numpy(inputs)
        y_all = torch.from_numpy(targets)

        def batch_losses() -> Iterator[Any]:
            for idx in _length_batches(lengths, self.batch_size, generator, torch):
                width = int(lengths[idx].max())
                x = x_all[idx, :width].to(device)
                y = y_all[idx, :width].to(device)
                yield self._batch_loss(torch, x, y, generator, device)

        def validate() -> float:
            return _next_item_ndcg(self, *valid)

        return train_epochs(net, optimizer, batch_losses, n_epochs=self.n_epochs,
                            validate=None if valid is None else validate,
                            patience=self.patience, verbose=self.verbose, desc="SASRec")

    def _batch_loss(self, torch: Any, x: Any, y: Any, generator: Any, device: Any) -> Any:
        functional = torch.nn.functional
        hidden = self.net_.encode(x)                      # (B, L, d)
        keep = (y > 0).any(dim=-1)                        # positions with at least one target
        h = hidden[keep]                                  # (T, d)
        targets = y[keep]                                 # (T, k), 0 = none
        item_weights = self.net_.item_emb.weight          # row 0 is padding
        if self.loss == "ce":
            logits = h @ item_weights[1:].T               # (T, n_items)
            log_p = functional.log_softmax(logits, dim=-1)
            picked = log_p.gather(1, (targets - 1).clamp(min=0))
        else:
            negatives = torch.randint(1, self.n_items_ + 1, (self.n_negatives,),
                                      generator=generator).to(device)
            neg_logits = h @ item_weights[negatives].T    # (T, n_neg)
            pos_logits = (h[:, None, :] * item_weights[targets]).sum(-1)   # (T, k)
            collide = negatives[None, None, :] == targets[:, :, None]
            neg = neg_logits[:, None, :].expand(-1, targets.shape[1], -1).masked_fill(
                collide, float("-inf"))
            logits = torch.cat([pos_logits[..., None], neg], dim=-1)
            picked = functional.log_softmax(logits, dim=-1)[..., 0]
        valid = (targets > 0).float()
        return -(picked * valid).sum() / valid.sum().clamp(min=1.0)

    # -- scoring ----------------------------------------------------------------------------
    def score_sequences(self, sequences: list[np.ndarray] | list[list[int]]) -> np.ndarray:
        """Next-item scores for each sequence of item indices (oldest first).

        Parameters
        ----------
        sequences
            One sequence per row; items outside ``0..n_items-1`` are rejected.

        Returns
        -------
        numpy.ndarray
            Shape (len(sequences), n_items) float32.
        """
        self.check_fitted()
        torch = require_torch()
        seqs = [np.asarray(s, dtype=np.int64).ravel() for s in sequences]
        for s in seqs:
            if len(s) and (s.min() < 0 or s.max() >= self.n_items_):
                from limelight.errors import UnknownIdError

                raise UnknownIdError("item index", s[(s < 0) | (s >= self.n_items_)][:10])
        device = next(self.net_.parameters()).device
        out = np.empty((len(seqs), self.n_items_), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(seqs), _SCORE_BATCH):
                chunk = [s[-self.max_len:] + 1 for s in seqs[start:start + _SCORE_BATCH]]
                lengths = np.array([max(len(s), 1) for s in chunk])
                x = torch.from_numpy(_right_pad(chunk, int(lengths.max()))).to(device)
                hidden = self.net_.encode(x)
                rows = torch.arange(len(chunk), device=device)
                last = hidden[rows, torch.from_numpy(lengths - 1).to(device)]
                scores = (last @ self.net_.item_emb.weight[1:].T).float().cpu().numpy()
                out[start:start + len(chunk)] = scores
        empty = [row for row, s in enumerate(seqs) if not len(s)]
        out[empty] = self.item_popularity_
        return out

    def recommend_from_sequence(self, sequences: list[np.ndarray] | list[list[int]],
                                n: int = 10, *, exclude_seen: bool = True,
                                candidates: np.ndarray | None = None
                                ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` next items for each current sequence (no user index needed).

        Returns (item indices int64, scores float32), both shape (len(sequences), n).
        """
        scores = self.score_sequences(sequences)
        if candidates is not None:
            mask = np.full(scores.shape[1], True)
            mask[np.asarray(candidates, dtype=np.int64)] = False
            scores[:, mask] = -np.inf
        if exclude_seen:
            for row, seq in enumerate(sequences):
                scores[row, np.asarray(seq, dtype=np.int64)] = -np.inf
        return top_n(scores, n)

    def _score_users(self, user_idx: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        return self.score_sequences(
            [self._current_sequence(int(u), user_items[k]) for k, u in enumerate(user_idx)])

    def _current_sequence(self, user: int, row: sp.csr_matrix) -> np.ndarray:
        """The stored training order, restricted to ``row``'s items, new items appended.

        A CSR row has no time order, so items absent from training go last (column order);
        call :meth:`recommend_from_sequence` when the true order is known.
        """
        base = self.sequences_[user] if 0 <= user < len(self.sequences_) else np.empty(0, int)
        current = row.indices[row.data > 0] if sp.issparse(row) else np.flatnonzero(row)
        kept = base[np.isin(base, current)]
        return np.concatenate([kept, np.setdiff1d(current, base)]).astype(np.int64)

    def item_vectors(self) -> np.ndarray:
        self.check_fitted()
        return self.net_.item_emb.weight[1:].detach().float().cpu().numpy()

    # -- persistence: the torch module travels as CPU tensors ------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if "net_" in state:
            state["net_"] = state_to_bytes(state["net_"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        payload = state.get("net_")
        self.__dict__.update(state)
        if isinstance(payload, bytes):
            net = _build_net(self.n_items_, self.n_factors, self.n_layers, self.n_heads,
                             self.max_len, self.dropout)
            self.net_ = state_from_bytes(net, payload, resolve_device(self.device)).eval()


# -- data preparation ----------------------------------------------------------------------
def _right_pad(seqs: list[np.ndarray], length: int) -> np.ndarray:
    """Rows of the first ``length`` entries of each sequence, right-padded with 0."""
    out = np.zeros((len(seqs), length), dtype=np.int64)
    for row, s in enumerate(seqs):
        out[row, :min(len(s), length)] = s[:length]
    return out


def _windows(seqs: list[np.ndarray], max_len: int, window: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training windows: inputs (W, max_len), next-``window`` targets (W, max_len, window)
    and the length of each window (W,).

    Items are shifted by one (0 is padding). Histories longer than ``max_len`` give several
    windows, the most recent first, so every transition is learned once.
    """
    inputs, targets, lengths = [], [], []
    for raw in seqs:
        s = np.asarray(raw, dtype=np.int64) + 1
        for end in range(len(s) - 1, 0, -max_len):
            start = max(0, end - max_len)
            size = end - start
            x = np.zeros(max_len, dtype=np.int64)
            y = np.zeros((max_len, window), dtype=np.int64)
            x[:size] = s[start:end]
            for j in range(window):
                future = s[start + 1 + j:end + 1 + j]
                y[:len(future), j] = future
            inputs.append(x)
            targets.append(y)
            lengths.append(size)
    if not inputs:
        return (np.zeros((0, max_len), np.int64), np.zeros((0, max_len, window), np.int64),
                np.zeros(0, np.int64))
    return np.stack(inputs), np.stack(targets), np.asarray(lengths, dtype=np.int64)


def _length_batches(lengths: np.ndarray, batch_size: int, generator: Any, torch: Any
                    ) -> list[Any]:
    """Batches of windows of similar length, in random order (random ties inside a length)."""
    noise = torch.rand(len(lengths), generator=generator).numpy()
    order = np.lexsort((noise, lengths))
    batches = [torch.from_numpy(order[i:i + batch_size])
               for i in range(0, len(order), batch_size)]
    shuffle = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffle]


def _hold_out_last(seqs: list[np.ndarray]) -> tuple[list[np.ndarray],
                                                    tuple[list[np.ndarray], np.ndarray]]:
    """Sequences without their last item, and (prefixes, last items) of users with >= 2."""
    train = [s[:-1] if len(s) >= 2 else s for s in seqs]
    users = [u for u, s in enumerate(seqs) if len(s) >= 2]
    return train, ([train[u] for u in users], np.array([seqs[u][-1] for u in users]))


def _next_item_ndcg(model: SASRec, prefixes: list[np.ndarray], targets: np.ndarray) -> float:
    """NDCG@10 of predicting each held-out next item from its prefix (full ranking)."""
    if not len(targets):
        return 0.0
    scores = model.score_sequences(prefixes)
    for row, seq in enumerate(prefixes):
        scores[row, seq] = -np.inf
    target_scores = scores[np.arange(len(targets)), targets]
    rank = (scores > target_scores[:, None]).sum(axis=1)
    return float(np.where(rank < 10, 1.0 / np.log2(rank + 2.0), 0.0).mean())


# -- the network ---------------------------------------------------------------------------
def _build_net(n_items: int, n_factors: int, n_layers: int, n_heads: int, max_len: int,
               dropout: float) -> Any:
    torch = require_torch()
    nn = torch.nn
    functional = torch.nn.functional

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(n_factors)
            self.qkv = nn.Linear(n_factors, 3 * n_factors)
            self.proj = nn.Linear(n_factors, n_factors)
            self.norm2 = nn.LayerNorm(n_factors)
            self.ff = nn.Sequential(nn.Linear(n_factors, n_factors), nn.GELU(),
                                    nn.Dropout(dropout), nn.Linear(n_factors, n_factors))
            self.drop = nn.Dropout(dropout)

        def forward(self, x: Any) -> Any:
            batch, length, _ = x.shape
            q, k, v = self.qkv(self.norm1(x)).view(
                batch, length, 3, n_heads, n_factors // n_heads).permute(2, 0, 3, 1, 4)
            # no attention dropout and no explicit mask: this keeps the fused kernel
            attended = functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.drop(self.proj(attended.transpose(1, 2).reshape(batch, length, -1)))
            return x + self.drop(self.ff(self.norm2(x)))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.item_emb = nn.Embedding(n_items + 1, n_factors, padding_idx=0)
            self.pos_emb = nn.Embedding(max_len, n_factors)
            self.blocks = nn.ModuleList(Block() for _ in range(n_layers))
            self.norm = nn.LayerNorm(n_factors)
            self.drop = nn.Dropout(dropout)
            nn.init.normal_(self.item_emb.weight, std=n_factors ** -0.5)
            with torch.no_grad():
                self.item_emb.weight[0].zero_()

        def encode(self, seq: Any) -> Any:
            """(B, L) right-padded item ids (0 = pad) -> hidden states (B, L, d).

            Causal attention means position t reads items 0..t only, never the padding after.
            """
            positions = torch.arange(seq.shape[1], device=seq.device)
            x = self.item_emb(seq) * math.sqrt(n_factors) + self.pos_emb(positions)
            x = self.drop(x)
            for block in self.blocks:
                x = block(x)
            return self.norm(x)

    return Net()
