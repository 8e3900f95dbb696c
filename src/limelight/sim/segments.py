"""The sample world's fixed vocabulary: categories, regions and hidden behavioural segments.

Segments are designed to differ clearly in what a shop can observe (how often people come,
how much they look before they buy, what they pay, when they shop, whether a discount moves
them, which categories and regions they belong to), so that a profile-based segmentation can
recover them. Their labels are part of the hidden truth, never of the events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Item categories; a user's taste and an item's factor vector both start with one entry each.
CATEGORIES: tuple[str, ...] = (
    "Electronics",
    "Computers",
    "Home & Kitchen",
    "Garden",
    "Fashion",
    "Beauty",
    "Jewelry",
    "Books",
    "Music",
    "Games",
    "Toys",
    "Sports",
)

#: Median price and log-normal spread per category (currency EUR).
CATEGORY_PRICES: dict[str, tuple[float, float]] = {
    "Electronics": (120.0, 0.8),
    "Computers": (450.0, 0.7),
    "Home & Kitchen": (35.0, 0.7),
    "Garden": (40.0, 0.8),
    "Fashion": (45.0, 0.6),
    "Beauty": (22.0, 0.5),
    "Jewelry": (160.0, 0.9),
    "Books": (14.0, 0.4),
    "Music": (16.0, 0.4),
    "Games": (45.0, 0.5),
    "Toys": (25.0, 0.6),
    "Sports": (55.0, 0.7),
}


@dataclass(frozen=True)
class Region:
    """A geographic region: its country, timezone and cities with coordinates."""

    code: str
    country: str
    timezone: str
    cities: tuple[tuple[str, float, float], ...]  # (name, lat, lon)


REGIONS: tuple[Region, ...] = (
    Region("uk-south", "GB", "Europe/London", (
        ("London", 51.507, -0.128),
        ("Brighton", 50.822, -0.137),
        ("Bristol", 51.455, -2.588),
    )),
    Region("uk-north", "GB", "Europe/London", (
        ("Manchester", 53.481, -2.243),
        ("Leeds", 53.801, -1.549),
        ("Edinburgh", 55.953, -3.189),
    )),
    Region("fr", "FR", "Europe/Paris", (
        ("Paris", 48.857, 2.352),
        ("Lyon", 45.764, 4.836),
        ("Marseille", 43.296, 5.370),
    )),
    Region("de", "DE", "Europe/Berlin", (
        ("Berlin", 52.520, 13.405),
        ("Munich", 48.135, 11.582),
        ("Hamburg", 53.551, 9.994),
    )),
    Region("es", "ES", "Europe/Madrid", (
        ("Madrid", 40.417, -3.704),
        ("Barcelona", 41.385, 2.173),
        ("Valencia", 39.470, -0.376),
    )),
    Region("it", "IT", "Europe/Rome", (
        ("Rome", 41.903, 12.496),
        ("Milan", 45.464, 9.190),
        ("Naples", 40.852, 14.268),
    )),
    Region("nl", "NL", "Europe/Amsterdam", (
        ("Amsterdam", 52.368, 4.904),
        ("Rotterdam", 51.924, 4.478),
        ("Utrecht", 52.091, 5.122),
    )),
    Region("pl", "PL", "Europe/Warsaw", (
        ("Warsaw", 52.230, 21.012),
        ("Krakow", 50.065, 19.945),
        ("Gdansk", 54.352, 18.647),
    )),
)


@dataclass(frozen=True)
class SegmentSpec:
    """Parameters of one hidden behavioural segment.

    Activity: ``sessions`` is the mean number of sessions in the whole time window (before
    scaling to the requested size), bounded below by ``min_sessions`` and above by
    ``max_sessions`` (regulars come back, occasional visitors do not), ``views_per_session``
    the mean number of items looked at.
    Time: ``hours`` is a mixture of (local hour, spread, weight); ``weekday_weights`` multiplies
    activity Monday..Sunday. Response: logits of the funnel steps, price and discount
    sensitivity (see :class:`limelight.sim.response.ResponseModel`).
    """

    name: str
    share: float
    sessions: float
    views_per_session: float
    hours: tuple[tuple[float, float, float], ...]
    weekday_weights: tuple[float, ...]
    categories: tuple[str, ...]  # favourite categories (taste centre)
    regions: tuple[str, ...]  # preferred regions
    region_affinity: float  # probability of living in a preferred region
    age: tuple[float, float]  # mean, sd
    click_logit: float
    cart_logit: float
    buy_logit: float
    price_sensitivity: float  # > 0: prefers cheap items; < 0: prefers expensive ones
    discount_sensitivity: float  # logit gain per unit discount (0.2 discount -> 0.2 * this)
    like_rate: float
    share_rate: float
    rating_rate: float
    return_rate: float
    friends: float  # mean number of friend links
    mobile_share: float
    extra_quantity: float = 0.15  # mean of the Poisson number of extra units per purchase
    consent: dict[str, float] = field(default_factory=dict)
    min_sessions: int = 2
    taste_strength: float = 2.0  # extra taste for the favourite categories (logit scale)
    max_sessions: int = 10_000


SEGMENTS: tuple[SegmentSpec, ...] = (
    SegmentSpec(
        name="bargain_hunters", share=0.22, sessions=8.0, views_per_session=6.0,
        hours=((12.5, 1.5, 0.6), (19.0, 1.5, 0.4)),
        weekday_weights=(1.0, 1.0, 1.0, 1.0, 1.1, 1.2, 1.0),
        categories=("Electronics", "Home & Kitchen"),
        regions=("es", "it", "pl"), region_affinity=0.75, age=(36.0, 9.0),
        click_logit=-1.8, cart_logit=-1.4, buy_logit=-1.8,
        price_sensitivity=1.2, discount_sensitivity=12.0,
        like_rate=0.02, share_rate=0.01, rating_rate=0.25, return_rate=0.06,
        friends=4.0, mobile_share=0.5,
        consent={"personalization": 0.9, "email": 0.85, "push": 0.6, "sms": 0.4},
    ),
    SegmentSpec(
        name="loyal_big_spenders", share=0.15, sessions=10.0, views_per_session=2.0,
        hours=((8.0, 1.2, 0.5), (17.5, 1.5, 0.5)),
        weekday_weights=(1.2, 1.2, 1.2, 1.2, 1.1, 0.6, 0.5),
        categories=("Jewelry", "Computers", "Fashion"),
        regions=("uk-south", "de", "nl"), region_affinity=0.75, age=(48.0, 8.0),
        click_logit=-0.4, cart_logit=0.0, buy_logit=1.2,
        price_sensitivity=-0.6, discount_sensitivity=1.0,
        like_rate=0.05, share_rate=0.02, rating_rate=0.45, return_rate=0.03,
        friends=3.0, mobile_share=0.2, extra_quantity=0.5,
        consent={"personalization": 0.95, "email": 0.8, "push": 0.3, "sms": 0.3},
    ),
    SegmentSpec(
        name="night_browsers", share=0.20, sessions=8.0, views_per_session=3.0,
        hours=((23.0, 1.3, 0.7), (1.0, 1.0, 0.3)),
        weekday_weights=(1.0, 1.0, 1.0, 1.0, 1.2, 1.2, 1.0),
        categories=("Games", "Music"),
        regions=("uk-north", "fr", "nl"), region_affinity=0.75, age=(24.0, 4.0),
        click_logit=-1.2, cart_logit=-1.2, buy_logit=-0.6,
        price_sensitivity=0.4, discount_sensitivity=4.0,
        like_rate=0.12, share_rate=0.05, rating_rate=0.2, return_rate=0.04,
        friends=6.0, mobile_share=0.85,
        consent={"personalization": 0.85, "email": 0.5, "push": 0.8, "sms": 0.2},
    ),
    SegmentSpec(
        name="occasional", share=0.28, sessions=1.2, views_per_session=2.0,
        hours=((15.5, 1.0, 1.0),),
        weekday_weights=(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
        categories=("Beauty",), taste_strength=3.0,
        regions=("fr", "de", "es", "it"), region_affinity=0.6, age=(42.0, 14.0),
        click_logit=-1.2, cart_logit=-0.8, buy_logit=0.0,
        price_sensitivity=0.3, discount_sensitivity=3.0,
        like_rate=0.02, share_rate=0.01, rating_rate=0.1, return_rate=0.05,
        friends=1.5, mobile_share=0.5,
        consent={"personalization": 0.7, "email": 0.6, "push": 0.3, "sms": 0.2},
        min_sessions=1, max_sessions=3,
    ),
    SegmentSpec(
        name="weekend_families", share=0.15, sessions=6.0, views_per_session=2.5,
        hours=((10.0, 1.2, 0.7), (15.0, 1.2, 0.3)),
        weekday_weights=(0.35, 0.35, 0.35, 0.35, 0.6, 2.6, 2.4),
        categories=("Toys", "Sports", "Garden"),
        regions=("uk-south", "uk-north", "de"), region_affinity=0.75, age=(38.0, 6.0),
        click_logit=-0.8, cart_logit=-0.4, buy_logit=0.6,
        price_sensitivity=0.3, discount_sensitivity=5.0,
        like_rate=0.15, share_rate=0.12, rating_rate=0.3, return_rate=0.05,
        friends=7.0, mobile_share=0.6, extra_quantity=0.8,
        consent={"personalization": 0.9, "email": 0.75, "push": 0.6, "sms": 0.4},
    ),
)

SEGMENT_NAMES: tuple[str, ...] = tuple(s.name for s in SEGMENTS)
