"""The hidden response model: how likely a user is to click, add to cart and buy an item.

Three logistic steps, each conditional on the one before::

    click | exposure = sigmoid(a_click[s] + b_u + 0.9 aff(u, i) + 0.5 q_i + 0.3 d_s disc)
    cart  | click    = sigmoid(a_cart[s] + 0.4 aff(u, i) - p_s z_price_i + 0.5 d_s disc)
    buy   | cart     = sigmoid(a_buy[s] - 0.5 p_s z_price_i + d_s disc)

where ``s`` is the user's hidden segment, ``b_u`` a per-user propensity, ``aff(u, i)`` the dot
product of the user's preference vector and the item's factor vector (centred), ``q_i`` the
item's quality, ``z_price_i`` its standardised log price, ``p_s`` and ``d_s`` the segment's
price and discount sensitivities (``d_s >= 0``, so every probability rises with the discount).
``p_purchase`` is the unconditional chance that one exposure ends in a purchase: the product
of the three steps. The same model drives the generated events, so a campaign simulated
against it knows its true uplift.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from limelight.errors import UnknownIdError

#: Weights shared by all segments (stored with the model).
DEFAULT_WEIGHTS: dict[str, float] = {
    "affinity": 0.9,
    "affinity_cart": 0.4,
    "affinity_centre": 2.0,
    "quality": 0.5,
    "discount_click": 0.3,
    "discount_cart": 0.5,
    "discount_buy": 1.0,
    "price_buy": 0.5,
}

_SEGMENT_FIELDS = (
    "click_logit", "cart_logit", "buy_logit", "price_sensitivity", "discount_sensitivity",
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class ResponseModel:
    """Click / cart / purchase probabilities of the sample world, vectorised.

    Parameters
    ----------
    user_ids, item_ids
        External ids, in the row order of ``preferences`` / ``item_factors``.
    preferences
        float array, shape (n_users, n_factors): hidden user preference vectors.
    item_factors
        float array, shape (n_items, n_factors): hidden item factor vectors.
    user_segment
        int array, shape (n_users,): hidden segment index of each user.
    user_bias
        float array, shape (n_users,): per-user click propensity.
    item_quality, item_z_price
        float arrays, shape (n_items,).
    segment_params
        One dict per segment with the keys ``click_logit``, ``cart_logit``, ``buy_logit``,
        ``price_sensitivity``, ``discount_sensitivity``.
    weights
        Shared weights (default :data:`DEFAULT_WEIGHTS`).

    Example
    -------
    >>> from limelight.sim import generate_world
    >>> rm = generate_world("tiny", seed=0).truth.response
    >>> p0 = rm.p_purchase(["u000001"], ["i000001"])
    >>> p1 = rm.p_purchase(["u000001"], ["i000001"], discount=0.3)
    >>> bool(p1[0] > p0[0])
    True
    """

    def __init__(
        self,
        user_ids: Sequence[str],
        item_ids: Sequence[str],
        preferences: np.ndarray,
        item_factors: np.ndarray,
        user_segment: np.ndarray,
        user_bias: np.ndarray,
        item_quality: np.ndarray,
        item_z_price: np.ndarray,
        segment_params: list[dict[str, float]],
        weights: dict[str, float] | None = None,
    ) -> None:
        self.user_index = pd.Index(np.asarray(user_ids, dtype=object))
        self.item_index = pd.Index(np.asarray(item_ids, dtype=object))
        self.preferences = np.asarray(preferences, dtype=np.float64)
        self.item_factors = np.asarray(item_factors, dtype=np.float64)
        self.user_segment = np.asarray(user_segment, dtype=np.int64)
        self.user_bias = np.asarray(user_bias, dtype=np.float64)
        self.item_quality = np.asarray(item_quality, dtype=np.float64)
        self.item_z_price = np.asarray(item_z_price, dtype=np.float64)
        self.segment_params = [dict(p) for p in segment_params]
        self.weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        self._seg = {f: np.array([p[f] for p in self.segment_params]) for f in _SEGMENT_FIELDS}

    # -- id mapping -------------------------------------------------------------------------
    def user_idx(self, user_ids: Sequence[str] | str) -> np.ndarray:
        """Row indices of external user ids; raises UnknownIdError on unknown ids."""
        return self._lookup(self.user_index, user_ids, "user")

    def item_idx(self, item_ids: Sequence[str] | str) -> np.ndarray:
        """Row indices of external item ids; raises UnknownIdError on unknown ids."""
        return self._lookup(self.item_index, item_ids, "item")

    @staticmethod
    def _lookup(index: pd.Index, ids: Sequence[str] | str, kind: str) -> np.ndarray:
        ids_arr = np.atleast_1d(np.asarray(ids, dtype=object))
        pos = index.get_indexer(ids_arr)
        if (pos < 0).any():
            raise UnknownIdError(kind, ids_arr[pos < 0][:5].tolist())
        return pos

    # -- probabilities on indices (the generator's fast path) -------------------------------
    def affinity_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Centred affinity of user rows ``u`` and item rows ``i`` (broadcast pairwise)."""
        aff = np.einsum("ij,ij->i", self.preferences[u], self.item_factors[i])
        return aff - self.weights["affinity_centre"]

    def step_probabilities_idx(
        self, u: np.ndarray, i: np.ndarray, discount: np.ndarray | float = 0.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P(click), P(cart | click), P(buy | cart)) for index pairs, each shape (n,)."""
        u = np.asarray(u)
        i = np.asarray(i)
        disc = np.broadcast_to(np.asarray(discount, dtype=np.float64), u.shape)
        w = self.weights
        seg = self.user_segment[u]
        aff = self.affinity_idx(u, i)
        z = self.item_z_price[i]
        dsens = self._seg["discount_sensitivity"][seg]
        psens = self._seg["price_sensitivity"][seg]
        click = (self._seg["click_logit"][seg] + self.user_bias[u] + w["affinity"] * aff
                 + w["quality"] * self.item_quality[i] + w["discount_click"] * dsens * disc)
        cart = (self._seg["cart_logit"][seg] + w["affinity_cart"] * aff - psens * z
                + w["discount_cart"] * dsens * disc)
        buy = (self._seg["buy_logit"][seg] - w["price_buy"] * psens * z
               + w["discount_buy"] * dsens * disc)
        return _sigmoid(click), _sigmoid(cart), _sigmoid(buy)

    # -- public API on external ids ---------------------------------------------------------
    def p_click(self, user_ids: Sequence[str] | str, item_ids: Sequence[str] | str,
                discount: float | np.ndarray = 0.0) -> np.ndarray:
        """Probability that showing ``item_ids[k]`` to ``user_ids[k]`` leads to a click.

        Parameters
        ----------
        user_ids, item_ids
            External ids of equal length (or one of them a single id, broadcast).
        discount
            Fraction off the price in [0, 1], scalar or one per pair.

        Returns
        -------
        numpy.ndarray
            float64, shape (n,).
        """
        u, i, d = self._pairs(user_ids, item_ids, discount)
        return self.step_probabilities_idx(u, i, d)[0]

    def p_cart(self, user_ids: Sequence[str] | str, item_ids: Sequence[str] | str,
               discount: float | np.ndarray = 0.0) -> np.ndarray:
        """Probability that one exposure ends with the item in the cart, shape (n,)."""
        u, i, d = self._pairs(user_ids, item_ids, discount)
        click, cart, _ = self.step_probabilities_idx(u, i, d)
        return click * cart

    def p_purchase(self, user_ids: Sequence[str] | str, item_ids: Sequence[str] | str,
                   discount: float | np.ndarray = 0.0) -> np.ndarray:
        """Probability that one exposure (e.g. a recommendation) ends in a purchase.

        The product P(click) * P(cart | click) * P(buy | cart); shape (n,), float64.
        """
        u, i, d = self._pairs(user_ids, item_ids, discount)
        click, cart, buy = self.step_probabilities_idx(u, i, d)
        return click * cart * buy

    def expected_revenue(self, user_ids: Sequence[str] | str, item_ids: Sequence[str] | str,
                         prices: np.ndarray, discount: float | np.ndarray = 0.0) -> np.ndarray:
        """Expected revenue of one exposure: P(purchase) * price * (1 - discount)."""
        p = self.p_purchase(user_ids, item_ids, discount)
        return p * np.asarray(prices, dtype=np.float64) * (1.0 - np.asarray(discount))

    def sample_response(self, user_ids: Sequence[str] | str, item_ids: Sequence[str] | str,
                        discount: float | np.ndarray = 0.0,
                        rng: np.random.Generator | int | None = None) -> pd.DataFrame:
        """Draw one outcome per exposure from the model.

        Returns
        -------
        pandas.DataFrame
            Columns ``user_id``, ``item_id``, ``discount``, ``clicked``, ``carted``,
            ``purchased`` (bool; each implies the one before), one row per pair.
        """
        rng = np.random.default_rng(rng)
        u, i, d = self._pairs(user_ids, item_ids, discount)
        click, cart, buy = self.step_probabilities_idx(u, i, d)
        clicked = rng.random(len(u)) < click
        carted = clicked & (rng.random(len(u)) < cart)
        purchased = carted & (rng.random(len(u)) < buy)
        return pd.DataFrame({
            "user_id": self.user_index[u], "item_id": self.item_index[i], "discount": d,
            "clicked": clicked, "carted": carted, "purchased": purchased,
        })

    def best_items(self, user_ids: Sequence[str] | str, n: int = 10,
                   discount: float = 0.0) -> np.ndarray:
        """The ``n`` items with the highest true P(purchase) per user (oracle), shape (m, n)."""
        u = self.user_idx(user_ids)
        out = np.empty((len(u), n), dtype=object)
        all_items = np.arange(len(self.item_index))
        for row, uu in enumerate(u):
            p = np.prod(self.step_probabilities_idx(
                np.full(len(all_items), uu), all_items, discount), axis=0)
            top = np.argpartition(-p, min(n, len(p) - 1))[:n]
            out[row] = self.item_index[top[np.argsort(-p[top])]]
        return out

    def _pairs(self, user_ids, item_ids, discount):
        u = self.user_idx(user_ids)
        i = self.item_idx(item_ids)
        if len(u) != len(i):
            if len(u) == 1:
                u = np.repeat(u, len(i))
            elif len(i) == 1:
                i = np.repeat(i, len(u))
            else:
                raise ValueError(f"{len(u)} user ids but {len(i)} item ids: lengths must match")
        d = np.broadcast_to(np.asarray(discount, dtype=np.float64), u.shape).copy()
        if ((d < 0) | (d > 1)).any():
            raise ValueError("discount must lie in [0, 1]")
        return u, i, d

    # -- persistence ------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write ``response.json`` (parameters) and ``response_arrays.npz`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "response.json").write_text(json.dumps(
            {"segment_params": self.segment_params, "weights": self.weights}, indent=2))
        np.savez_compressed(
            directory / "response_arrays.npz",
            user_ids=np.asarray(self.user_index, dtype=str),
            item_ids=np.asarray(self.item_index, dtype=str),
            preferences=self.preferences, item_factors=self.item_factors,
            user_segment=self.user_segment, user_bias=self.user_bias,
            item_quality=self.item_quality, item_z_price=self.item_z_price,
        )

    @classmethod
    def load(cls, directory: str | Path) -> ResponseModel:
        """Read a model written by :meth:`save`."""
        directory = Path(directory)
        params = json.loads((directory / "response.json").read_text())
        with np.load(directory / "response_arrays.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return cls(
            arrays["user_ids"].astype(object), arrays["item_ids"].astype(object),
            arrays["preferences"], arrays["item_factors"], arrays["user_segment"],
            arrays["user_bias"], arrays["item_quality"], arrays["item_z_price"],
            params["segment_params"], params["weights"],
        )
