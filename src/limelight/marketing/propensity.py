"""Purchase propensity: the probability that a user buys in the next ``horizon_days``.

Features are computed in DuckDB from events *before* a cutoff only (recency, counts per event
type over 7/30/90 days, spend, distinct items, active days, tenure), so the label window never
leaks into them; user attributes (age, consent) are not used, being either weak or sensitive.

Training and validation are split in time, as the model will be used: the model learns on the
cutoff ``T_train = end - 2·horizon`` (label: a purchase in ``(T_train, T_train + horizon]``)
and its AUC is measured on the later cutoff ``T_valid = end - horizon``; the final model is
refitted on ``T_valid`` and scores everyone at ``end``. Gradient boosting
(``HistGradientBoostingClassifier``) or logistic regression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from limelight.errors import LimelightError, NotFittedError

EVENT_KINDS = ("view", "click", "add_to_cart", "purchase", "rating", "email_click")
WINDOWS = (7, 30, 90)


class PropensityError(LimelightError):
    """Not enough history or outcomes to train a propensity model."""


def propensity_features(store: Any, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Per-user features from events strictly before ``cutoff`` (index user_id)."""
    cutoff = pd.Timestamp(cutoff)
    cutoff = cutoff.tz_localize("UTC") if cutoff.tzinfo is None else cutoff.tz_convert("UTC")
    windows = ", ".join(
        f"count(*) FILTER (WHERE type = '{k}' AND timestamp >= ?::TIMESTAMPTZ - INTERVAL "
        f"{w} DAY) AS n_{k}_{w}d"
        for k in EVENT_KINDS for w in WINDOWS
    )
    params: list[object] = [cutoff] * (len(EVENT_KINDS) * len(WINDOWS))
    query = f"""
        SELECT user_id,
               date_diff('second', max(timestamp), ?::TIMESTAMPTZ) / 86400.0 AS days_since_last,
               coalesce(date_diff('second', max(timestamp) FILTER (WHERE type = 'purchase'),
                         ?::TIMESTAMPTZ) / 86400.0, 9999) AS days_since_purchase,
               date_diff('second', min(timestamp), ?::TIMESTAMPTZ) / 86400.0 AS tenure_days,
               count(*) AS n_events,
               count(DISTINCT item_id) AS n_items,
               count(DISTINCT CAST(timestamp AS DATE)) AS active_days,
               coalesce(sum(coalesce(value, 0) * coalesce(quantity, 1))
                        FILTER (WHERE type = 'purchase'), 0) AS spend,
               {windows}
        FROM events WHERE timestamp < ?::TIMESTAMPTZ GROUP BY user_id
    """
    frame = store.sql(query, [cutoff, cutoff, cutoff, *params, cutoff])
    return frame.set_index("user_id").astype(float)


def purchase_labels(store: Any, start: pd.Timestamp, end: pd.Timestamp) -> set[str]:
    """Users with a purchase in ``(start, end]``."""
    frame = store.sql("SELECT DISTINCT user_id FROM events WHERE type = 'purchase' "
                      "AND timestamp > ?::TIMESTAMPTZ AND timestamp <= ?::TIMESTAMPTZ",
                      [pd.Timestamp(start), pd.Timestamp(end)])
    return set(frame["user_id"].astype(str))


