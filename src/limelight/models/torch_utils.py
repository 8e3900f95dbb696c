"""Shared mechanics of the torch models: lazy import, device choice, seeding, persistence.

torch is the optional ``deep`` extra, so it is imported only when a deep model is fitted or
loaded; the rest of Limelight works without it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from limelight.errors import LimelightError


class MissingDependencyError(LimelightError, ImportError):
    """An optional dependency needed for this feature is not installed."""


def require_torch() -> Any:
    """Import torch or raise a named error that says how to install it."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError(
            "this model needs torch: pip install 'limelight[deep]'") from exc
    return torch


def resolve_device(device: str = "auto") -> Any:
    """A ``torch.device``: ``"auto"`` picks CUDA when available, else the CPU."""
    torch = require_torch()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown torch device {device!r}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for but CUDA is not available")
    return resolved


def seed_everything(random_state: int | None, device: Any) -> Any:
    """Seed torch's generators; returns a ``torch.Generator`` on the CPU for sampling."""
    torch = require_torch()
    seed = 0 if random_state is None else int(random_state)
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


@contextmanager
def deterministic(device: Any) -> Iterator[None]:
    """Run a block with deterministic torch algorithms on the CPU, restoring the setting after.

    Only on the CPU: on CUDA several kernels (scatter-add in embedding bags) have no
    deterministic variant; GPU runs are seeded but not bit-reproducible.
    """
    torch = require_torch()
    if device.type != "cpu":
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


def state_to_bytes(module: Any) -> bytes:
    """Serialise a module's ``state_dict`` (moved to the CPU) to bytes."""
    torch = require_torch()
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, buffer)
    return buffer.getvalue()


def state_from_bytes(module: Any, payload: bytes, device: Any) -> Any:
    """Load bytes written by :func:`state_to_bytes` into ``module`` (mapped to the CPU first)."""
    torch = require_torch()
    state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    module.load_state_dict(state)
    return module.to(device)


def progress(iterable: Any, *, enabled: bool, desc: str, total: int | None = None) -> Any:
    """Wrap ``iterable`` in a tqdm bar when ``enabled``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


def train_epochs(net: Any, optimizer: Any, batch_losses: Callable[[], Iterable[Any]], *,
                 n_epochs: int, validate: Callable[[], float] | None, patience: int,
                 verbose: bool, desc: str) -> list[dict[str, float]]:
    """The training loop the torch models share: epochs of optimiser steps, early stopping.

    Parameters
    ----------
    batch_losses
        Called once per epoch; yields one batch's loss tensor at a time (computed lazily, so
        each batch's random draws happen after the previous step, as in a plain loop).
    validate
        Scores the model after an epoch (higher is better; in eval mode). The best epoch's
        weights are restored at the end, and training stops after ``patience`` epochs without
        a better score. None trains all ``n_epochs``.

    Returns
    -------
    list of dict
        Per epoch: ``epoch``, mean ``loss``, ``seconds`` and, with ``validate``,
        ``valid_ndcg10``.
    """
    history: list[dict[str, float]] = []
    best, best_state, stale = -1.0, None, 0
    for epoch in progress(range(n_epochs), enabled=verbose, desc=desc):
        net.train()
        started, total, batches = time.perf_counter(), 0.0, 0
        for loss in batch_losses():
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            batches += 1
        record = {"epoch": epoch + 1, "loss": total / max(batches, 1),
                  "seconds": time.perf_counter() - started}
        if validate is not None:
            net.eval()
            record["valid_ndcg10"] = validate()
            if record["valid_ndcg10"] > best:
                best, stale = record["valid_ndcg10"], 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
        history.append(record)
        if validate is not None and stale >= patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    return history


def padded_rows(matrix: Any, offset: int = 0, leading: Any = None) -> tuple[Any, Any]:
    """Rows of a CSR matrix as padded (indices, values) arrays, shape (rows, max_nnz).

    ``offset`` is added to every column index; ``leading`` (shape (rows,)) puts one extra
    entry of value 1 first in each row (an id feature). Padding has index 0 and value 0, so it
    adds nothing to a weighted sum.
    """
    import numpy as np
    import scipy.sparse as sp

    csr = sp.csr_matrix(matrix, dtype=np.float32)
    counts = np.diff(csr.indptr)
    extra = 0 if leading is None else 1
    width = max(int(counts.max(initial=0)) + extra, 1)
    idx = np.zeros((csr.shape[0], width), dtype=np.int64)
    val = np.zeros((csr.shape[0], width), dtype=np.float32)
    if leading is not None:
        idx[:, 0] = np.asarray(leading, dtype=np.int64)
        val[:, 0] = 1.0
    rows = np.repeat(np.arange(csr.shape[0]), counts)
    cols = np.arange(len(csr.indices)) - np.repeat(csr.indptr[:-1], counts) + extra
    idx[rows, cols] = csr.indices + offset
    val[rows, cols] = csr.data
    return idx, val
