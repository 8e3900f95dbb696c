"""Real-time profile updates: ``ProfileUpdater.learn_one(event)`` in constant time per event.

Each user keeps counters (events by type, sessions, active days, hour/weekday histograms, gap
sums), running RFM sums, decayed interests and the last ``sequence_length`` items and types.
Interests are stored *anchored* at a per-user reference time ``t0`` as
``A = Σ w · 2^((t - t0)/h)``, so an event touches only its item's labels; reading at ``as_of``
multiplies by ``2^((t0 - as_of)/h)``. Replaying a user's events in time order therefore gives
the batch build's values (tested to floating-point tolerance). Events are expected in time
order per user; a late event still counts in every sum, is treated as arriving now for session,
day and gap counting, and is counted in ``late_events_``.

Demographic, geo and social columns come from the batch build (they change with the graph and
the user table, not with events).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from limelight.profile.activity import HOUR_COS, HOUR_SIN
from limelight.profile.config import (
    COUNTED_TYPES,
    DAYPARTS,
    US_PER_DAY,
    US_PER_HOUR,
    ProfileConfig,
)
from limelight.profile.features import GEO_COLUMNS, SOCIAL_COLUMNS, ProfileBuilder
from limelight.profile.interests import INTEREST_PREFIX
from limelight.profile.rfm import NO_PURCHASE, RFM_TABLE

_HOUR_KEYS = [f"hour_{h:02d}" for h in range(24)]
_DOW_KEYS = [f"dow_{d}" for d in range(7)]
_HOUR_COS = HOUR_COS.tolist()
_HOUR_SIN = HOUR_SIN.tolist()
_REBASE_HALF_LIVES = 200.0  # keep 2**x far from float overflow on very long histories


class _UserState:
    __slots__ = (
        "cats", "day", "dows", "first_ts", "gap_sq", "gross", "hours", "items", "last_okey",
        "last_purchase_ts", "last_session", "last_ts", "n_active_days", "n_discounted",
        "n_events", "n_orders", "n_purchase_lines", "n_sessions", "pos_total", "purchase_qty",
        "returned", "segment", "seq_items", "seq_types", "t0", "tags", "types",
    )

    def __init__(self, ts: int, seq_len: int) -> None:
        self.n_events = 0
        self.first_ts = ts
        self.last_ts: int | None = None
        self.types: dict[str, int] = {}
        self.last_session: str | None = None
        self.n_sessions = 0
        self.day = -1
        self.n_active_days = 0
        self.gap_sq = 0.0
        self.items: set[str] = set()
        self.hours = [0] * 24
        self.dows = [0] * 7
        self.n_orders = 0
        self.last_okey: str | None = None
        self.gross = 0.0
        self.returned = 0.0
        self.purchase_qty = 0.0
        self.n_purchase_lines = 0
        self.n_discounted = 0
        self.last_purchase_ts: int | None = None
        self.t0 = ts
        self.cats: dict[str, float] = {}
        self.tags: dict[str, float] = {}
        self.pos_total = 0.0
        self.seq_items: deque[str] = deque(maxlen=seq_len)
        self.seq_types: deque[str] = deque(maxlen=seq_len)
        self.segment: tuple[int, float] | None = None


class ProfileUpdater:
    """Keeps profiles current as events arrive.

    Parameters
    ----------
    config
        The build's :class:`ProfileConfig`.
    items
        Items indexed by ``item_id`` with ``categories``, ``tags`` (lists) and ``price``.
    rfm_boundaries
        Quintile boundaries from the batch build (``ProfileBuilder.rfm_boundaries_``).
    interest_columns
        Categories with dense ``interest:<name>`` columns.
    segments
        Optional fitted :class:`~limelight.profile.segments.SegmentModel`; when given, every
        event also refreshes the user's segment (nearest centroid or GMM posterior).
    static
        Optional batch profiles to take demographic, geo and social columns from.
    as_of_us
        The batch build's reference time (µs); profiles are read at the later of this and the
        latest event seen unless ``as_of`` is given.
    assign_on
        ``"event"`` (default): ``learn_one`` re-assigns the user's segment at once.
        ``"read"``: ``learn_one`` only marks it stale and :meth:`segment` computes it when asked
        (the same result, as of the user's latest event); per-event work drops from tens of
        microseconds to a few when most users' segments are not read after every event.

    Example
    -------
    >>> updater = ProfileUpdater.from_builder(builder, segments)          # doctest: +SKIP
    >>> updater.learn_one({"user_id": "u1", "item_id": "i9", "type": "purchase",
    ...                    "value": 12.5, "timestamp": "2024-05-01T10:00:00Z"})  # doctest: +SKIP
    >>> updater.profile("u1")["monetary"], updater.segment("u1")        # doctest: +SKIP
    """

    def __init__(self, config: ProfileConfig, items: pd.DataFrame,
                 rfm_boundaries: Mapping[str, list[float]], interest_columns: list[str], *,
                 segments: Any = None, static: pd.DataFrame | None = None,
                 as_of_us: int = 0, assign_on: str = "event") -> None:
        if assign_on not in ("event", "read"):
            from limelight.errors import ConfigError

            raise ConfigError(f"assign_on must be 'event' or 'read', got {assign_on!r}")
        self.assign_on = assign_on
        self.config = config
        self._item_cats = dict(zip(items.index.astype(str), items["categories"], strict=True))
        self._item_tags = dict(zip(items.index.astype(str), items["tags"], strict=True))
        self._item_price = dict(zip(items.index.astype(str), items["price"], strict=True))
        self.rfm_boundaries = {k: list(v) for k, v in rfm_boundaries.items()}
        self.interest_columns = list(interest_columns)
        self.segments = segments
        self._static_cols = [c for c in (*SOCIAL_COLUMNS, *GEO_COLUMNS)
                             if static is not None and c in static]
        self._static_index = ({u: i for i, u in enumerate(static.index)}
                              if static is not None else {})
        self._static_values = ({c: static[c].to_numpy(dtype=object) for c in self._static_cols}
                               if static is not None else {})
        needed = set(getattr(getattr(segments, "preprocessor_", None), "columns", []))
        self._static_needed = [c for c in self._static_cols if c in needed]
        self._users: dict[str, _UserState] = {}
        self._h = config.half_life_us
        self._weights = dict(config.event_weights)
        self.now_us = int(as_of_us)
        self.late_events_ = 0

    @classmethod
    def from_builder(cls, builder: ProfileBuilder, segments: Any = None, *,
                     with_static: bool = True, assign_on: str = "event") -> ProfileUpdater:
        """An updater matching a fitted :class:`ProfileBuilder` (and segment model)."""
        return cls(builder.config_, builder.items_, builder.rfm_boundaries_,
                   builder.interest_columns_, segments=segments,
                   static=builder.profiles_ if with_static else None,
                   as_of_us=builder.as_of_us_, assign_on=assign_on)

    # -- learning ---------------------------------------------------------------------------
    def learn_one(self, event: Mapping[str, Any]) -> None:
        """Fold one event (a mapping in the data model's event fields) into its user's profile.

        Constant time: counters, RFM sums, the item's interest labels, the sequence and (with a
        segment model) the segment assignment are updated; nothing scans the user's history.
        """
        user = str(event["user_id"])
        ts = _to_us(event["timestamp"])
        kind = str(event["type"]).strip().lower()
        item = event.get("item_id")
        item = None if item is None or item != item else str(item)
        session = event.get("session_id")
        st = self._users.get(user)
        if st is None:
            st = self._users[user] = _UserState(ts, self.config.sequence_length)
        self._count(st, ts, kind, item, session)
        if kind == "purchase" or kind == "return":
            self._rfm(st, ts, kind, item, event, session)
        if item is not None:
            self._interests(st, ts, kind, item, event.get("value"))
            st.seq_items.append(item)
        st.seq_types.append(kind)
        if ts > self.now_us:
            self.now_us = ts
        if self.segments is not None:
            st.segment = (self.segments.assign_one(self._features(user, st, ts, full=False))
                          if self.assign_on == "event" else None)

    def learn_many(self, events: pd.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """``learn_one`` over events (a DataFrame is replayed sorted by time); returns count."""
        if isinstance(events, pd.DataFrame):
            order = [c for c in ("timestamp", "event_id") if c in events]
            events = events.sort_values(order, kind="stable").to_dict("records")
        n = 0
        for event in events:
            self.learn_one(event)
            n += 1
        return n

    def _count(self, st: _UserState, ts: int, kind: str, item: str | None, session: Any) -> None:
        session = None if session is None or session != session else str(session)
        prev = st.last_ts
        if prev is not None and ts < prev:
            self.late_events_ += 1
            ts_eff = prev
        else:
            ts_eff = ts
        if (prev is None or session != st.last_session
                or (session is None and ts_eff - prev > self.config.session_gap_us)):
            st.n_sessions += 1
        day = ts_eff // US_PER_DAY
        if day != st.day:
            st.n_active_days += 1
            st.day = day
        if prev is not None:
            st.gap_sq += ((ts_eff - prev) / US_PER_HOUR) ** 2
        st.last_ts = ts_eff
        st.last_session = session
        st.n_events += 1
        st.types[kind] = st.types.get(kind, 0) + 1
        if item is not None:
            st.items.add(item)
        st.hours[ts // US_PER_HOUR % 24] += 1
        st.dows[(ts // US_PER_DAY + 3) % 7] += 1

    def _rfm(self, st: _UserState, ts: int, kind: str, item: str | None,
             event: Mapping[str, Any], session: Any) -> None:
        value, qty = _num(event.get("value")), _num(event.get("quantity"))
        q = 1.0 if qty is None else qty
        price = self._item_price.get(item) if item is not None else None
        price = None if price is None or price != price else price
        if self.config.value_is_unit_price:
            unit = value if value is not None else price
            amount = None if unit is None else unit * q
        else:
            amount = value if value is not None else (None if price is None else price * q)
            unit = None if amount is None or q == 0 else amount / q
        if kind == "return":
            st.returned += abs(amount) if amount is not None else 0.0
            return
        session = None if session is None or session != session else str(session)
        okey = session if session is not None else str(ts)
        if okey != st.last_okey:
            st.n_orders += 1
        st.last_okey = okey
        st.gross += amount if amount is not None else 0.0
        st.purchase_qty += q
        st.n_purchase_lines += 1
        campaign = event.get("campaign_id")
        if (campaign is not None and campaign == campaign) or (
                price is not None and price > 0 and unit is not None
                and unit < price * (1 - self.config.discount_threshold)):
            st.n_discounted += 1
        if st.last_purchase_ts is None or ts > st.last_purchase_ts:
            st.last_purchase_ts = ts

    def _interests(self, st: _UserState, ts: int, kind: str, item: str, value: Any) -> None:
        if kind == "rating":
            v = _num(value)
            w = self._weights.get("rating", 0.0) * (0.0 if v is None else v)
        else:
            w = self._weights.get(kind, 0.0)
        if w == 0.0:
            return
        exponent = (ts - st.t0) / self._h
        if exponent > _REBASE_HALF_LIVES:
            self._rebase(st, ts)
            exponent = 0.0
        aw = w * 2.0 ** exponent
        for label in self._item_cats.get(item, ()):
            old = st.cats.get(label, 0.0)
            new = old + aw
            st.cats[label] = new
            st.pos_total += max(new, 0.0) - max(old, 0.0)
        for label in self._item_tags.get(item, ()):
            st.tags[label] = st.tags.get(label, 0.0) + aw

    def _rebase(self, st: _UserState, ts: int) -> None:
        # Rare (once per 200 half-lives of a user's history): amortised O(1) per event.
        factor = 2.0 ** ((st.t0 - ts) / self._h)
        st.cats = {k: v * factor for k, v in st.cats.items()}
        st.tags = {k: v * factor for k, v in st.tags.items()}
        st.pos_total *= factor
        st.t0 = ts

    # -- reading ----------------------------------------------------------------------------
    def users(self) -> list[str]:
        """Ids of every user seen by ``learn_one``."""
        return list(self._users)

    def segment(self, user_id: str) -> tuple[int, float] | None:
        """``(segment_id, probability)`` assigned at the user's latest event (None without a
        segment model or before any event)."""
        st = self._users.get(str(user_id))
        if st is None or self.segments is None:
            return None
        if st.segment is None:  # assign_on="read": computed now, as of the latest event
            st.segment = self.segments.assign_one(
                self._features(str(user_id), st, st.last_ts, full=False))
        return st.segment

    def assign(self, user_id: str, as_of: Any = None) -> tuple[int, float] | None:
        """``(segment_id, probability)`` of the user's profile read at ``as_of`` (recency
        depends on it; default: the latest event seen by the updater)."""
        st = self._users.get(str(user_id))
        if st is None or self.segments is None:
            return None
        as_of_us = self.now_us if as_of is None else _to_us(as_of)
        return self.segments.assign_one(self._features(str(user_id), st, as_of_us))

    def profile(self, user_id: str, as_of: Any = None) -> dict[str, Any]:
        """The user's current profile as a dict with the batch build's column names.

        Raises
        ------
        UnknownIdError
            When no event of ``user_id`` has been learned.
        """
        from limelight.errors import UnknownIdError

        st = self._users.get(str(user_id))
        if st is None:
            raise UnknownIdError("user", user_id)
        as_of_us = self.now_us if as_of is None else _to_us(as_of)
        out = self._features(str(user_id), st, as_of_us)
        n = self.config.n_top_interests
        decay = 2.0 ** ((st.t0 - as_of_us) / self._h)
        out["top_categories"] = _top(st.cats, n)
        out["top_tags"] = _top(st.tags, n)
        out["interest_strength"] = st.pos_total * decay
        out["last_items"] = list(st.seq_items)
        out["last_types"] = list(st.seq_types)
        out["first_seen"] = pd.Timestamp(st.first_ts, unit="us", tz="UTC")
        out["last_seen"] = pd.Timestamp(st.last_ts, unit="us", tz="UTC")
        if self.segments is not None:
            out["segment_id"], out["segment_probability"] = self.segments.assign_one(out)
        return out

    def profiles(self, user_ids: Iterable[str] | None = None, as_of: Any = None) -> pd.DataFrame:
        """Profiles of ``user_ids`` (default: every user seen) as a DataFrame."""
        ids = list(self._users) if user_ids is None else [str(u) for u in user_ids]
        frame = pd.DataFrame([self.profile(u, as_of) for u in ids], index=pd.Index(ids))
        frame.index.name = "user_id"
        return frame

    def _features(self, user: str, st: _UserState, as_of_us: int, *,
                  full: bool = True) -> dict[str, Any]:
        """Every scalar feature of one user at ``as_of`` (the segment model's inputs).

        ``full=False`` (per-event segment assignment) leaves out what the segment model does not
        read: the 31 histogram cells, RFM scores and static columns it does not use.
        """
        n = st.n_events
        out: dict[str, Any] = {"n_events": n}
        types = st.types
        for t in COUNTED_TYPES:
            out["n_" + t] = types.get(t, 0)
        out["n_sessions"] = st.n_sessions
        out["n_active_days"] = st.n_active_days
        out["n_items"] = len(st.items)
        out["tenure_days"] = (as_of_us - st.first_ts) / US_PER_DAY
        out["days_since_last_event"] = (as_of_us - st.last_ts) / US_PER_DAY
        out["events_per_session"] = n / max(st.n_sessions, 1)
        if n > 1:
            mean_gap = (st.last_ts - st.first_ts) / US_PER_HOUR / (n - 1)
            out["mean_gap_hours"] = mean_gap
            out["std_gap_hours"] = math.sqrt(max(st.gap_sq / (n - 1) - mean_gap**2, 0.0))
        else:
            out["mean_gap_hours"] = out["std_gap_hours"] = math.nan
        out.update(_funnel(out))
        hours = [c / n for c in st.hours]
        if full:
            for h in range(24):
                out[_HOUR_KEYS[h]] = hours[h]
            for d in range(7):
                out[_DOW_KEYS[d]] = st.dows[d] / n
        for part, (lo, hi) in DAYPARTS.items():
            out["share_" + part] = sum(hours[lo:hi])
        out["share_weekend"] = (st.dows[5] + st.dows[6]) / n
        out["hour_cos"] = sum(x * c for x, c in zip(hours, _HOUR_COS, strict=True))
        out["hour_sin"] = sum(x * s for x, s in zip(hours, _HOUR_SIN, strict=True))
        out.update(self._rfm_features(st, as_of_us, scores=full))
        total = st.pos_total
        for c in self.interest_columns:
            a = st.cats.get(c, 0.0)
            out[INTEREST_PREFIX + c] = max(a, 0.0) / total if total > 0 else 0.0
        out["interest_strength"] = total * 2.0 ** ((st.t0 - as_of_us) / self._h)
        row = self._static_index.get(user)
        if row is not None:
            for c in (self._static_cols if full else self._static_needed):
                out[c] = self._static_values[c][row]
        return out

    def _rfm_features(self, st: _UserState, as_of_us: int, *, scores: bool = True
                      ) -> dict[str, Any]:
        orders = st.n_orders
        out: dict[str, Any] = {
            "recency_days": (math.nan if st.last_purchase_ts is None
                             else (as_of_us - st.last_purchase_ts) / US_PER_DAY),
            "frequency": orders, "monetary": st.gross - st.returned,
            "gross_revenue": st.gross, "returned_value": st.returned,
            "return_rate": st.returned / st.gross if st.gross > 0 else math.nan,
            "avg_basket_value": st.gross / orders if orders > 0 else math.nan,
            "avg_basket_size": st.purchase_qty / orders if orders > 0 else math.nan,
            "discount_share": (st.n_discounted / st.n_purchase_lines
                               if st.n_purchase_lines > 0 else math.nan),
        }
        if not scores:
            return out
        if orders > 0:
            b = self.rfm_boundaries
            r = 5 - bisect_left(b["recency_days"], out["recency_days"])
            f = 1 + bisect_left(b["frequency"], orders)
            m = 1 + bisect_left(b["monetary"], out["monetary"])
            out.update(r_score=r, f_score=f, m_score=m, rfm_score=f"{r}{f}{m}",
                       rfm_segment=str(RFM_TABLE[r, f]))
        else:
            out.update(r_score=None, f_score=None, m_score=None, rfm_score=None,
                       rfm_segment=NO_PURCHASE)
        return out


def _funnel(c: Mapping[str, Any]) -> dict[str, float]:
    def ratio(num: str, den: str) -> float:
        return c[num] / c[den] if c[den] > 0 else math.nan

    return {"impression_to_click": ratio("n_click", "n_impression"),
            "view_to_click": ratio("n_click", "n_view"),
            "click_to_cart": ratio("n_add_to_cart", "n_click"),
            "cart_to_purchase": ratio("n_purchase", "n_add_to_cart"),
            "view_to_purchase": ratio("n_purchase", "n_view")}


def _top(scores: Mapping[str, float], n: int) -> list[str]:
    total = sum(v for v in scores.values() if v > 0)
    if total <= 0:
        return []
    ranked = sorted(((-round(v / total, 9), k) for k, v in scores.items() if v > 0))
    return [k for _, k in ranked[:n]]


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if x != x else x


def _to_us(ts: Any) -> int:
    if isinstance(ts, int | np.integer):
        return int(ts)
    if isinstance(ts, pd.Timestamp):
        ts = ts if ts.tzinfo is not None else ts.tz_localize("UTC")
        return int(ts.value // 1000)
    if isinstance(ts, datetime):
        ts = pd.Timestamp(ts)
        ts = ts if ts.tzinfo is not None else ts.tz_localize("UTC")
        return int(ts.value // 1000)
    stamp = pd.Timestamp(ts)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return int(stamp.value // 1000)
