"""User and item side-feature matrices (sparse, with column names) for a Dataset.

User features: binned age, gender, country and region, one-hot, plus the low-cardinality
string attributes of the ``extra`` JSON column (e.g. ``occupation=writer``). Item features:
categories and tags (one-hot, multi-valued; lists, JSON-encoded lists or ``|``-separated
strings) and a TF-IDF of the title and description text. Rows follow a vocabulary's index
order; ids without a row get all-zero rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from itertools import pairwise

import numpy as np
import pandas as pd
import scipy.sparse as sp

from limelight.data.vocab import IdVocab

#: Upper bounds (exclusive) of the age bins; the last bin is open-ended.
AGE_BINS: tuple[int, ...] = (18, 25, 35, 45, 50, 56)
USER_CATEGORICAL: tuple[str, ...] = ("gender", "country", "region")
#: An ``extra`` attribute becomes one-hot features only below this many distinct values.
MAX_EXTRA_CATEGORIES = 50


def age_bin_labels() -> list[str]:
    """Names of the age bins, e.g. ``"age=18-24"``."""
    edges = (0, *AGE_BINS)
    labels = [f"age={lo}-{hi - 1}" for lo, hi in pairwise(edges)]
    return [*labels, f"age={AGE_BINS[-1]}+"]


def user_feature_matrix(users: pd.DataFrame, vocab: IdVocab
                        ) -> tuple[sp.csr_matrix, list[str]]:
    """One-hot user features aligned with ``vocab``.

    Parameters
    ----------
    users
        Rows of the ``users`` entity (``user_id`` plus any of ``age``, ``gender``, ``country``,
        ``region``).
    vocab
        The dataset's user vocabulary.

    Returns
    -------
    (matrix, names)
        CSR float32 of shape (len(vocab), n_features) and the column names.
    """
    rows_idx = vocab.index(users["user_id"].astype(str).to_numpy(), missing="ignore")
    known = rows_idx >= 0
    frame = users[known]
    rows_idx = rows_idx[known]
    blocks: list[sp.csr_matrix] = []
    names: list[str] = []
    if "age" in frame:
        ages = pd.to_numeric(frame["age"], errors="coerce").to_numpy(np.float64)
        has_age = ~np.isnan(ages)
        bins = np.searchsorted(np.asarray(AGE_BINS), ages[has_age], side="right")
        labels = age_bin_labels()
        blocks.append(_one_hot(rows_idx[has_age], bins, len(vocab), len(labels)))
        names += labels
    for column in USER_CATEGORICAL:
        if column not in frame:
            continue
        values = frame[column]
        present = values.notna().to_numpy() & (values.astype(str).str.len() > 0).to_numpy()
        codes, uniques = pd.factorize(values[present].astype(str), sort=True)
        blocks.append(_one_hot(rows_idx[present], codes, len(vocab), len(uniques)))
        names += [f"{column}={u}" for u in uniques]
    if "extra" in frame:
        block, labels = _extra_categoricals(rows_idx, frame["extra"], len(vocab))
        blocks.append(block)
        names += labels
    return _stack(blocks, len(vocab)), names


def _extra_categoricals(rows: np.ndarray, extra: pd.Series, n_rows: int
                        ) -> tuple[sp.csr_matrix, list[str]]:
    """One-hot of the string attributes in a JSON ``extra`` column with few distinct values."""
    parsed = []
    for text in extra.to_numpy():
        try:
            value = json.loads(text) if isinstance(text, str) and text else {}
        except ValueError:
            value = {}
        parsed.append(value if isinstance(value, dict) else {})
    table = pd.DataFrame(parsed, index=range(len(parsed)))
    blocks, names = [], []
    for key in sorted(table.columns, key=str):
        values = table[key]
        present = values.map(lambda v: isinstance(v, str) and bool(v)).to_numpy(dtype=bool)
        if not present.any() or values[present].nunique() > MAX_EXTRA_CATEGORIES:
            continue
        codes, uniques = pd.factorize(values[present].astype(str), sort=True)
        blocks.append(_one_hot(rows[present], codes, n_rows, len(uniques)))
        names += [f"{key}={u}" for u in uniques]
    return _stack(blocks, n_rows), names


def item_feature_matrix(items: pd.DataFrame, vocab: IdVocab, *, text_max_features: int = 5000
                        ) -> tuple[sp.csr_matrix, list[str]]:
    """Item features aligned with ``vocab``: categories, tags and text TF-IDF.

    Parameters
    ----------
    items
        Rows of the ``items`` entity (``item_id`` plus any of ``categories``, ``tags``
        (lists of strings), ``title``, ``description``).
    vocab
        The dataset's item vocabulary.
    text_max_features
        Largest text vocabulary kept (most frequent terms); 0 turns the text block off.

    Returns
    -------
    (matrix, names)
        CSR float32 of shape (len(vocab), n_features); names ``category=...``, ``tag=...``,
        ``text=...``.
    """
    rows_idx = vocab.index(items["item_id"].astype(str).to_numpy(), missing="ignore")
    known = rows_idx >= 0
    frame = items[known]
    rows_idx = rows_idx[known]
    blocks: list[sp.csr_matrix] = []
    names: list[str] = []
    for column, prefix in (("categories", "category"), ("tags", "tag")):
        if column in frame:
            block, labels = _multi_hot(rows_idx, frame[column], len(vocab))
            blocks.append(block)
            names += [f"{prefix}={label}" for label in labels]
    text_columns = [c for c in ("title", "description") if c in frame]
    if text_columns and text_max_features > 0:
        text = frame[text_columns].fillna("").astype(str).agg(" ".join, axis=1)
        block, terms = _tfidf(rows_idx, text.to_numpy(), len(vocab), text_max_features)
        blocks.append(block)
        names += [f"text={t}" for t in terms]
    return _stack(blocks, len(vocab)), names


def _one_hot(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> sp.csr_matrix:
    data = np.ones(len(rows), dtype=np.float32)
    matrix = sp.csr_matrix((data, (rows, cols)), shape=(n_rows, n_cols))
    matrix.data[:] = 1.0  # a duplicated id row must not count twice
    return matrix


def _as_list(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return _as_list(json.loads(text))
            except ValueError:
                pass
        return [v.strip() for v in text.split("|") if v.strip()]
    if isinstance(value, Iterable):
        return [str(v) for v in value if v is not None and str(v)]
    return [str(value)]


def _multi_hot(rows: np.ndarray, values: pd.Series, n_rows: int
               ) -> tuple[sp.csr_matrix, list[str]]:
    lists = [_as_list(v) for v in values.to_numpy()]
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    flat = [v for x in lists for v in x]
    codes, uniques = pd.factorize(pd.Series(flat, dtype="object"), sort=True)
    return _one_hot(np.repeat(rows, lengths), codes, n_rows, len(uniques)), list(uniques)


def _tfidf(rows: np.ndarray, texts: np.ndarray, n_rows: int, max_features: int
           ) -> tuple[sp.csr_matrix, list[str]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not any(t.strip() for t in texts):
        return sp.csr_matrix((n_rows, 0), dtype=np.float32), []
    vectorizer = TfidfVectorizer(max_features=max_features, stop_words="english",
                                 token_pattern=r"(?u)\b[^\W\d_]{2,}\b", dtype=np.float32)
    try:
        tfidf = vectorizer.fit_transform(texts).tocoo()
    except ValueError:  # only stop words: no vocabulary
        return sp.csr_matrix((n_rows, 0), dtype=np.float32), []
    matrix = sp.csr_matrix((tfidf.data, (rows[tfidf.row], tfidf.col)),
                           shape=(n_rows, tfidf.shape[1]), dtype=np.float32)
    return matrix, list(vectorizer.get_feature_names_out())


def _stack(blocks: list[sp.csr_matrix], n_rows: int) -> sp.csr_matrix:
    if not blocks:
        return sp.csr_matrix((n_rows, 0), dtype=np.float32)
    return sp.hstack(blocks, format="csr", dtype=np.float32)
