"""Offers and unique coupon codes with redemption limits and expiry.

An :class:`Offer` says what the customer gets (percent or amount off, free shipping, or content
only, i.e. no incentive). A :class:`CouponBook` issues one unique, unguessable code per user
and offer (re-issuing returns the same code, so a retried campaign never mints a second one)
and redeems codes atomically: the check of the limit and the increment are one ``UPDATE ...
WHERE redemptions < max_redemptions``, so two concurrent checkouts cannot both take the last
redemption.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from limelight.errors import LimelightError
from limelight.marketing.tables import ensure_tables

OFFER_KINDS = ("percent", "amount", "free_shipping", "content")
# No 0/O or 1/I/L: codes get read aloud and typed from phones.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


class CouponError(LimelightError):
    """A coupon cannot be issued or redeemed; ``reason`` says why."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class Offer:
    """What a campaign gives.

    Parameters
    ----------
    offer_id
        Stable name, e.g. ``"spring-20"``.
    kind
        ``percent`` (value = percent off), ``amount`` (value = currency off), ``free_shipping``
        or ``content`` (no incentive).
    max_redemptions
        Uses allowed per code.
    valid_days
        Codes expire this many days after issue (None = never, unless ``expires_at``).
    min_order
        Smallest order amount the code applies to.

    Examples
    --------
    >>> Offer("spring-20", "percent", 20).discount_for(50.0)
    10.0
    """

    offer_id: str
    kind: str = "content"
    value: float = 0.0
    max_redemptions: int = 1
    valid_days: float | None = 14
    expires_at: datetime | None = None
    min_order: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in OFFER_KINDS:
            raise CouponError("bad_offer", f"offer kind must be one of {OFFER_KINDS}, "
                              f"got {self.kind!r}")
        if self.kind == "percent" and not 0 < self.value <= 100:
            raise CouponError("bad_offer", "a percent offer needs 0 < value <= 100")
        if self.kind == "amount" and self.value <= 0:
            raise CouponError("bad_offer", "an amount offer needs a positive value")
        if self.max_redemptions < 1:
            raise CouponError("bad_offer", "max_redemptions must be at least 1")

    @property
    def has_code(self) -> bool:
        return self.kind != "content"

    @property
    def discount_fraction(self) -> float:
        """Fraction off a typical price (percent offers only; used by the simulation)."""
        return self.value / 100.0 if self.kind == "percent" else 0.0

    def discount_for(self, amount: float) -> float:
        """Money off an order of ``amount`` (0 below ``min_order``)."""
        if amount < self.min_order:
            return 0.0
        if self.kind == "percent":
            return round(amount * self.value / 100.0, 2)
        if self.kind == "amount":
            return round(min(self.value, amount), 2)
        return 0.0

    def describe(self) -> str:
        """A short human phrase: "20% off", "5.00 off", "free shipping"."""
        return {"percent": f"{self.value:g}% off", "amount": f"{self.value:.2f} off",
                "free_shipping": "free shipping", "content": ""}[self.kind]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Offer:
        data = dict(data)
        if data.get("expires_at"):
            data["expires_at"] = pd.Timestamp(data["expires_at"]).to_pydatetime()
        return cls(**data)


@dataclass(frozen=True)
class Redemption:
    code: str
    user_id: str
    order_id: str
    amount: float
    discount: float
    free_shipping: bool


