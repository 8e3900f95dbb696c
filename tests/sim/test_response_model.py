"""The hidden response model: probabilities, discounts, sampling, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from limelight.errors import UnknownIdError
from limelight.sim import ResponseModel


@pytest.fixture(scope="module")
def model(tiny_world) -> ResponseModel:
    return tiny_world.truth.response


@pytest.fixture(scope="module")
def pairs(tiny_world) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    users = rng.choice(tiny_world.users["user_id"].to_numpy(), size=2_000)
    items = rng.choice(tiny_world.items["item_id"].to_numpy(), size=2_000)
    return users, items


def test_probabilities_are_valid_and_ordered(model, pairs) -> None:
    users, items = pairs
    click = model.p_click(users, items)
    cart = model.p_cart(users, items)
    buy = model.p_purchase(users, items)
    for p in (click, cart, buy):
        assert p.shape == (len(users),) and p.dtype == np.float64
        assert ((p > 0) & (p < 1)).all()
    assert (click >= cart).all() and (cart >= buy).all()
    assert click.std() > 0.05  # users and items really differ


def test_monotone_in_discount(model, pairs) -> None:
    users, items = pairs
    grid = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5]
    for fn in (model.p_click, model.p_cart, model.p_purchase):
        values = np.stack([fn(users, items, discount=d) for d in grid])
        assert (np.diff(values, axis=0) > 0).all()
    per_pair = model.p_purchase(users, items, discount=np.linspace(0, 0.5, len(users)))
    assert per_pair.shape == (len(users),)


def test_discount_matters_most_to_bargain_hunters(model, tiny_world) -> None:
    truth = tiny_world.truth.users
    items = tiny_world.items["item_id"].to_numpy()
    lift = {}
    for name in ("bargain_hunters", "loyal_big_spenders"):
        users = truth.loc[truth["segment_name"] == name, "user_id"].to_numpy()[:20]
        u, i = np.repeat(users, len(items)), np.tile(items, len(users))
        lift[name] = (model.p_purchase(u, i, 0.2).mean() / model.p_purchase(u, i).mean())
    assert lift["bargain_hunters"] > 1.5 * lift["loyal_big_spenders"] > 1.5


def test_personalised_items_beat_random_items(model, tiny_world) -> None:
    users = tiny_world.users["user_id"].to_numpy()[:50]
    best = model.best_items(users, n=5)
    assert best.shape == (50, 5)
    p_best = model.p_purchase(np.repeat(users, 5), best.ravel()).mean()
    rng = np.random.default_rng(1)
    random_items = rng.choice(tiny_world.items["item_id"].to_numpy(), size=250)
    p_random = model.p_purchase(np.repeat(users, 5), random_items).mean()
    assert p_best > 2 * p_random


def test_sampling_matches_probabilities(model) -> None:
    user, item = model.user_index[0], model.item_index[0]
    n = 20_000
    draws = model.sample_response([user] * n, [item] * n, discount=0.1, rng=7)
    assert list(draws.columns) == ["user_id", "item_id", "discount", "clicked", "carted",
                                   "purchased"]
    assert (draws["clicked"] >= draws["carted"]).all()
    assert (draws["carted"] >= draws["purchased"]).all()
    for col, fn in (("clicked", model.p_click), ("purchased", model.p_purchase)):
        p = fn([user], [item], 0.1)[0]
        assert abs(draws[col].mean() - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-3
    again = model.sample_response([user] * 100, [item] * 100, rng=np.random.default_rng(3))
    assert again.equals(model.sample_response([user] * 100, [item] * 100, rng=3))


def test_broadcast_and_errors(model) -> None:
    items = list(model.item_index[:4])
    assert model.p_click(model.user_index[0], items).shape == (4,)
    with pytest.raises(UnknownIdError):
        model.p_click(["nobody"], items[:1])
    with pytest.raises(UnknownIdError):
        model.p_purchase([model.user_index[0]], ["no-such-item"])
    with pytest.raises(ValueError, match="lengths"):
        model.p_click(list(model.user_index[:2]), items[:3])
    with pytest.raises(ValueError, match="discount"):
        model.p_click(list(model.user_index[:1]), items[:1], discount=1.5)


def test_save_and_load(tmp_path: Path, model, pairs) -> None:
    model.save(tmp_path)
    back = ResponseModel.load(tmp_path)
    users, items = pairs
    np.testing.assert_array_equal(back.p_purchase(users, items, 0.2),
                                  model.p_purchase(users, items, 0.2))
    assert back.segment_params == model.segment_params


def test_generated_funnel_follows_the_model(tiny_world) -> None:
    """Views of items the model rates likelier to be clicked are clicked more often."""
    ev = tiny_world.events
    views = ev[ev["type"] == "view"][["user_id", "item_id", "session_id"]]
    clicks = ev[ev["type"] == "click"][["user_id", "item_id", "session_id"]].assign(clicked=1)
    joined = views.merge(clicks.drop_duplicates(), how="left").fillna({"clicked": 0})
    p = tiny_world.truth.response.p_click(joined["user_id"], joined["item_id"])
    high = joined["clicked"][p > np.median(p)].mean()
    low = joined["clicked"][p <= np.median(p)].mean()
    assert high > low + 0.1
