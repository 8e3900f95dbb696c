"""The sample world's catalogue: items with categories, tags, prices, text and hidden factors."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from limelight.sim.segments import CATEGORIES, CATEGORY_PRICES

#: Number of hidden "style" factors beyond the one-per-category taste factors.
N_STYLE = 6
#: Item popularity ~ 1 / rank**ZIPF_EXPONENT (times quality).
ZIPF_EXPONENT = 0.8

_NOUNS: dict[str, tuple[str, ...]] = {
    "Electronics": ("headphones", "speaker", "camera", "smartwatch", "charger", "tablet"),
    "Computers": ("laptop", "monitor", "keyboard", "mouse", "router", "desktop"),
    "Home & Kitchen": ("kettle", "pan set", "blender", "lamp", "towel set", "coffee maker"),
    "Garden": ("hose", "planter", "lawn mower", "seed kit", "grill", "garden chair"),
    "Fashion": ("jacket", "sneakers", "dress", "jeans", "scarf", "handbag"),
    "Beauty": ("serum", "lipstick", "perfume", "face cream", "shampoo", "palette"),
    "Jewelry": ("necklace", "ring", "bracelet", "earrings", "watch", "pendant"),
    "Books": ("novel", "cookbook", "biography", "thriller", "atlas", "poetry collection"),
    "Music": ("vinyl", "album", "songbook", "box set", "live recording", "soundtrack"),
    "Games": ("board game", "console game", "puzzle", "card game", "controller", "strategy game"),
    "Toys": ("building set", "plush bear", "doll house", "toy car", "kite", "science kit"),
    "Sports": ("yoga mat", "running shoes", "tennis racket", "bike helmet", "dumbbells", "tent"),
}
_TAGS: dict[str, tuple[str, ...]] = {
    "Electronics": ("wireless", "bluetooth", "4k", "noise-cancelling", "portable"),
    "Computers": ("gaming", "ultrabook", "ergonomic", "usb-c", "office"),
    "Home & Kitchen": ("stainless", "non-stick", "energy-saving", "minimalist", "dishwasher-safe"),
    "Garden": ("outdoor", "weatherproof", "organic", "solar", "compact"),
    "Fashion": ("cotton", "vintage", "streetwear", "slim-fit", "waterproof"),
    "Beauty": ("vegan", "fragrance-free", "spf", "natural", "travel-size"),
    "Jewelry": ("gold", "silver", "handmade", "gemstone", "engraved"),
    "Books": ("bestseller", "hardcover", "paperback", "award-winning", "illustrated"),
    "Music": ("jazz", "rock", "classical", "electronic", "indie"),
    "Games": ("multiplayer", "family", "strategy", "co-op", "retro"),
    "Toys": ("educational", "wooden", "3+", "stem", "creative"),
    "Sports": ("running", "camping", "fitness", "cycling", "lightweight"),
}
_ADJECTIVES = ("Classic", "Smart", "Deluxe", "Compact", "Premium", "Essential", "Urban", "Nordic",
               "Pro", "Everyday", "Signature", "Eco")
_BRANDS = ("Aurora", "Brightline", "Cobalt", "Dune", "Ember", "Fjord", "Granite", "Halo",
           "Iris", "Juniper", "Kestrel", "Lumen")


@dataclass
class Catalog:
    """Items (in the data model) plus their hidden factors."""

    items: pd.DataFrame  # columns of limelight.data.schema.ITEMS
    primary_category: np.ndarray  # int, shape (n_items,)
    factors: np.ndarray  # float, shape (n_items, n_categories + N_STYLE)
    quality: np.ndarray  # float, shape (n_items,)
    z_price: np.ndarray  # standardised log price, shape (n_items,)
    popularity: np.ndarray  # sampling weight (Zipf-like), 0 for items not yet on sale
    price: np.ndarray


def make_catalog(n_items: int, rng: np.random.Generator, start: pd.Timestamp,
                 end: pd.Timestamp) -> Catalog:
    """Generate ``n_items`` items.

    Popularity follows a Zipf law over a random ranking (times the item's quality), a few
    items are out of stock, and about 3 % are brand new (created in the last days of the
    window, never shown before it ends) so cold-start code has something to work on.
    """
    n_cat = len(CATEGORIES)
    cat_share = rng.dirichlet(np.full(n_cat, 8.0))
    primary = rng.choice(n_cat, size=n_items, p=cat_share)
    has_second = rng.random(n_items) < 0.15
    second = (primary + rng.integers(1, n_cat, size=n_items)) % n_cat

    factors = np.zeros((n_items, n_cat + N_STYLE))
    factors[np.arange(n_items), primary] = 1.0
    factors[np.arange(n_items)[has_second], second[has_second]] = 0.5
    factors[:, n_cat:] = rng.normal(0.0, 1.0, size=(n_items, N_STYLE)) / np.sqrt(N_STYLE)

    medians = np.array([CATEGORY_PRICES[c][0] for c in CATEGORIES])
    spreads = np.array([CATEGORY_PRICES[c][1] for c in CATEGORIES])
    log_price = np.log(medians[primary]) + spreads[primary] * rng.normal(size=n_items)
    price = np.round(np.maximum(np.exp(log_price), 1.0), 2) - 0.01
    z_price = (np.log(price) - np.log(price).mean()) / np.log(price).std()

    quality = rng.normal(0.0, 0.5, size=n_items)
    rank = rng.permutation(n_items) + 1
    popularity = np.exp(quality) / rank**ZIPF_EXPONENT
    fresh = rng.random(n_items) < 0.03
    popularity[fresh] = 0.0

    # Created times in whole seconds: most items predate the window, fresh ones its last days.
    start_s, end_s = start.value // 10**9, end.value // 10**9
    created_s = start_s - rng.integers(0, 2 * 365 * 86400, size=n_items)
    created_s = np.where(fresh, end_s - rng.integers(1, 3 * 86400, size=n_items), created_s)
    created = pd.to_datetime(created_s, unit="s", utc=True)

    items = pd.DataFrame({
        "item_id": [f"i{k:06d}" for k in range(1, n_items + 1)],
        "title": _titles(primary, rng),
        "description": None,
        "categories": [[CATEGORIES[p]] + ([CATEGORIES[s]] if h else [])
                       for p, s, h in zip(primary, second, has_second, strict=True)],
        "tags": _tags(primary, price, medians, rng),
        "price": price,
        "currency": "EUR",
        "in_stock": rng.random(n_items) >= 0.05,
        "created_time": created,
        "extra": [json.dumps({"brand": b}) for b in rng.choice(_BRANDS, size=n_items)],
    })
    items["description"] = _descriptions(items, primary)
    return Catalog(items, primary, factors, quality, z_price, popularity, price)


def _titles(primary: np.ndarray, rng: np.random.Generator) -> list[str]:
    adj = rng.choice(_ADJECTIVES, size=len(primary))
    brand = rng.choice(_BRANDS, size=len(primary))
    noun_k = rng.integers(0, 6, size=len(primary))
    return [f"{b} {a} {_NOUNS[CATEGORIES[p]][k]}"
            for b, a, p, k in zip(brand, adj, primary, noun_k, strict=True)]


def _tags(primary: np.ndarray, price: np.ndarray, medians: np.ndarray,
          rng: np.random.Generator) -> list[list[str]]:
    n_tags = rng.integers(1, 4, size=len(primary))
    picks = rng.random((len(primary), 5)).argsort(axis=1)
    out = []
    for p, n, order, pr in zip(primary, n_tags, picks, price, strict=True):
        tags = [_TAGS[CATEGORIES[p]][j] for j in order[:n]]
        if pr > 2.0 * medians[p]:
            tags.append("premium")
        elif pr < 0.5 * medians[p]:
            tags.append("budget")
        out.append(tags)
    return out


def _descriptions(items: pd.DataFrame, primary: np.ndarray) -> list[str]:
    return [
        f"{title}: a {', '.join(tags)} pick from our {CATEGORIES[p].lower()} range."
        for title, tags, p in zip(items["title"], items["tags"], primary, strict=True)
    ]
