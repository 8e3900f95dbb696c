"""The item catalogue as the serving pipeline sees it: numpy arrays aligned with item indices.

Index space: the first ``n_model_items`` indices are the model's own item indices (so model
scores need no remapping); items the model has never seen (no interactions yet) follow. Every
per-request stage works on these arrays, never on DataFrames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from limelight.data.vocab import IdVocab

#: Content vectors wider than this are reduced (truncated SVD) so MMR and similarity stay cheap.
MAX_CONTENT_DIMS = 64
#: Rows the content SVD is fitted on.
SVD_SAMPLE = 5_000


@dataclass
class ItemCatalog:
    """Item metadata and vectors, one row per item index.

    Attributes
    ----------
    items
        Vocabulary of external item ids; index ``i`` is row ``i`` of every array.
    n_model_items
        Items ``0..n_model_items-1`` are known to the model; the rest are cold.
    titles
        Object array of titles (the id when untitled).
    category_matrix
        CSR bool, shape (n_items, n_categories): item ``i`` is in category ``j``.
    categories
        Vocabulary of category names (columns of ``category_matrix``).
    primary_category
        int64, shape (n_items,): the first listed category's index, -1 when none.
    price
        float64, NaN when unknown.
    in_stock
        bool; unknown stock counts as in stock.
    created
        int64 seconds since the epoch, -1 when unknown.
    popularity
        float32 interaction counts (0 for cold items).
    content
        float32, shape (n_items, d), rows L2-normalised (zeros for items without metadata):
        categories and tags, reduced to at most :data:`MAX_CONTENT_DIMS` dimensions.
    """

    items: IdVocab
    n_model_items: int
    titles: np.ndarray
    category_matrix: sp.csr_matrix
    categories: IdVocab
    primary_category: np.ndarray
    price: np.ndarray
    in_stock: np.ndarray
    created: np.ndarray
    popularity: np.ndarray
    content: np.ndarray
    _category_members: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def ids_of(self, indices: np.ndarray | list[int]) -> np.ndarray:
        """External ids of item indices, from an id array built once (``IdVocab.ids`` builds
        a new one per call: a full-catalogue copy per request on a 50k-item catalogue)."""
        ids = self.__dict__.get("_id_array")
        if ids is None or len(ids) != len(self.items):
            ids = self.__dict__["_id_array"] = self.items.ids
        return ids[np.asarray(indices, dtype=np.int64)]

    @property
    def is_cold(self) -> np.ndarray:
        """bool, shape (n_items,): the model has no interactions for the item."""
        cold = np.zeros(self.n_items, dtype=bool)
        cold[self.n_model_items:] = True
        return cold

    def category_mask(self, names: Sequence[str]) -> np.ndarray:
        """bool, shape (n_items,): items in any of the categories ``names`` (unknown names match
        nothing)."""
        mask = np.zeros(self.n_items, dtype=bool)
        for name in names:
            j = self.categories.get(name)
            if j >= 0:
                mask[self.members(j)] = True
        return mask

    def members(self, category_idx: int) -> np.ndarray:
        """Item indices in category ``category_idx`` (cached)."""
        found = self._category_members.get(category_idx)
        if found is None:
            col = self.category_matrix.tocsc()[:, category_idx]
            found = col.indices.astype(np.int64)
            self._category_members[category_idx] = found
        return found

    def category_names(self, item_idx: int) -> list[str]:
        """Category names of one item, in listed order of the vocabulary."""
        row = self.category_matrix.indices[
            self.category_matrix.indptr[item_idx]:self.category_matrix.indptr[item_idx + 1]]
        return [self.categories.ids[j] for j in row]


def build_catalog(model_items: IdVocab, items_frame: pd.DataFrame | None,
                  popularity: np.ndarray | None = None, *, random_state: int = 0) -> ItemCatalog:
    """Assemble an :class:`ItemCatalog` from the model's item vocabulary and the items table.

    Parameters
    ----------
    model_items
        The model's item vocabulary (kept as indices ``0..len-1``).
    items_frame
        Rows of the ``items`` entity (``item_id``, ``title``, ``categories``, ``tags``,
        ``price``, ``in_stock``, ``created_time``); items absent from ``model_items`` are
        appended as cold items. None when the store has no items table.
    popularity
        Interaction counts per model item, shape (len(model_items),).
    random_state
        Seed of the truncated SVD that reduces wide content vectors.

    Returns
    -------
    ItemCatalog
    """
    vocab = IdVocab(model_items.to_list())
    n_model = len(vocab)
    frame = items_frame if items_frame is not None else pd.DataFrame({"item_id": []})
    frame = frame.drop_duplicates("item_id", keep="last")
    for iid in frame["item_id"].astype(str):
        vocab.add(iid)
    n = len(vocab)
    rows = vocab.index(frame["item_id"].astype(str).to_numpy()) if len(frame) else np.empty(
        0, dtype=np.int64)

    titles = vocab.ids.copy()
    if "title" in frame and len(frame):
        given = frame["title"].to_numpy(dtype=object)
        ok = pd.notna(given)
        titles[rows[ok]] = given[ok]
    price = np.full(n, np.nan)
    if "price" in frame and len(frame):
        price[rows] = pd.to_numeric(frame["price"], errors="coerce").to_numpy(np.float64)
    in_stock = np.ones(n, dtype=bool)
    if "in_stock" in frame and len(frame):
        stock = frame["in_stock"].to_numpy(dtype=object)
        known = pd.notna(stock)
        in_stock[rows[known]] = stock[known].astype(bool)
    created = np.full(n, -1, dtype=np.int64)
    if "created_time" in frame and len(frame):
        ts = pd.to_datetime(frame["created_time"], utc=True, errors="coerce")
        known = ts.notna().to_numpy()
        created[rows[known]] = ts[known].astype("int64").to_numpy() // 1_000_000_000

    categories = IdVocab()
    cat_rows: list[int] = []
    cat_cols: list[int] = []
    primary = np.full(n, -1, dtype=np.int64)
    tag_lists: list[list[str]] = [[] for _ in range(n)]
    cat_lists = frame["categories"].tolist() if "categories" in frame else [None] * len(frame)
    tag_source = frame["tags"].tolist() if "tags" in frame else [None] * len(frame)
    for row, cats, tags in zip(rows.tolist(), cat_lists, tag_source, strict=True):
        for k, name in enumerate(_as_list(cats)):
            j = categories.add(name)
            cat_rows.append(row)
            cat_cols.append(j)
            if k == 0:
                primary[row] = j
        tag_lists[row] = [f"tag:{t}" for t in _as_list(tags)]
    category_matrix = sp.csr_matrix(
        (np.ones(len(cat_rows), dtype=bool), (cat_rows, cat_cols)),
        shape=(n, max(len(categories), 0)))
    category_matrix.sum_duplicates()

    pop = np.zeros(n, dtype=np.float32)
    if popularity is not None:
        pop[:n_model] = np.asarray(popularity, dtype=np.float32)[:n_model]
    content = _content_vectors(category_matrix, tag_lists, random_state)
    return ItemCatalog(items=vocab, n_model_items=n_model, titles=titles,
                       category_matrix=category_matrix, categories=categories,
                       primary_category=primary, price=price, in_stock=in_stock,
                       created=created, popularity=pop, content=content)


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    try:
        return [str(v) for v in value if v is not None and str(v)]  # type: ignore[union-attr]
    except TypeError:
        return []


def _content_vectors(category_matrix: sp.csr_matrix, tag_lists: list[list[str]],
                     random_state: int) -> np.ndarray:
    """Categories + tags as L2-normalised dense vectors (SVD-reduced when wide)."""
    n = category_matrix.shape[0]
    lengths = np.fromiter((len(t) for t in tag_lists), dtype=np.int64, count=n)
    flat = [t for tags in tag_lists for t in tags]
    t_cols, uniques = pd.factorize(pd.Series(flat, dtype=object)) if flat else (
        np.empty(0, dtype=np.int64), [])
    t_rows = np.repeat(np.arange(n), lengths)
    tags_matrix = sp.csr_matrix((np.full(len(t_rows), 0.5, dtype=np.float32), (t_rows, t_cols)),
                                shape=(n, len(uniques)))
    features = sp.hstack([category_matrix.astype(np.float32), tags_matrix], format="csr")
    if features.shape[1] == 0:
        return np.zeros((n, 1), dtype=np.float32)
    if features.shape[1] > MAX_CONTENT_DIMS and n > MAX_CONTENT_DIMS:
        from sklearn.decomposition import TruncatedSVD

        # fitted on a sample of rows: the directions of a few thousand items describe the
        # catalogue well, and the fit stays ~constant in time as the catalogue grows
        rng = np.random.default_rng(random_state)
        sample = rng.choice(n, min(n, SVD_SAMPLE), replace=False)
        svd = TruncatedSVD(n_components=MAX_CONTENT_DIMS, random_state=random_state)
        svd.fit(features[np.sort(sample)])
        dense = svd.transform(features).astype(np.float32)
    else:
        dense = np.asarray(features.todense(), dtype=np.float32)
    return normalize_rows(dense)


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms
