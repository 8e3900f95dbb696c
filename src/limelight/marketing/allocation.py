"""Bandit allocation of campaign variants (creatives, offers) across runs.

A recurring campaign with ``allocation="thompson"`` learns from its own history: every message
it sent earlier is one pull of its variant, rewarded 1 when the message was clicked (or, with
``reward="purchase"``, when a purchase was attributed to it). Each new user is given the variant
that wins one Thompson draw from the Beta posteriors, so better creatives get more traffic run
after run while weaker ones keep a little exploration. With a segment column, each segment
learns its own allocation (:class:`~limelight.marketing.bandits.SegmentedBandit`).
The holdout is still drawn by hash, so uplift against it stays unbiased.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from limelight.marketing.bandits import SegmentedBandit, ThompsonSampling


def campaign_rewards(store: Any, campaign_id: str, reward: str = "click") -> pd.DataFrame:
    """One row per sent message: user_id, variant, reward (0/1)."""
    if reward == "click":
        cond = "e.type IN ('email_click', 'click')"
    elif reward == "purchase":
        cond = "e.type = 'purchase'"
    else:
        raise ValueError("reward must be 'click' or 'purchase'")
    return store.sql(
        "SELECT d.user_id, d.variant, CAST(count(e.event_id) > 0 AS INTEGER) AS reward "
        "FROM marketing_deliveries d LEFT JOIN events e ON e.message_id = d.message_id "
        f"AND {cond} WHERE d.campaign_id = ? AND d.status = 'sent' "
        "GROUP BY d.message_id, d.user_id, d.variant", [campaign_id])


def thompson_assign(history: pd.DataFrame, users: Sequence[str], variants: Sequence[str], *,
                    segments: dict[str, str] | None = None,
                    random_state: int | None = None) -> np.ndarray:
    """A variant per user from Thompson draws on ``history`` (user_id, variant, reward).

    With ``segments`` (user -> segment), the history and the draws are per segment.
    """
    rng_seed = random_state

    def factory(arms: Sequence[str]) -> ThompsonSampling:
        return ThompsonSampling(arms, random_state=rng_seed)

    bandit = SegmentedBandit(list(variants), factory)
    seg_of = segments or {}
    for user, variant, r in zip(history["user_id"], history["variant"], history["reward"],
                                strict=True):
        if variant in variants:
            bandit.learn_one(seg_of.get(str(user), "all"), str(variant), float(r))
    return np.array([bandit.predict_one(seg_of.get(str(u), "all")) for u in users],
                    dtype=object)


def allocation_summary(history: pd.DataFrame) -> list[dict[str, Any]]:
    """Pulls, rewards and rate per variant so far (for launch reports)."""
    if history.empty:
        return []
    g = history.groupby("variant")["reward"].agg(["count", "sum"])
    return [{"variant": v, "sent": int(r["count"]), "rewards": int(r["sum"]),
             "rate": float(r["sum"] / r["count"])} for v, r in g.iterrows()]
