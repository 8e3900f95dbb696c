"""Sparse similarity kernels shared by the neighbourhood and graph models.

Everything works on blocks of rows so memory stays ``block x n`` whatever the catalogue size,
and keeps only the top-K entries of each row.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

#: Largest rows per block in :func:`blocked_top_k`.
BLOCK_ROWS = 1024
#: Dense cells per block (bounds memory to ~80 MB of float32 whatever the catalogue size).
BLOCK_CELLS = 20_000_000


def top_k_sparse(dense: np.ndarray, k: int, row_offset: int = 0, *,
                 drop_diagonal: bool = False) -> sp.csr_matrix:
    """Keep the ``k`` largest positive entries of each row of ``dense`` (CSR, same shape).

    ``row_offset`` is the global index of the first row, used with ``drop_diagonal`` to zero
    each row's own column first.
    """
    dense = np.array(dense, dtype=np.float32, copy=True)
    n_rows, n_cols = dense.shape
    if drop_diagonal:
        rows = np.arange(n_rows)
        cols = rows + row_offset
        inside = cols < n_cols
        dense[rows[inside], cols[inside]] = 0.0
    k = min(k, n_cols)
    if k <= 0:
        return sp.csr_matrix(dense.shape, dtype=np.float32)
    if k < n_cols:
        cols = np.argpartition(-dense, k - 1, axis=1)[:, :k]
    else:
        cols = np.tile(np.arange(n_cols), (n_rows, 1))
    values = np.take_along_axis(dense, cols, axis=1)
    keep = values > 0
    rows = np.repeat(np.arange(n_rows), k).reshape(n_rows, k)
    out = sp.csr_matrix((values[keep], (rows[keep], cols[keep])), shape=dense.shape)
    out.sort_indices()
    return out


def blocked_top_k(left: sp.csr_matrix, right: sp.csr_matrix, k: int, *,
                  transform: Callable[[np.ndarray, slice], np.ndarray] | None = None,
                  drop_diagonal: bool = False) -> sp.csr_matrix:
    """Top-``k`` per row of ``transform(left @ right)``, computed a block of rows at a time.

    Parameters
    ----------
    left, right
        Sparse factors; the product has shape (left.shape[0], right.shape[1]).
    k
        Entries kept per row (the largest positive ones).
    transform
        Applied to each dense block with the block's row slice (e.g. normalisation, shrinkage).
    drop_diagonal
        Zero entry (i, i) first (an item is not its own neighbour).
    """
    left = left.tocsr()
    right = right.tocsc() if right.shape[1] < right.shape[0] else right.tocsr()
    step = max(1, min(BLOCK_ROWS, BLOCK_CELLS // max(right.shape[1], 1)))
    blocks = []
    for start in range(0, left.shape[0], step):
        rows = slice(start, min(start + step, left.shape[0]))
        product = left[rows] @ right
        dense = product.toarray() if sp.issparse(product) else np.asarray(product)
        if transform is not None:
            dense = transform(dense, rows)
        blocks.append(top_k_sparse(dense, k, start, drop_diagonal=drop_diagonal))
    if not blocks:
        return sp.csr_matrix((0, right.shape[1]), dtype=np.float32)
    return sp.vstack(blocks, format="csr", dtype=np.float32)


def column_norms(matrix: sp.spmatrix) -> np.ndarray:
    """Euclidean norm of each column."""
    return np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel())


def row_normalize(matrix: sp.spmatrix, norm: str = "l1") -> sp.csr_matrix:
    """Rows scaled to unit ``l1`` or ``l2`` norm (zero rows stay zero)."""
    from sklearn.preprocessing import normalize

    return normalize(sp.csr_matrix(matrix, dtype=np.float32), norm=norm, axis=1)


def binarize(matrix: sp.spmatrix) -> sp.csr_matrix:
    """A float32 CSR copy with 1 where ``matrix`` is positive; other stored entries dropped."""
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.data = (out.data > 0).astype(np.float32)
    out.eliminate_zeros()
    return out
