"""Behaviour of the sample world: sessions and their events, generated in vectorised chunks.

A user's sessions fall on days drawn from a seasonal calendar (weekly cycle per segment, a
slow wave, a growth trend and a sale week) at segment-specific local hours. In each session
the user looks at a few items: for each, categories are drawn from the user's taste and six
candidates by (Zipf-like) popularity within them, and the user views the one that suits them
best (some of the others are logged as impressions). Each view then runs the hidden response model's
funnel view -> click -> add_to_cart -> purchase, with the item's discount of the day; some
purchases get a rating, a review or a return, some clicks a like or a share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from limelight.data.schema import EVENTS, TIMESTAMP
from limelight.sim.catalog import Catalog
from limelight.sim.population import Population
from limelight.sim.response import ResponseModel
from limelight.sim.segments import CATEGORIES, REGIONS, SEGMENTS

EVENT_CODES: tuple[str, ...] = (
    "impression", "view", "click", "add_to_cart", "purchase", "rating", "review", "like",
    "share", "not_interested", "return",
)
_T = {name: k for k, name in enumerate(EVENT_CODES)}
DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet")
N_DAYS = 180
SALE_DAYS = (150, 157)  # a sale week near the end of the window: more visits, more discounts
N_CANDIDATES = 6  # items a user chooses from per view: more means more personal choices
IMPRESSION_RATE = 0.25  # share of the candidates not chosen that are logged as impressions
_REVIEWS = (
    ("Disappointed, would not buy again.", "Poor quality for the price."),
    ("Not great, expected more.", "It does the job, barely."),
    ("Okay for the price.", "Average, nothing special."),
    ("Good value, happy with it.", "Works well, recommended."),
    ("Excellent, exactly what I wanted!", "Love it, great quality."),
)
REVIEW_TEXTS: tuple[str, ...] = tuple(t for pair in _REVIEWS for t in pair)


@dataclass
class Calendar:
    """The window of the sample world and its per-segment day distribution."""

    start: pd.Timestamp  # UTC midnight, first day
    end: pd.Timestamp  # exclusive
    day_cdf: np.ndarray  # shape (n_segments, N_DAYS)
    sale: np.ndarray  # bool, shape (N_DAYS,)

    @classmethod
    def ending(cls, end: pd.Timestamp) -> Calendar:
        start = end - pd.Timedelta(days=N_DAYS)
        days = np.arange(N_DAYS)
        dow = (start.day_of_week + days) % 7
        sale = (days >= SALE_DAYS[0]) & (days < SALE_DAYS[1])
        season = (1.0 + 0.15 * np.sin(2 * np.pi * days / 60.0)) * np.linspace(0.9, 1.1, N_DAYS)
        season = season * np.where(sale, 1.8, 1.0)
        weights = np.array([np.asarray(s.weekday_weights)[dow] * season for s in SEGMENTS])
        cdf = np.cumsum(weights, axis=1)
        return cls(start, end, cdf / cdf[:, -1:], sale)


@dataclass
class EventContext:
    """Everything the event generator needs, shared by all chunks."""

    population: Population
    catalog: Catalog
    response: ResponseModel
    calendar: Calendar
    seed: int

    def __post_init__(self) -> None:
        cat = self.catalog
        self.items_by_cat = np.argsort(cat.primary_category, kind="stable")
        w = cat.popularity[self.items_by_cat]
        self.pop_cum = np.cumsum(w)
        bounds = np.searchsorted(cat.primary_category[self.items_by_cat],
                                 np.arange(len(CATEGORIES) + 1))
        before = np.concatenate([[0.0], self.pop_cum])
        self.cat_lo = before[bounds[:-1]]
        self.cat_total = before[bounds[1:]] - self.cat_lo
        self.user_ids = pa.array(self.population.users["user_id"], pa.string())
        self.item_ids = pa.array(cat.items["item_id"], pa.string())
        self.cities = pa.array(self.population.users["city"], pa.string())
        self.timezones = np.array([r.timezone for r in REGIONS])[self.population.region]
        signup_day = (self.population.signup_s - self.calendar.start.value // 10**9) // 86400
        self.signup_day = np.clip(signup_day, 0, N_DAYS - 1)


def simulate_chunk(ctx: EventContext, users: np.ndarray, scale: float,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Events of ``users`` (row indices) as numpy columns (ids still as indices)."""
    pop, cal = ctx.population, ctx.calendar
    s_user, day, start_s, s_device = _sessions(ctx, users, scale, rng)
    s_seg = pop.segment[s_user]

    # Views: how many per session, when, which item.
    vps = np.array([s.views_per_session for s in SEGMENTS])[s_seg]
    n_views = 1 + rng.poisson(vps - 1.0)
    v_sess = np.repeat(np.arange(len(s_user)), n_views)
    v_user = s_user[v_sess]
    gaps = 5.0 + rng.exponential(45.0, size=len(v_sess))
    cum = np.cumsum(gaps)
    first = np.concatenate([[0], np.cumsum(n_views)[:-1]])
    offset = cum - np.repeat(cum[first] - gaps[first], n_views) if len(cum) else cum
    v_t = start_s[v_sess] + offset
    s_end = np.zeros(len(s_user))
    np.maximum.at(s_end, v_sess, offset)

    cand = _candidates(ctx, v_user, rng, n_cand=N_CANDIDATES)  # shape (n_views, N_CANDIDATES)
    aff = np.stack([ctx.response.affinity_idx(v_user, cand[:, j]) for j in range(N_CANDIDATES)],
                   axis=1)
    choice = np.argmax(aff + rng.gumbel(size=aff.shape), axis=1)
    v_item = cand[np.arange(len(cand)), choice]
    v_aff = aff[np.arange(len(cand)), choice]
    v_day = day[v_sess]
    disc = _discount(v_item, v_day, cal.sale, ctx.seed)

    p_click, p_cart, p_buy = ctx.response.step_probabilities_idx(v_user, v_item, disc)
    clicked = rng.random(len(v_item)) < p_click
    carted = clicked & (rng.random(len(v_item)) < p_cart)
    bought = carted & (rng.random(len(v_item)) < p_buy)
    v_seg = pop.segment[v_user]
    spec_arr = {f: np.array([getattr(s, f) for s in SEGMENTS])[v_seg]
                for f in ("like_rate", "share_rate", "rating_rate", "return_rate")}

    price = ctx.catalog.price[v_item]
    qty = 1.0 + rng.poisson(np.array([s.extra_quantity for s in SEGMENTS])[v_seg])
    paid = np.round(price * (1.0 - disc) * qty, 2)
    click_t = v_t + rng.uniform(3, 20, size=len(v_t))
    cart_t = click_t + rng.uniform(10, 90, size=len(v_t))
    buy_t = start_s[v_sess] + s_end[v_sess] + 60.0 + rng.uniform(0, 120, size=len(v_t))
    liked = clicked & (rng.random(len(v_t)) < spec_arr["like_rate"])
    shared = clicked & (rng.random(len(v_t)) < spec_arr["share_rate"])
    rated = bought & (rng.random(len(v_t)) < spec_arr["rating_rate"])
    reviewed = rated & (rng.random(len(v_t)) < 0.35)
    returned = bought & (rng.random(len(v_t)) < spec_arr["return_rate"] * np.where(v_aff < 0, 2, 1))
    stars = np.clip(np.round(3.2 + 0.8 * v_aff + rng.normal(0, 0.7, size=len(v_t))), 1, 5)
    rate_t = buy_t + rng.uniform(1, 14, size=len(v_t)) * 86400.0
    return_t = buy_t + rng.uniform(3, 20, size=len(v_t)) * 86400.0

    # Impressions: some of the candidates not chosen.
    others = cand != v_item[:, None]
    for j in range(1, cand.shape[1]):  # a candidate drawn twice is shown once
        others[:, j] &= (cand[:, :j] != cand[:, j : j + 1]).all(axis=1)
    shown = others & (rng.random(cand.shape) < IMPRESSION_RATE)
    imp_row, imp_col = np.nonzero(shown)
    imp_aff = aff[imp_row, imp_col]
    dismissed = (imp_aff < -1.0) & (rng.random(len(imp_row)) < 0.05)

    items_shown = cand[imp_row, imp_col]
    parts = [
        _part(imp_row, "impression", v_t - 1.0, item=items_shown),
        _part(imp_row[dismissed], "not_interested", v_t + 2.0, item=items_shown[dismissed]),
        _part(np.arange(len(v_t)), "view", v_t,
              value=np.round(rng.lognormal(np.where(clicked, 4.0, 2.5), 0.6), 1)),
        _part(np.flatnonzero(clicked), "click", click_t),
        _part(np.flatnonzero(carted), "add_to_cart", cart_t, value=paid, quantity=qty),
        _part(np.flatnonzero(bought), "purchase", buy_t, value=paid, quantity=qty),
        _part(np.flatnonzero(liked), "like", click_t + 15.0),
        _part(np.flatnonzero(shared), "share", click_t + 40.0),
        _part(np.flatnonzero(rated), "rating", rate_t, value=stars),
        _part(np.flatnonzero(reviewed), "review", rate_t + 60.0, value=stars),
        _part(np.flatnonzero(returned), "return", return_t, value=paid, quantity=qty),
    ]
    for p in parts:
        if p["item"] is None:
            p["item"] = v_item[p["row"]]
    review_pick = (2 * (stars.astype(np.int64) - 1) + rng.integers(0, 2, size=len(v_t)))

    out = {k: np.concatenate([p[k] for p in parts]) for k in ("row", "item", "type", "t")}
    out["value"] = np.concatenate([p["value"] for p in parts])
    out["quantity"] = np.concatenate([p["quantity"] for p in parts])
    out["session"] = v_sess[out["row"]]
    out["user"] = v_user[out["row"]]
    out["device"] = s_device[out["session"]]
    out["review"] = np.where(out["type"] == _T["review"], review_pick[out["row"]], -1)
    out["t_us"] = np.round(out.pop("t") * 1e6).astype(np.int64)
    # The window's end cuts late ratings, reviews and returns.
    keep = (out["t_us"] >= cal.start.value // 1000) & (out["t_us"] < cal.end.value // 1000)
    order = np.lexsort((out["type"][keep], out["t_us"][keep], out["user"][keep]))
    out.pop("row")
    return {k: v[keep][order] for k, v in out.items()}


def _sessions(ctx: EventContext, users: np.ndarray, scale: float, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sessions of ``users``: (user row, day index, UTC start in epoch seconds, device code)."""
    pop, cal = ctx.population, ctx.calendar
    seg = pop.segment[users]
    # How many: the segment's rate over the part of the window after signup, floored/capped.
    lo = np.where(ctx.signup_day[users] > 0,
                  cal.day_cdf[seg, np.maximum(ctx.signup_day[users] - 1, 0)], 0.0)
    rate = np.array([s.sessions for s in SEGMENTS])[seg] * pop.activity[users] * (1.0 - lo)
    n_sess = rng.poisson(rate * scale)
    floor = np.array([s.min_sessions for s in SEGMENTS])[seg]
    cap = np.array([s.max_sessions for s in SEGMENTS])[seg]
    n_sess = np.clip(n_sess, floor, cap)
    s_user = np.repeat(users, n_sess)
    s_seg = pop.segment[s_user]
    # When: a day after signup from the segment's calendar, a local hour -> UTC.
    s_lo = np.repeat(lo, n_sess)
    u = s_lo + rng.random(len(s_user)) * (1.0 - s_lo)
    day = np.empty(len(s_user), dtype=np.int64)
    hour = np.empty(len(s_user))
    for k, spec in enumerate(SEGMENTS):
        rows = np.flatnonzero(s_seg == k)
        day[rows] = np.minimum(np.searchsorted(cal.day_cdf[k], u[rows]), N_DAYS - 1)
        comp = np.array(spec.hours)
        pick = rng.choice(len(comp), size=len(rows), p=comp[:, 2] / comp[:, 2].sum())
        hour[rows] = rng.normal(comp[pick, 0], comp[pick, 1]) % 24.0
    start_s = _local_to_utc_seconds(cal.start, day, hour, ctx.timezones[s_user])
    # On the signup day itself nobody acts before signing up; nothing starts before the window.
    start_s = np.maximum(start_s, pop.signup_s[s_user] + rng.uniform(30, 600, len(s_user)))
    start_s = np.maximum(start_s, cal.start.value / 1e9 + rng.uniform(0, 3600, len(s_user)))
    mobile_share = np.array([s.mobile_share for s in SEGMENTS])[s_seg]
    r = rng.random(len(s_user))
    s_device = np.where(r < mobile_share, 0,
                        np.where(r < mobile_share + 0.8 * (1 - mobile_share), 1, 2))
    return s_user, day, start_s, s_device


def _part(rows: np.ndarray, type_: str, t: np.ndarray, *, item: np.ndarray | None = None,
          value: np.ndarray | None = None, quantity: np.ndarray | None = None) -> dict:
    """Events of one type for view rows ``rows``; ``t``, ``value``, ``quantity`` are per view."""
    n = len(rows)
    return {
        "row": rows, "item": item, "type": np.full(n, _T[type_], dtype=np.int8), "t": t[rows],
        "value": value[rows] if value is not None else np.full(n, np.nan),
        "quantity": quantity[rows] if quantity is not None else np.full(n, np.nan),
    }


def _candidates(ctx: EventContext, v_user: np.ndarray, rng: np.random.Generator,
                n_cand: int) -> np.ndarray:
    """Items drawn by category taste, then by popularity within the category."""
    n_cat = len(CATEGORIES)
    taste = ctx.population.preferences[:, :n_cat]
    probs = np.exp(taste - taste.max(axis=1, keepdims=True))
    users, inverse = np.unique(v_user, return_inverse=True)
    cdf = np.cumsum(probs[users], axis=1)
    cdf /= cdf[:, -1:]
    out = np.empty((len(v_user), n_cand), dtype=np.int64)
    for j in range(n_cand):
        u = rng.random(len(v_user))
        cat = np.minimum((cdf[inverse] < u[:, None]).sum(axis=1), n_cat - 1)
        total = ctx.cat_total[cat]
        v = rng.random(len(v_user))
        # An empty category (tiny catalogues) falls back to the whole catalogue.
        target = np.where(total > 0, ctx.cat_lo[cat] + v * total, v * ctx.pop_cum[-1])
        idx = np.minimum(np.searchsorted(ctx.pop_cum, target, side="right"),
                         len(ctx.pop_cum) - 1)
        out[:, j] = ctx.items_by_cat[idx]
    return out


def _discount(item: np.ndarray, day: np.ndarray, sale: np.ndarray, seed: int) -> np.ndarray:
    """The discount an item has on a day: a deterministic hash, so all users see the same one."""
    h = (item.astype(np.uint64) * np.uint64(2654435761) + day.astype(np.uint64) * np.uint64(97531)
         + np.uint64(seed % 2**31) * np.uint64(7919)) % np.uint64(2**32)
    frac = h.astype(np.float64) / 2**32
    on = frac < np.where(sale[day], 0.45, 0.12)
    level = np.array([0.1, 0.2, 0.3])[(item + day) % 3]
    return np.where(on, level, 0.0)


def _local_to_utc_seconds(start: pd.Timestamp, day: np.ndarray, hour: np.ndarray,
                          tz: np.ndarray) -> np.ndarray:
    """Epoch seconds of local wall-clock times (day since ``start``, hour) in zones ``tz``."""
    local = (start.tz_localize(None).value // 10**9 + day * 86400 + hour * 3600.0)
    out = np.empty(len(local))
    for zone in np.unique(tz):
        rows = np.flatnonzero(tz == zone)
        ns = (local[rows] * 1e9).astype(np.int64)
        idx = pd.DatetimeIndex(ns).tz_localize(
            zone, ambiguous=np.zeros(len(rows), dtype=bool), nonexistent="shift_forward")
        out[rows] = idx.asi8 / 1e9  # asi8: UTC nanoseconds
    return out


def chunk_to_arrow(ctx: EventContext, cols: dict[str, np.ndarray], first_event: int,
                   first_session: int) -> pa.Table:
    """Arrow table in the EVENTS schema from :func:`simulate_chunk` output."""
    n = len(cols["user"])
    counter = pa.array(np.arange(first_event, first_event + n), pa.int64())
    event_id = pc.binary_join_element_wise("e", pc.cast(counter, pa.string()), "")
    session = pa.array(cols["session"] + first_session, pa.int64())
    session_id = pc.binary_join_element_wise("s", pc.cast(session, pa.string()), "")
    types = pa.DictionaryArray.from_arrays(pa.array(cols["type"], pa.int8()),
                                           pa.array(EVENT_CODES)).cast(pa.string())
    devices = pa.DictionaryArray.from_arrays(pa.array(cols["device"], pa.int8()),
                                             pa.array(DEVICES)).cast(pa.string())
    review_idx = pa.array(np.where(cols["review"] >= 0, cols["review"], 0), pa.int64(),
                          mask=cols["review"] < 0)
    null_str = pa.nulls(n, pa.string())
    return pa.table({
        "event_id": event_id,
        "user_id": ctx.user_ids.take(pa.array(cols["user"])),
        "item_id": ctx.item_ids.take(pa.array(cols["item"])),
        "type": types,
        "value": pa.array(cols["value"], pa.float64(), from_pandas=True),
        "quantity": pa.array(cols["quantity"], pa.float64(), from_pandas=True),
        "timestamp": pa.array(cols["t_us"], TIMESTAMP),
        "session_id": session_id,
        "channel": null_str,
        "campaign_id": null_str,
        "message_id": null_str,
        "device": devices,
        "geo": ctx.cities.take(pa.array(cols["user"])),
        "review_text": pa.array(REVIEW_TEXTS, pa.string()).take(review_idx),
    }, schema=EVENTS)
