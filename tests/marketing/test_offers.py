from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from limelight.marketing.offers import CouponBook, CouponError, Offer
from limelight.store import open_store

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def book():
    store = open_store("memory://")
    yield CouponBook(store)
    store.close()


def test_offer_kinds_and_discounts() -> None:
    assert Offer("p", "percent", 20).discount_for(50) == 10.0
    assert Offer("a", "amount", 15).discount_for(10) == 10.0
    assert Offer("a", "amount", 5, min_order=30).discount_for(20) == 0.0
    assert Offer("s", "free_shipping").describe() == "free shipping"
    assert not Offer("c", "content").has_code
    for bad in (dict(kind="percent", value=0), dict(kind="percent", value=150),
                dict(kind="amount", value=-1), dict(kind="bogus"),
                dict(kind="amount", value=1, max_redemptions=0)):
        with pytest.raises(CouponError):
            Offer("x", **bad)
    o = Offer("p", "percent", 20, expires_at=NOW)
    assert Offer.from_dict(o.to_dict()) == o


def test_codes_are_unique_and_reissue_is_stable(book) -> None:
    offer = Offer("spring", "percent", 20)
    users = [f"u{i}" for i in range(500)]
    codes = book.issue(offer, users, now=NOW)
    assert len(set(codes.values())) == 500
    assert book.issue(offer, users[:10], now=NOW) == {u: codes[u] for u in users[:10]}
    assert book.stats("spring") == {"issued": 500, "redeemed": 0}
    assert book.issue(Offer("c", "content"), users) == {}


def test_redemption_limits_expiry_and_owner(book) -> None:
    offer = Offer("twice", "amount", 5, max_redemptions=2, valid_days=7)
    code = book.issue(offer, ["u1"], now=NOW)["u1"]
    r = book.redeem(code, "u1", 40.0, order_id="o1", now=NOW + timedelta(days=1))
    assert r.discount == 5.0
    book.redeem(code.lower(), "u1", 40.0, order_id="o2", now=NOW + timedelta(days=1))
    with pytest.raises(CouponError) as exc:
        book.redeem(code, "u1", 40.0, now=NOW + timedelta(days=1))
    assert exc.value.reason == "exhausted"
    code2 = book.issue(Offer("later", "percent", 10, valid_days=7), ["u1"], now=NOW)["u1"]
    with pytest.raises(CouponError) as exc:
        book.redeem(code2, "u1", 40.0, now=NOW + timedelta(days=8))
    assert exc.value.reason == "expired"
    with pytest.raises(CouponError) as exc:
        book.redeem(code2, "u2", 40.0, now=NOW)
    assert exc.value.reason == "wrong_user"
    with pytest.raises(CouponError) as exc:
        book.redeem("LL-NOPE", "u1", 40.0)
    assert exc.value.reason == "unknown"
    assert book.stats() == {"issued": 2, "redeemed": 2}


def test_concurrent_redemptions_never_exceed_the_limit(book) -> None:
    code = book.issue(Offer("once", "percent", 50, max_redemptions=1), ["u9"], now=NOW)["u9"]
    ok, failed = [], []

    def attempt() -> None:
        try:
            ok.append(book.redeem(code, "u9", 10.0, now=NOW))
        except CouponError as exc:
            failed.append(exc.reason)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ok) == 1 and failed == ["exhausted"] * 7