@dataclass
class PropensityModel:
    """Probability of a purchase within ``horizon_days``.

    Parameters
    ----------
    horizon_days
        The prediction window N.
    method
        ``"gbm"`` (histogram gradient boosting) or ``"logistic"``.

    Examples
    --------
    >>> model = PropensityModel(horizon_days=14).fit(store)  # doctest: +SKIP
    >>> model.validation_auc_  # doctest: +SKIP
    0.74
    >>> model.predict(store).head()  # doctest: +SKIP
    """

    horizon_days: int = 30
    method: str = "gbm"
    random_state: int = 0
    end: pd.Timestamp | None = None
    validation_auc_: float | None = field(default=None, init=False)
    report_: dict[str, Any] = field(default_factory=dict, init=False)
    _model: Any = field(default=None, init=False, repr=False)
    _columns: list[str] = field(default_factory=list, init=False, repr=False)

    def _estimator(self) -> Any:
        if self.method == "gbm":
            from sklearn.ensemble import HistGradientBoostingClassifier

            return HistGradientBoostingClassifier(max_iter=60, learning_rate=0.1, max_leaf_nodes=15,
                                                  random_state=self.random_state)
        if self.method == "logistic":
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import FunctionTransformer, StandardScaler

            return make_pipeline(FunctionTransformer(np.log1p), StandardScaler(),
                                 LogisticRegression(max_iter=500))
        raise PropensityError(f"method must be 'gbm' or 'logistic', got {self.method!r}")

    def _dataset(self, store: Any, cutoff: pd.Timestamp) -> tuple[pd.DataFrame, np.ndarray]:
        x = propensity_features(store, cutoff)
        horizon = timedelta(days=self.horizon_days)
        buyers = purchase_labels(store, cutoff, cutoff + horizon)
        y = np.fromiter((u in buyers for u in x.index.astype(str)), bool, len(x))
        return x, y

    def fit(self, store: Any) -> PropensityModel:
        """Train at ``end - 2·horizon``, validate at ``end - horizon``, refit on the latter."""
        from sklearn.metrics import roc_auc_score

        end = self.end
        if end is None:
            end = store.sql("SELECT max(timestamp) AS t FROM events")["t"].iloc[0]
            if pd.isna(end):
                raise PropensityError("the store has no events to learn from")
        end = pd.Timestamp(end)
        horizon = timedelta(days=self.horizon_days)
        t_train, t_valid = end - 2 * horizon, end - horizon
        x_tr, y_tr = self._dataset(store, t_train)
        x_va, y_va = self._dataset(store, t_valid)
        for name, y in (("training", y_tr), ("validation", y_va)):
            if len(y) < 20 or y.sum() < 3 or (~y).sum() < 3:
                raise PropensityError(
                    f"too little {name} data ({len(y)} users, {int(y.sum())} buyers) for a "
                    f"{self.horizon_days}-day horizon; shorten the horizon or add history")
        self._columns = list(x_tr.columns)
        # Per-user tables are small: threads cost more in start-up than they save.
        with threadpool_limits(1):
            model = self._estimator().fit(x_tr.to_numpy(), y_tr)
            self.validation_auc_ = float(roc_auc_score(
                y_va, model.predict_proba(x_va[self._columns].to_numpy())[:, 1]))
            self._model = self._estimator().fit(x_va[self._columns].to_numpy(), y_va)
        self.end = end
        self.report_ = {
            "method": self.method, "horizon_days": self.horizon_days,
            "train_cutoff": str(t_train), "validation_cutoff": str(t_valid),
            "train_users": len(y_tr), "train_positive_rate": float(y_tr.mean()),
            "validation_users": len(y_va), "validation_positive_rate": float(y_va.mean()),
            "validation_auc": self.validation_auc_,
        }
        return self

    def predict(self, store: Any, at: pd.Timestamp | None = None) -> pd.Series:
        """Purchase probability per user (index user_id), features as of ``at`` (default end)."""
        if self._model is None:
            raise NotFittedError("call PropensityModel.fit(store) first")
        x = propensity_features(store, pd.Timestamp(at) if at is not None else
                                self.end + timedelta(microseconds=1))
        p = self._model.predict_proba(x[self._columns].to_numpy())[:, 1]
        return pd.Series(p, index=x.index.astype(str), name="propensity").sort_values(
            ascending=False)

    def audience(self, store: Any, *, top: int | None = None, threshold: float | None = None,
                 name: str = "propensity"):
        """An :class:`~limelight.marketing.audiences.Audience` of the likeliest buyers."""
        from limelight.marketing.audiences import Audience

        scores = self.predict(store)
        if threshold is not None:
            scores = scores[scores >= threshold]
        if top is not None:
            scores = scores.head(top)
        return Audience.from_users(scores.index, name=name,
                                   source={"kind": "propensity", **self.report_})
