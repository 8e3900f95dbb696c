"""The sample world's people: users with hidden segments and tastes, contacts, a social graph."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from limelight.sim.catalog import N_STYLE
from limelight.sim.segments import CATEGORIES, REGIONS, SEGMENTS


@dataclass
class Population:
    """Users, contacts and edges (data model) plus the hidden per-user truth."""

    users: pd.DataFrame
    contacts: pd.DataFrame
    edges: pd.DataFrame
    segment: np.ndarray  # int, shape (n_users,)
    region: np.ndarray  # int index into REGIONS
    preferences: np.ndarray  # float, shape (n_users, n_categories + N_STYLE)
    bias: np.ndarray  # per-user click propensity
    activity: np.ndarray  # per-user activity multiplier
    signup_s: np.ndarray  # signup time, epoch seconds


def make_population(n_users: int, rng: np.random.Generator, start: pd.Timestamp,
                    end: pd.Timestamp) -> Population:
    """Generate ``n_users`` users, their contacts and a homophilous social graph."""
    n_cat = len(CATEGORIES)
    shares = np.array([s.share for s in SEGMENTS])
    segment = rng.choice(len(SEGMENTS), size=n_users, p=shares / shares.sum())

    # Taste = the segment's favourite categories plus individual noise; style is personal.
    pref = np.zeros((n_users, n_cat + N_STYLE))
    for s, spec in enumerate(SEGMENTS):
        fav = [CATEGORIES.index(c) for c in spec.categories]
        rows = segment == s
        pref[np.ix_(rows, fav)] = spec.taste_strength
    pref[:, :n_cat] += rng.normal(0.0, 0.5, size=(n_users, n_cat))
    pref[:, n_cat:] = rng.normal(0.0, 1.5, size=(n_users, N_STYLE))
    bias = rng.normal(0.0, 0.3, size=n_users)
    activity = rng.lognormal(0.0, 0.35, size=n_users)

    region = np.empty(n_users, dtype=np.int64)
    codes = [r.code for r in REGIONS]
    for s, spec in enumerate(SEGMENTS):
        rows = np.flatnonzero(segment == s)
        preferred = np.array([codes.index(c) for c in spec.regions])
        in_pref = rng.random(len(rows)) < spec.region_affinity
        region[rows] = np.where(in_pref, rng.choice(preferred, size=len(rows)),
                                rng.integers(0, len(REGIONS), size=len(rows)))

    city_k = rng.integers(0, 3, size=n_users)
    city = np.array([REGIONS[r].cities[k][0] for r, k in zip(region, city_k, strict=True)],
                    dtype=object)
    lat = np.array([REGIONS[r].cities[k][1] for r, k in zip(region, city_k, strict=True)])
    lon = np.array([REGIONS[r].cities[k][2] for r, k in zip(region, city_k, strict=True)])
    lat = lat + rng.normal(0.0, 0.08, size=n_users)
    lon = lon + rng.normal(0.0, 0.12, size=n_users)

    age_mu = np.array([s.age[0] for s in SEGMENTS])[segment]
    age_sd = np.array([s.age[1] for s in SEGMENTS])[segment]
    age = np.clip(np.round(rng.normal(age_mu, age_sd)), 16, 90).astype(np.int32)
    gender = rng.choice(np.array(["female", "male", "other"], dtype=object), size=n_users,
                        p=[0.5, 0.47, 0.03])

    # 65 % signed up before the window; the rest join during it (and only act afterwards).
    start_s, end_s = start.value // 10**9, end.value // 10**9
    before = rng.random(n_users) < 0.65
    signup_s = np.where(before, start_s - rng.integers(86400, 3 * 365 * 86400, size=n_users),
                        rng.integers(start_s, end_s - 7 * 86400, size=n_users))

    consent = {ch: rng.random(n_users) < np.array([s.consent[ch] for s in SEGMENTS])[segment]
               for ch in ("personalization", "email", "push", "sms")}
    acquisition = rng.choice(np.array(["organic", "ads", "referral", "newsletter"], dtype=object),
                             size=n_users)

    user_ids = np.array([f"u{k:06d}" for k in range(1, n_users + 1)], dtype=object)
    users = pd.DataFrame({
        "user_id": user_ids,
        "age": age,
        "gender": gender,
        "country": [REGIONS[r].country for r in region],
        "region": [REGIONS[r].code for r in region],
        "city": city,
        "lat": np.round(lat, 5),
        "lon": np.round(lon, 5),
        "timezone": [REGIONS[r].timezone for r in region],
        "signup_time": pd.to_datetime(signup_s, unit="s", utc=True),
        "consent_personalization": consent["personalization"],
        "consent_email": consent["email"],
        "consent_push": consent["push"],
        "consent_sms": consent["sms"],
        "extra": [json.dumps({"acquisition": a}) for a in acquisition],
    })
    mobile = rng.random(n_users) < np.array([s.mobile_share for s in SEGMENTS])[segment]
    has_phone = rng.random(n_users) < 0.6
    contacts = pd.DataFrame({
        "user_id": user_ids,
        "external_id": None,
        "email": [f"user{k}@example.com" for k in range(1, n_users + 1)],
        # Numbers from the UK's drama range (07700 900000-900999) repeat: none is real.
        "phone": np.where(has_phone, [f"+447700900{k % 1000:03d}" for k in range(n_users)],
                          None),
        "push_token": np.where(mobile, [f"{v:016x}" for v in rng.integers(0, 2**62, size=n_users)],
                               None),
    })
    edges = _social_graph(segment, region, rng, user_ids)
    return Population(users, contacts, edges, segment, region, pref, bias, activity, signup_s)


def _social_graph(segment: np.ndarray, region: np.ndarray, rng: np.random.Generator,
                  user_ids: np.ndarray) -> pd.DataFrame:
    """Undirected friendships and directed follows, mostly within a segment (and region).

    Homophily: 80 % of friendship stubs pick a partner from the same segment, half of those
    from the same segment and region; 70 % of follows go to an influential member of the
    follower's own segment (influence is a heavy-tailed hidden trait).
    """
    n = len(segment)
    if n < 2:
        return pd.DataFrame(columns=["src_user_id", "dst_user_id", "kind", "weight", "directed"])
    # Users ordered by (segment, region) so each group is one contiguous slice.
    group = segment * len(REGIONS) + region
    order = np.lexsort((region, segment))
    seg_start = np.searchsorted(segment[order], np.arange(len(SEGMENTS) + 1))
    grp_start = np.searchsorted(group[order], np.arange(len(SEGMENTS) * len(REGIONS) + 1))

    mean_friends = np.array([s.friends for s in SEGMENTS])[segment]
    stubs = rng.poisson(mean_friends / 2.0)
    src = np.repeat(np.arange(n), stubs)
    mode = rng.random(len(src))
    u = rng.random(len(src))
    s_lo, s_hi = seg_start[segment[src]], seg_start[segment[src] + 1]
    g_lo, g_hi = grp_start[group[src]], grp_start[group[src] + 1]
    dst = np.where(
        mode < 0.4, order[np.minimum(g_lo + (u * (g_hi - g_lo)).astype(np.int64), n - 1)],
        np.where(mode < 0.8, order[np.minimum(s_lo + (u * (s_hi - s_lo)).astype(np.int64), n - 1)],
                 rng.integers(0, n, size=len(src))))
    a, b = np.minimum(src, dst), np.maximum(src, dst)
    keep = a != b
    pairs = np.unique(np.stack([a[keep], b[keep]], axis=1), axis=0)
    friends = pd.DataFrame({
        "src_user_id": user_ids[pairs[:, 0]], "dst_user_id": user_ids[pairs[:, 1]],
        "kind": "friend", "weight": np.round(rng.uniform(0.2, 1.0, size=len(pairs)), 2),
        "directed": False,
    })

    influence = rng.lognormal(0.0, 1.2, size=n)
    cum = np.cumsum(influence[order])
    cum_lo = np.concatenate([[0.0], cum])[seg_start]
    follower = np.repeat(np.arange(n), rng.poisson(1.0, size=n))
    same = rng.random(len(follower)) < 0.7
    lo, hi = cum_lo[segment[follower]], cum_lo[segment[follower] + 1]
    target = np.where(same, lo + rng.random(len(follower)) * (hi - lo),
                      rng.random(len(follower)) * cum[-1])
    followee = order[np.minimum(np.searchsorted(cum, target, side="right"), n - 1)]
    keep = follower != followee
    fpairs = np.unique(np.stack([follower[keep], followee[keep]], axis=1), axis=0)
    follows = pd.DataFrame({
        "src_user_id": user_ids[fpairs[:, 0]], "dst_user_id": user_ids[fpairs[:, 1]],
        "kind": "follow", "weight": 1.0, "directed": True,
    })
    return pd.concat([friends, follows], ignore_index=True)