class CouponBook:
    """Issue and redeem coupon codes stored in ``marketing_coupons``."""

    def __init__(self, store: Any, prefix: str = "LL") -> None:
        self.store = store
        self.prefix = prefix
        ensure_tables(store)

    def issue(self, offer: Offer, user_ids: list[str], *, campaign_id: str | None = None,
              now: datetime | None = None) -> dict[str, str]:
        """One code per user for ``offer`` (existing codes are returned, not re-minted)."""
        if not offer.has_code:
            return {}
        now = now or datetime.now(UTC)
        existing = self.store.sql(
            "SELECT user_id, code FROM marketing_coupons WHERE offer_id = ?", [offer.offer_id])
        codes = dict(zip(existing["user_id"].astype(str), existing["code"], strict=True))
        expires = offer.expires_at or (now + timedelta(days=offer.valid_days)
                                       if offer.valid_days is not None else None)
        new_rows = []
        for u in map(str, user_ids):
            if u in codes:
                continue
            code = f"{self.prefix}-" + "".join(secrets.choice(_ALPHABET) for _ in range(10))
            codes[u] = code
            new_rows.append({"code": code, "offer_id": offer.offer_id,
                             "campaign_id": campaign_id, "user_id": u, "kind": offer.kind,
                             "value": float(offer.value),
                             "max_redemptions": offer.max_redemptions, "redemptions": 0,
                             "expires_at": expires, "created_at": now})
        if new_rows:
            frame = pd.DataFrame(new_rows)
            frame["expires_at"] = pd.to_datetime(frame["expires_at"], utc=True)
            frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
            with self.store.transaction():
                self.store.register("__new_coupons", frame)
                try:
                    self.store.execute("INSERT INTO marketing_coupons BY NAME "
                                       "SELECT * FROM __new_coupons")
                finally:
                    self.store.unregister("__new_coupons")
        return {u: codes[u] for u in map(str, user_ids)}

    def get(self, code: str) -> dict[str, Any] | None:
        frame = self.store.sql("SELECT * FROM marketing_coupons WHERE code = ?", [code])
        return None if frame.empty else frame.iloc[0].to_dict()

    def redeem(self, code: str, user_id: str, order_amount: float, *, order_id: str = "",
               now: datetime | None = None, min_order: float = 0.0) -> Redemption:
        """Use ``code`` for an order; raises :class:`CouponError` (unknown, wrong_user,
        expired, exhausted, below_minimum) when it cannot be used."""
        now = now or datetime.now(UTC)
        coupon = self.get(code.strip().upper())
        if coupon is None:
            raise CouponError("unknown", f"coupon {code!r} does not exist")
        if coupon["user_id"] and str(coupon["user_id"]) != str(user_id):
            raise CouponError("wrong_user", f"coupon {code!r} belongs to another customer")
        if coupon["expires_at"] is not None and not pd.isna(coupon["expires_at"]) \
                and pd.Timestamp(coupon["expires_at"]) <= pd.Timestamp(now):
            raise CouponError("expired", f"coupon {code!r} expired at {coupon['expires_at']}")
        if order_amount < min_order:
            raise CouponError("below_minimum", f"orders under {min_order} cannot use a coupon")
        with self.store.transaction():
            row = self.store.execute(
                "UPDATE marketing_coupons SET redemptions = redemptions + 1 WHERE code = ? "
                "AND redemptions < max_redemptions RETURNING redemptions",
                [coupon["code"]]).fetchone()
            if row is None:
                raise CouponError("exhausted", f"coupon {code!r} has been used "
                                  f"{coupon['max_redemptions']} time(s) already")
            offer = Offer(str(coupon["offer_id"]), str(coupon["kind"]), float(coupon["value"]),
                          int(coupon["max_redemptions"]), None)
            discount = offer.discount_for(order_amount)
            self.store.execute("INSERT INTO marketing_redemptions VALUES (?, ?, ?, ?, ?, ?)",
                               [coupon["code"], str(user_id), order_id, order_amount,
                                discount, now])
        return Redemption(coupon["code"], str(user_id), order_id, order_amount, discount,
                          offer.kind == "free_shipping")

    def stats(self, offer_id: str | None = None) -> dict[str, int]:
        """Codes issued and redeemed (for an offer or all)."""
        where, params = ("WHERE offer_id = ?", [offer_id]) if offer_id else ("", [])
        frame = self.store.sql(f"SELECT count(*) AS issued, coalesce(sum(redemptions), 0) "
                               f"AS redeemed FROM marketing_coupons {where}", params)
        return {k: int(v) for k, v in frame.iloc[0].items()}
