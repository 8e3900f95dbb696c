"""Profiles -> a numeric matrix for clustering: a fitted, saved scikit-learn pipeline.

Numeric columns are imputed with their median, heavy-tailed ones (counts, money, durations)
go through ``log1p`` of their positive part, all are standardised; categorical columns are
one-hot encoded with a missing value as its own category; an optional PCA follows.
:meth:`ProfilePreprocessor.transform_one` applies the same fitted parameters to a single
profile dict without pandas (tens of microseconds), which real-time segment assignment needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from limelight.errors import NotFittedError, SchemaError

MISSING = "missing"


def positive_log1p(x: np.ndarray) -> np.ndarray:
    """``log1p(max(x, 0))``: compresses money, counts and durations (module level: picklable)."""
    return np.log1p(np.maximum(x, 0.0))


class ProfilePreprocessor:
    """Imputation, log compression, scaling, one-hot encoding and optional PCA.

    Parameters
    ----------
    numeric
        Numeric columns used as they are (after imputation and scaling).
    log_numeric
        Numeric columns compressed with ``log1p`` before scaling.
    categorical
        Categorical columns, one-hot encoded.
    weights
        Optional multiplier per input column applied after scaling (a categorical column's
        weight applies to all its indicator columns), to balance feature groups.
    pca_components
        None (off), an int number of components or a float share of variance to keep.
    random_state
        Seed of the PCA solver.
    """

    def __init__(self, numeric: Sequence[str] = (), log_numeric: Sequence[str] = (),
                 categorical: Sequence[str] = (), weights: Mapping[str, float] | None = None,
                 pca_components: int | float | None = None, random_state: int = 0) -> None:
        self.numeric = list(numeric)
        self.log_numeric = list(log_numeric)
        self.categorical = list(categorical)
        self.weights = dict(weights or {})
        self.pca_components = pca_components
        self.random_state = random_state

    @property
    def columns(self) -> list[str]:
        """Every input column, in the order the pipeline reads them."""
        return [*self.log_numeric, *self.numeric, *self.categorical]

    def fit(self, profiles: pd.DataFrame) -> ProfilePreprocessor:
        """Fit the scikit-learn pipeline on ``profiles`` (rows = users)."""
        from sklearn.compose import ColumnTransformer
        from sklearn.decomposition import PCA
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

        if not self.columns:
            raise SchemaError("the preprocessor needs at least one feature column")
        parts = []
        if self.log_numeric:
            parts.append(("log", Pipeline([
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("log1p", FunctionTransformer(positive_log1p, feature_names_out="one-to-one")),
                ("scale", StandardScaler())]), self.log_numeric))
        if self.numeric:
            parts.append(("num", Pipeline([
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("scale", StandardScaler())]), self.numeric))
        if self.categorical:
            parts.append(("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                          self.categorical))
        steps: list[tuple[str, Any]] = [("columns", ColumnTransformer(parts, remainder="drop"))]
        if self.pca_components:
            steps.append(("pca", PCA(n_components=self.pca_components,
                                     random_state=self.random_state)))
        frame = self._frame(profiles)
        columns = ColumnTransformer(parts, remainder="drop").fit(frame)
        self.input_names_ = list(columns.get_feature_names_out())
        self._weight_vector_ = self._weights_out(columns)
        steps[0] = ("columns", columns)
        self.pipeline_ = Pipeline(steps)
        if self.pca_components:
            weighted = columns.transform(frame) * self._weight_vector_
            self.pipeline_.named_steps["pca"].fit(weighted)
        self._extract()
        return self

    def transform(self, profiles: pd.DataFrame) -> np.ndarray:
        """Matrix of shape (n_users, n_out) for ``profiles``."""
        self._check()
        x = self.pipeline_.named_steps["columns"].transform(self._frame(profiles))
        x = x * self._weight_vector_
        if "pca" in self.pipeline_.named_steps:
            x = self.pipeline_.named_steps["pca"].transform(x)
        return np.asarray(x, dtype=np.float64)

    def fit_transform(self, profiles: pd.DataFrame) -> np.ndarray:
        return self.fit(profiles).transform(profiles)

    def transform_one(self, features: Mapping[str, Any]) -> np.ndarray:
        """The same transformation for one profile given as a dict (missing keys = missing)."""
        self._check()
        get = features.get
        log_x = _vector(get, self.log_numeric)
        num_x = _vector(get, self.numeric)
        log_x = np.where(np.isnan(log_x), self._log_median, log_x)
        num_x = np.where(np.isnan(num_x), self._num_median, num_x)
        parts = [(positive_log1p(log_x) - self._log_mean) / self._log_scale,
                 (num_x - self._num_mean) / self._num_scale]
        onehot = np.zeros(self._n_onehot)
        for col, lookup in zip(self.categorical, self._cat_lookup, strict=True):
            j = lookup.get(_category(get(col)))
            if j is not None:
                onehot[j] = 1.0
        x = np.concatenate([*parts, onehot]) * self._weight_vector_
        if self._pca is not None:
            x = (x - self._pca_mean) @ self._pca_components_t
        return x

    @property
    def feature_names_out_(self) -> list[str]:
        self._check()
        if "pca" in self.pipeline_.named_steps:
            n = self.pipeline_.named_steps["pca"].n_components_
            return [f"pc{j}" for j in range(n)]
        return list(self.input_names_)

    def save(self, path: str | Path) -> Path:
        """Write the fitted preprocessor with joblib."""
        import joblib

        self._check()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)
        return path

    @staticmethod
    def load(path: str | Path) -> ProfilePreprocessor:
        import joblib

        obj = joblib.load(path)
        if not isinstance(obj, ProfilePreprocessor):
            from limelight.errors import ArtifactError

            raise ArtifactError(f"{path} does not hold a ProfilePreprocessor")
        return obj

    # -- internals --------------------------------------------------------------------------
    def _check(self) -> None:
        if not hasattr(self, "pipeline_"):
            raise NotFittedError("ProfilePreprocessor is not fitted: call fit(profiles) first")

    def _frame(self, profiles: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.columns if c not in profiles]
        if missing:
            raise SchemaError(f"profiles lack feature columns {missing}")
        out = pd.DataFrame(index=profiles.index)
        for c in [*self.log_numeric, *self.numeric]:
            out[c] = pd.to_numeric(profiles[c], errors="coerce").astype(np.float64)
        for c in self.categorical:
            out[c] = np.asarray([_category(v) for v in profiles[c].to_numpy(dtype=object)],
                                dtype=object)
        return out

    def _weights_out(self, columns: Any) -> np.ndarray:
        w = []
        for c in [*self.log_numeric, *self.numeric]:
            w.append(float(self.weights.get(c, 1.0)))
        if self.categorical:
            enc = columns.named_transformers_["cat"]
            for c, cats in zip(self.categorical, enc.categories_, strict=True):
                w.extend([float(self.weights.get(c, 1.0))] * len(cats))
        return np.asarray(w, dtype=np.float64)

    def _extract(self) -> None:
        """Copy the fitted parameters into plain arrays for :meth:`transform_one`."""
        cols = self.pipeline_.named_steps["columns"]
        empty = np.empty(0)

        def params(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            if name not in cols.named_transformers_:
                return empty, empty, empty
            pipe = cols.named_transformers_[name]
            scaler = pipe.named_steps["scale"]
            return pipe.named_steps["impute"].statistics_, scaler.mean_, scaler.scale_

        self._log_median, self._log_mean, self._log_scale = params("log")
        self._num_median, self._num_mean, self._num_scale = params("num")
        self._cat_lookup: list[dict[str, int]] = []
        offset = 0
        if self.categorical:
            enc = cols.named_transformers_["cat"]
            for cats in enc.categories_:
                self._cat_lookup.append({str(c): offset + j for j, c in enumerate(cats)})
                offset += len(cats)
        self._n_onehot = offset
        pca = self.pipeline_.named_steps.get("pca")
        self._pca = pca
        if pca is not None:
            self._pca_mean = pca.mean_
            self._pca_components_t = pca.components_.T


def _vector(get: Any, columns: list[str]) -> np.ndarray:
    """Values of ``columns`` as floats (NaN for missing); a fast path for plain numbers."""
    try:
        return np.fromiter(map(get, columns), dtype=np.float64, count=len(columns))
    except (TypeError, ValueError):
        return np.array([_float(get(c)) for c in columns], dtype=np.float64)


def _float(v: Any) -> float:
    if v is None or v is pd.NA:
        return np.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return np.nan


def _category(v: Any) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return MISSING
    return str(v)
