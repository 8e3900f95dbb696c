"""Settings of a profile build: decay, sessions, sequence length, segmentation ranges."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Event types counted one column each (``n_<type>``); other types count in ``n_events`` only.
COUNTED_TYPES: tuple[str, ...] = (
    "impression", "view", "click", "add_to_cart", "purchase", "return", "rating", "review",
    "like", "share", "not_interested", "email_open", "email_click", "unsubscribe",
)

#: Parts of the (UTC) day, as half-open hour ranges; descriptions speak of them.
DAYPARTS: dict[str, tuple[int, int]] = {
    "night": (0, 6), "morning": (6, 12), "afternoon": (12, 18), "evening": (18, 24),
}

US_PER_DAY = 86_400_000_000
US_PER_HOUR = 3_600_000_000


def _default_event_weights() -> dict[str, float]:
    # The same defaults as the interaction matrix (settings.dataset.event_weights), so that
    # "interest" means the same thing in profiles and in models.
    from limelight.settings import DatasetConfig

    return dict(DatasetConfig().event_weights)


@dataclass
class ProfileConfig:
    """How profiles are computed.

    Parameters
    ----------
    half_life_days
        Half-life of interest decay: an event this old counts half as much as one now.
    session_gap_minutes
        Events without a session id start a new session after this much inactivity.
    sequence_length
        How many recent items and event types the behaviour sequence keeps.
    n_interest_columns
        Number of most common categories that become dense ``interest:<name>`` columns
        (every category still counts in the top-interest names).
    n_top_interests
        How many category and tag names ``top_categories`` / ``top_tags`` list.
    event_weights
        Weight of each event type in interest scores; a ``rating`` weighs its value times the
        ``rating`` weight. Defaults to ``settings.dataset.event_weights``.
    value_is_unit_price
        False: a purchase's ``value`` is the line amount paid. True: ``value`` is the unit
        price and the line amount is ``value * quantity``. None (default): decided from the
        data, by whether purchases of several units carry about the item's price or about
        price times quantity (False when nothing tells).
    discount_threshold
        A purchase paid this fraction (or more) under the item's list price counts as discounted
        (a purchase with a ``campaign_id`` always does).
    geo_clusters
        Number of location clusters over users' coordinates (0 = off).
    random_state
        Seed of every random step (geo clustering).
    """

    half_life_days: float = 30.0
    session_gap_minutes: float = 30.0
    sequence_length: int = 10
    n_interest_columns: int = 20
    n_top_interests: int = 3
    event_weights: dict[str, float] = field(default_factory=_default_event_weights)
    value_is_unit_price: bool | None = None
    discount_threshold: float = 0.01
    geo_clusters: int = 5
    random_state: int = 0

    def __post_init__(self) -> None:
        from limelight.errors import ConfigError

        if self.half_life_days <= 0:
            raise ConfigError(f"half_life_days must be > 0, got {self.half_life_days}")
        if self.sequence_length < 0 or self.n_interest_columns < 0:
            raise ConfigError("sequence_length and n_interest_columns must be >= 0")
        if self.session_gap_minutes <= 0:
            raise ConfigError("session_gap_minutes must be > 0")

    @property
    def half_life_us(self) -> float:
        return self.half_life_days * US_PER_DAY

    @property
    def session_gap_us(self) -> int:
        return int(self.session_gap_minutes * 60_000_000)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
